"""Messages through GOV.UK Notify for real: the official client against a local stand-in of the Notify API that
checks the signed token and the request body. Nothing is sent inside the request's transaction; a Notify
outage delays messages and loses none, and each is delivered once when Notify returns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from patient_online.models import Notification, OutboxMessage
from patient_online.services import outbox
from patient_online.services.notify import GovukNotifyNotifier, MessageRefused, OutgoingMessage
from tests.notify_standin import API_KEY, NotifyStandin, running

TO = "asha.patel@example.com"


@pytest.fixture(scope="module")
def notify() -> Iterator[NotifyStandin]:
    with running() as standin:
        yield standin


@pytest.fixture
def templates(notify: NotifyStandin) -> dict[str, str]:
    notify.sent.clear()
    notify.failures.clear()
    return {
        "confirm_email": notify.template("email"),
        "appointment_booked": notify.template("email"),
        "confirm_mobile": notify.template("sms", "body"),
    }


@pytest.fixture
def settings(notify: NotifyStandin, templates: dict[str, str]) -> dict[str, Any]:
    return {
        "NOTIFIER": "notify",
        "NOTIFY_API_KEY": API_KEY,
        "NOTIFY_BASE_URL": notify.base_url,
        "NOTIFY_TEMPLATES": templates,
        "OUTBOX_BACKOFF_BASE": 0.0,
        "OUTBOX_MAX_ATTEMPTS": 6,
        "MESSAGES_SEND_NOW": True,
    }


def deliver(uow: Any, **options: Any) -> outbox.DeliveryReport:
    return outbox.deliver_due(uow, "w1", lane=outbox.MESSAGES, **options)


def note(uow: Any, reference: str) -> Notification:
    found = uow.session.scalars(select(Notification).where(Notification.reference == reference)).one()
    uow.session.refresh(found)
    return found


def test_a_queued_email_is_sent_by_the_worker_with_its_template_personalisation_and_reference(
    app_ctx: Any, uow: Any, notify: NotifyStandin, templates: dict[str, str]
) -> None:
    queued = uow.send_email(TO, "appointment_booked", "Your appointment is booked", "Tuesday 10 March, 9:30am")
    reference = queued.reference
    uow.commit()
    assert notify.sent == []  # queued with the change, not sent from inside it
    assert deliver(uow).outcomes == [outbox.Outcome.DELIVERED]
    [sent] = notify.sent
    assert sent["template_id"] == templates["appointment_booked"] and sent["to"] == TO
    assert sent["reference"] == reference
    assert sent["personalisation"] == {"subject": "Your appointment is booked", "body": "Tuesday 10 March, 9:30am"}
    row = note(uow, reference)
    assert row.status == "sent" and row.provider_id == sent["id"] and row.sent_at is not None
    assert deliver(uow).outcomes == []  # never twice


def test_notify_down_for_a_while_then_every_message_is_delivered_once(
    app_ctx: Any, uow: Any, notify: NotifyStandin
) -> None:
    references = [uow.send_email(TO, "appointment_booked", f"Subject {n}", f"Body {n}").reference for n in range(3)]
    uow.commit()
    notify.fail(503, times=2)
    notify.fail(429, times=1)
    notify.fail(500, times=1)
    first = deliver(uow)
    assert first.count(outbox.Outcome.RETRY) == 4 and first.count(outbox.Outcome.DELIVERED) == 3
    assert sorted(n["reference"] for n in notify.sent) == sorted(references)
    assert {note(uow, r).status for r in references} == {"sent"}
    assert deliver(uow).outcomes == []


def test_a_message_notify_refuses_for_good_is_given_up_and_staff_see_it(app_ctx: Any, uow: Any) -> None:
    queued = uow.send_email("not-an-address", "appointment_booked", "Subject", "Body")
    uow.commit()
    assert deliver(uow).outcomes == [outbox.Outcome.FAILED]
    assert note(uow, str(queued.reference)).status == "failed"
    assert (
        "refused"
        in uow.session.scalars(select(OutboxMessage.last_error).where(OutboxMessage.kind == "message.email")).one()
    )


def test_a_message_notify_took_before_the_worker_died_is_not_sent_again(
    app_ctx: Any, uow: Any, notify: NotifyStandin, templates: dict[str, str]
) -> None:
    queued = uow.send_email(TO, "appointment_booked", "Subject", "Body")
    reference = str(queued.reference)
    uow.commit()
    client = GovukNotifyNotifier(API_KEY, templates, base_url=notify.base_url)
    took = client.deliver(OutgoingMessage("email", TO, "appointment_booked", "Subject", "Body", reference))
    message = uow.session.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key == reference)).one()
    message.attempts = 1  # the first attempt reached Notify; the worker died before marking it sent
    uow.commit()
    assert deliver(uow).outcomes == [outbox.Outcome.DELIVERED]
    assert [n["reference"] for n in notify.sent] == [reference]
    assert note(uow, reference).provider_id == took


def test_security_codes_go_first(app_ctx: Any, uow: Any, notify: NotifyStandin) -> None:
    for n in range(3):
        uow.send_email(TO, "appointment_booked", f"Subject {n}", "Body")
    code = uow.send_email(TO, "confirm_email", "Confirm your email address", "Your security code is 123456.")
    uow.commit()
    assert code.priority and uow.urgent_messages == [code.reference]
    assert deliver(uow, limit=1).outcomes == [outbox.Outcome.DELIVERED]
    assert [n["reference"] for n in notify.sent] == [code.reference]


def test_a_text_message_goes_to_notify_as_sms(
    app_ctx: Any, uow: Any, notify: NotifyStandin, templates: dict[str, str]
) -> None:
    queued = uow.send_sms("07700 900123", "confirm_mobile", "Your Patient Online code is 123456.")
    uow.commit()
    assert deliver(uow).outcomes == [outbox.Outcome.DELIVERED]
    [sent] = notify.sent
    assert sent["type"] == "sms" and sent["template_id"] == templates["confirm_mobile"]
    assert sent["reference"] == queued.reference


def test_a_wrong_key_or_unknown_template_is_refused_for_good(notify: NotifyStandin) -> None:
    wrong = GovukNotifyNotifier(
        "test_key-26785a09-ab16-4eb0-8407-a37497a57506-00000000-0000-0000-0000-000000000000",
        {"x": notify.template("email")},
        base_url=notify.base_url,
    )
    with pytest.raises(MessageRefused):
        wrong.deliver(OutgoingMessage("email", TO, "x", "S", "B", "ref-1"))
    assert notify.refused[-1][0] == 403
    no_template = GovukNotifyNotifier(API_KEY, {}, base_url=notify.base_url)
    with pytest.raises(MessageRefused):
        no_template.deliver(OutgoingMessage("email", TO, "x", "S", "B", "ref-2"))


def test_registering_while_notify_is_down_still_works_and_the_code_follows(
    client: Any, app: Any, notify: NotifyStandin
) -> None:
    from patient_online.extensions import db
    from patient_online.wiring import uow_factory

    notify.fail(503, times=1)  # the immediate try after the request fails: the request does not
    response = client.submit("/register", {"email": "new.person@example.com", "password": "purple-kettle-orbit-42"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/register/confirm")
    assert notify.sent == []
    with app.app_context():
        row = db.session.scalars(select(Notification).where(Notification.to == "new.person@example.com")).one()
        assert row.status == "queued" and row.priority
        assert deliver(uow_factory(app)(db.session)).outcomes == [outbox.Outcome.DELIVERED]
    [sent] = notify.sent
    assert sent["to"] == "new.person@example.com" and "security code" in sent["personalisation"]["body"]


def test_a_security_code_is_sent_at_once_after_the_request(client: Any, app: Any, notify: NotifyStandin) -> None:
    response = client.submit("/register", {"email": "quick.person@example.com", "password": "purple-kettle-orbit-42"})
    assert response.status_code == 302
    [sent] = notify.sent
    assert sent["to"] == "quick.person@example.com"
