"""Reception's "needs attention" home: identity checks oldest first with their age, proxy requests and reviews,
repeat requests not delivered (try again, tell the patient), letters issued this week, the link in plain words."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from patient_online.domain.errors import InputError, NotAllowed, NotFound
from patient_online.domain.link_words import LinkStatus, words_for
from patient_online.domain.outbox import MessageStatus
from patient_online.domain.ports import LinkState
from patient_online.models import (
    HandledMessage,
    LinkageLetter,
    LinkRequest,
    OutboxMessage,
    Practice,
    PrescriptionOrder,
    ProxyLink,
    User,
)
from patient_online.services import reception_home
from patient_online.services.prescriptions import KIND
from tests.fakes import FakeUnitOfWork
from tests.unit.conftest import patient, practice, user
from tests.unit.test_verification_use_cases import receptionist, settled, uow

__all__ = ["uow"]


def ask(uow: FakeUnitOfWork, where: Practice, family: str, days_ago: int) -> LinkRequest:
    request = LinkRequest(
        user_id=user(uow).id,
        practice_id=where.id,
        nhs_number="9434765919",
        given_name="Sam",
        family_name=family,
        date_of_birth=dt.date(1984, 3, 15),
        postcode="LS1 4AP",
        created_at=uow.now() - dt.timedelta(days=days_ago, hours=1),
    )
    uow.session.add(request)
    uow.session.flush()
    return request


def undelivered(uow: FakeUnitOfWork, where: Practice, status: MessageStatus, n: int = 1) -> OutboxMessage:
    whose = patient(uow, where)
    orderer = user(uow)
    order = PrescriptionOrder(
        patient_id=whose.id,
        ordered_by_id=orderer.id,
        idempotency_key=f"order-{where.id}-{n}-{status.value}",
        item_names=["Amlodipine 5mg tablets"],
        status="failed" if status is MessageStatus.FAILED else "queued",
        created_at=uow.now() - dt.timedelta(hours=3),
    )
    uow.session.add(order)
    uow.session.flush()
    message = OutboxMessage(
        practice_id=where.id,
        kind=KIND,
        payload={"order_id": order.id, "patient_id": whose.id},
        idempotency_key=order.idempotency_key,
        status=status.value,
        attempts=12 if status is MessageStatus.FAILED else 3,
        next_attempt_at=uow.now() + dt.timedelta(minutes=20),
        last_error="Timed out",
    )
    uow.session.add(message)
    uow.session.flush()
    return message


def desk(uow: FakeUnitOfWork) -> tuple[Practice, User]:
    where = practice(uow)
    return where, receptionist(uow, where)


def test_checks_are_listed_oldest_first_with_their_age(uow: FakeUnitOfWork) -> None:
    where, staff = desk(uow)
    ask(uow, where, "Newer", 0)
    ask(uow, where, "Older", 5)
    ask(uow, practice(uow), "Elsewhere", 9)
    settled(uow)
    home = reception_home.reception_home(uow, staff, where)
    assert [(c.name, c.age_days) for c in home.checks] == [("Sam Older", 5), ("Sam Newer", 0)]
    assert home.total == 2 and home.link.status is LinkStatus.CONNECTED
    assert uow.audit_actions() == ["reception.attention_viewed"]


def test_repeat_requests_not_delivered_are_listed(uow: FakeUnitOfWork) -> None:
    where, staff = desk(uow)
    failed = undelivered(uow, where, MessageStatus.FAILED, 1)
    queued = undelivered(uow, where, MessageStatus.PENDING, 2)
    delivered = undelivered(uow, where, MessageStatus.DELIVERED, 3)
    settled(uow)
    home = reception_home.reception_home(uow, staff, where)
    assert [(r.message_id, r.failed) for r in home.repeats] == [(failed.id, True), (queued.id, False)]
    assert delivered.id not in {r.message_id for r in home.repeats}
    assert home.repeats[0].items == ("Amlodipine 5mg tablets",)


def test_try_again_puts_the_request_back_in_the_queue_now(uow: FakeUnitOfWork) -> None:
    where, staff = desk(uow)
    message = undelivered(uow, where, MessageStatus.FAILED)
    settled(uow)
    reception_home.retry_repeat_request(uow, staff, where, message.id)
    assert message.status == MessageStatus.PENDING and message.next_attempt_at == uow.now()
    assert message.attempts == 0
    order = uow.session.get_one(PrescriptionOrder, message.payload["order_id"])
    assert order.status == "queued"
    assert uow.audit_actions() == ["prescription.retried"] and uow.commits == 1


def test_tell_the_patient_emails_them_and_takes_it_off_the_list(uow: FakeUnitOfWork) -> None:
    where, staff = desk(uow)
    message = undelivered(uow, where, MessageStatus.PENDING)
    settled(uow)
    reception_home.tell_patient_about_repeat_request(uow, staff, where, message.id)
    assert message.status == MessageStatus.WITHDRAWN  # it cannot arrive later as well
    (sent,) = uow.sent
    assert sent.template == "repeat_not_sent" and "could not be sent" in sent.body and where.phone in sent.body
    assert uow.session.scalars(select(HandledMessage.outbox_message_id)).all() == [message.id]
    assert uow.audit_actions() == ["prescription.patient_told"]
    assert reception_home.reception_home(uow, staff, where).repeats == []
    with pytest.raises(InputError, match="dealt with already"):
        reception_home.retry_repeat_request(uow, staff, where, message.id)


def test_a_request_being_sent_is_left_alone(uow: FakeUnitOfWork) -> None:
    where, staff = desk(uow)
    message = undelivered(uow, where, MessageStatus.PENDING)
    message.locked_by, message.locked_until = "worker", uow.now() + dt.timedelta(seconds=30)
    settled(uow)
    with pytest.raises(InputError, match="being sent right now"):
        reception_home.tell_patient_about_repeat_request(uow, staff, where, message.id)
    assert uow.sent == []


def test_another_practices_requests_cannot_be_touched(uow: FakeUnitOfWork) -> None:
    where, staff = desk(uow)
    theirs = undelivered(uow, practice(uow), MessageStatus.FAILED)
    outsider = user(uow, kind="staff")
    settled(uow)
    with pytest.raises(NotFound):
        reception_home.retry_repeat_request(uow, staff, where, theirs.id)
    with pytest.raises(NotAllowed):
        reception_home.reception_home(uow, outsider, where)


def test_letters_this_week_and_proxy_items(uow: FakeUnitOfWork) -> None:
    where, staff = desk(uow)  # the fake clock: Monday 2 March 2026, 09:00 UTC
    whose = patient(uow, where)
    for days_ago in (0, 3):
        uow.session.add(
            LinkageLetter(
                patient_id=whose.id,
                key_hash="x",
                issued_by_id=staff.id,
                issued_at=uow.now() - dt.timedelta(days=days_ago),
                expires_at=uow.now() + dt.timedelta(days=90),
            )
        )
    child = patient(uow, where, born=dt.date(2015, 3, 20))  # 11 on 20 March: the review falls this month
    parent = user(uow)
    uow.session.add(
        ProxyLink(
            proxy_user_id=parent.id,
            patient_id=child.id,
            relationship_text="Mother",
            basis="parental_responsibility",
            status="active",
        )
    )
    uow.session.add(
        ProxyLink(proxy_user_id=user(uow).id, patient_id=whose.id, relationship_text="Son", basis="consent")
    )
    settled(uow)
    home = reception_home.reception_home(uow, staff, where)
    assert [letter.patient_id for letter in home.letters] == [whose.id]  # only this week's
    assert [(p.patient_id, p.note) for p in home.proxy_reviews] == [(child.id, "Review on 20 March")]
    assert [p.patient_id for p in home.proxy_requests] == [whose.id]


def test_the_link_is_in_the_same_plain_words_as_the_manager_s() -> None:
    down = LinkState(ok=False, detail="circuit open; GP Connect: last call failed at 10:42:07 UTC")
    said = words_for(down, dt.datetime(2026, 3, 2, 11, 12, tzinfo=dt.UTC))
    assert said.status is LinkStatus.NOT_CONNECTED and said.sentence.startswith("Not connected since 10:42")
    assert "circuit" not in said.sentence
