"""Repeat prescription use cases (rules 12-15) with a fake unit of work and a fake clinical system: every reason
an order is refused, ordering once per form, switches and proxies, a link that is down, and cancelling."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select

from patient_online.domain.access import Service
from patient_online.domain.errors import DomainError, InputError, NotAllowed, NotFound, ServiceOff
from patient_online.domain.outbox import MessageStatus
from patient_online.domain.prescriptions import (
    Collection,
    NotOrderable,
    PrescriptionType,
    RepeatItem,
    RepeatRequest,
    RequestStatus,
)
from patient_online.models import AuditEvent, OutboxMessage, Patient, Pharmacy, PrescriptionOrder, ProxyLink
from patient_online.services import outbox
from patient_online.services import prescriptions as rx
from patient_online.services.access import Acting, acting_for
from patient_online.services.unit_of_work import FixedClock
from tests.fakes import FakeUnitOfWork
from tests.unit.conftest import acting, patient, practice, user

PHARMACY = "FA001"
AMLODIPINE = RepeatItem("M1", "Amlodipine 5mg tablets", "One a day", "28 tablets", PrescriptionType.REPEAT)
RAMIPRIL = RepeatItem("M2", "Ramipril 5mg capsules", "One a day", "28 capsules", PrescriptionType.REPEAT)
KEY = "k" * 32


def the_patient(
    uow: FakeUnitOfWork,
    *items: RepeatItem,
    off: tuple[Service, ...] = (),
    prescriptions_enabled: bool = True,
    **rules: Any,
) -> Patient:
    """A patient with a nominated pharmacy and ``items`` (Amlodipine and Ramipril by default) on their template."""
    if uow.session.get(Pharmacy, PHARMACY) is None:
        uow.session.add(Pharmacy(ods_code=PHARMACY, name="Kingsbridge Pharmacy", address="1 High St", postcode="KB1"))
    where = practice(uow, off=off, **rules)
    who = patient(uow, where, nominated_pharmacy_ods=PHARMACY, prescriptions_enabled=prescriptions_enabled)
    uow.system.templates[who.nhs_number] = list(items or (AMLODIPINE, RAMIPRIL))
    return who


def ordering(uow: FakeUnitOfWork, *items: RepeatItem, **rules: Any) -> Acting:
    return acting(uow, the_patient(uow, *items, **rules))


def outstanding(uow: FakeUnitOfWork, who: Acting, item: RepeatItem, status: RequestStatus) -> str:
    """A request the clinical system already holds for the patient."""
    request = RepeatRequest("FR-OLD", (item.id,), (item.name,), status, uow.now() - dt.timedelta(days=1))
    uow.system.requests[request.id] = (who.ref, request, "old-key")
    return request.id


def orders(uow: FakeUnitOfWork) -> int:
    return int(uow.session.scalar(select(func.count(PrescriptionOrder.id))) or 0)


def assert_nothing_ordered(uow: FakeUnitOfWork) -> None:
    assert orders(uow) == 0
    assert "request_repeats" not in uow.system.calls
    assert "prescription.ordered" not in uow.audit_actions()
    assert uow.sent == []


# Rule 12: what cannot be ordered online, and why ------------------------------------------------------------
@pytest.mark.parametrize(
    ("item", "rules", "reason"),
    [
        (RepeatItem("A1", "Amoxicillin 500mg capsules", "", "", PrescriptionType.ACUTE), {}, NotOrderable.ACUTE),
        (
            RepeatItem("S1", "Sertraline 50mg", "", "", PrescriptionType.REPEAT, review_date=dt.date(2026, 3, 1)),
            {},
            NotOrderable.REVIEW_DUE,
        ),
        (
            RepeatItem("L1", "Levothyroxine", "", "", PrescriptionType.REPEAT, issues_allowed=6, issues_used=6),
            {},
            NotOrderable.ISSUES_USED,
        ),
        (
            RepeatItem("O1", "Omeprazole 20mg capsules", "", "", PrescriptionType.REPEAT),
            {"never_online": ["omeprazole"]},
            NotOrderable.NOT_ONLINE,
        ),
    ],
    ids=["acute", "past-review-date", "issues-used-up", "never-online-list"],
)
def test_an_item_that_cannot_be_ordered_online_is_refused_with_its_reason(
    uow: FakeUnitOfWork, item: RepeatItem, rules: dict[str, Any], reason: NotOrderable
) -> None:
    who = ordering(uow, item, AMLODIPINE, **rules)
    view = rx.repeat_template(uow, who)
    assert {line.item.id: line.reason for line in view.lines} == {item.id: reason, AMLODIPINE.id: None}

    with pytest.raises(InputError) as refused:
        rx.order_repeats(uow, who, [AMLODIPINE.id, item.id], "", KEY)
    assert refused.value.field == "items"
    assert refused.value.message == f"{item.name} cannot be ordered online. {reason.value}"
    assert_nothing_ordered(uow)


def test_an_item_already_requested_and_outstanding_is_refused(uow: FakeUnitOfWork) -> None:
    who = ordering(uow)
    outstanding(uow, who, AMLODIPINE, RequestStatus.APPROVED)
    with pytest.raises(InputError) as refused:
        rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY)
    assert refused.value.field == "items"
    assert refused.value.message == f"{AMLODIPINE.name} cannot be ordered online. {NotOrderable.ALREADY_REQUESTED}"
    assert_nothing_ordered(uow)


def test_an_item_whose_last_request_is_over_can_be_ordered_again(uow: FakeUnitOfWork) -> None:
    who = ordering(uow)
    outstanding(uow, who, AMLODIPINE, RequestStatus.ISSUED)
    assert rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY).status is RequestStatus.REQUESTED


def test_an_item_not_on_the_template_is_refused(uow: FakeUnitOfWork) -> None:
    with pytest.raises(InputError) as refused:
        rx.order_repeats(uow, ordering(uow), ["someone-elses"], "", KEY)
    assert (refused.value.field, refused.value.message) == ("items", "Select medicines from the list")
    assert_nothing_ordered(uow)


def test_a_note_over_the_practices_limit_is_refused_before_the_clinical_system_is_asked(uow: FakeUnitOfWork) -> None:
    who = ordering(uow, max_note_length=20)
    with pytest.raises(InputError) as refused:
        rx.order_repeats(uow, who, [AMLODIPINE.id], "x" * 21, KEY)
    assert (refused.value.field, refused.value.message) == ("note", "Enter a note of 20 characters or fewer")
    assert uow.system.calls == [] and uow.commits == 0
    assert_nothing_ordered(uow)
    assert rx.order_repeats(uow, who, [AMLODIPINE.id], "x" * 20, KEY).order.note == "x" * 20


@pytest.mark.parametrize(
    ("items", "key", "field", "message"),
    [
        ([], KEY, "items", "Select at least one medicine to order"),
        (["M1"], "short", "items", "Something went wrong with this form. Go back to your medicines and start again."),
    ],
)
def test_a_form_without_items_or_with_a_broken_key_is_refused(
    uow: FakeUnitOfWork, items: list[str], key: str, field: str, message: str
) -> None:
    with pytest.raises(InputError) as refused:
        rx.order_repeats(uow, ordering(uow), items, "", key)
    assert (refused.value.field, refused.value.message) == (field, message)
    assert uow.system.calls == []


def test_an_order_needs_a_nominated_pharmacy(uow: FakeUnitOfWork) -> None:
    who = ordering(uow)
    who.patient.nominated_pharmacy_ods = ""
    with pytest.raises(InputError) as refused:
        rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY)
    assert refused.value.field == "pharmacy"
    assert_nothing_ordered(uow)


# Ordering once ----------------------------------------------------------------------------------------------
def test_an_order_is_sent_with_a_ready_by_date_and_confirmed_by_email(uow: FakeUnitOfWork) -> None:
    who = ordering(uow)
    result = rx.order_repeats(uow, who, [AMLODIPINE.id, RAMIPRIL.id], " Going away ", KEY)
    assert not uow.in_transaction
    assert result.status is RequestStatus.REQUESTED and not result.replayed
    assert result.order.item_names == (AMLODIPINE.name, RAMIPRIL.name) and result.order.note == "Going away"
    assert result.order.ready_by == dt.date(2026, 3, 4)  # two working days after Monday
    assert result.pharmacy is not None and result.pharmacy.name == "Kingsbridge Pharmacy"
    [(ref, sent, key)] = uow.system.requests.values()
    assert ref == who.ref and key == KEY and sent.item_ids == (AMLODIPINE.id, RAMIPRIL.id)
    assert sent.pharmacy_ods == PHARMACY and result.order.external_id == sent.id
    [mail] = uow.sent
    assert mail.to == who.user.email and mail.template == "prescription_ordered"
    assert "has been sent to" in mail.body and "Kingsbridge Pharmacy by 4 March 2026" in mail.body
    assert uow.audit_actions() == ["prescription.ordered", "prescription.sent"]


def test_the_same_form_submitted_twice_makes_one_request_one_audit_event_and_one_email(uow: FakeUnitOfWork) -> None:
    who = ordering(uow)
    first = rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY)
    again = rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY)
    assert again.replayed and again.order == first.order
    assert len(uow.system.requests) == 1 and uow.system.calls.count("request_repeats") == 1
    assert orders(uow) == 1 and len(uow.sent) == 1
    assert uow.audit_actions().count("prescription.ordered") == 1


def test_someone_elses_idempotency_key_is_refused(uow: FakeUnitOfWork) -> None:
    rx.order_repeats(uow, ordering(uow), [AMLODIPINE.id], "", KEY)
    with pytest.raises(NotAllowed):
        rx.order_repeats(uow, ordering(uow), [AMLODIPINE.id], "", KEY)
    assert orders(uow) == 1


# Switched off, and proxies ----------------------------------------------------------------------------------
USE_CASES: dict[str, Callable[[FakeUnitOfWork, Acting], object]] = {
    "template": rx.repeat_template,
    "order": lambda uow, who: rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY),
    "requests": rx.list_requests,
    "cancel": lambda uow, who: rx.cancel_request(uow, who, "FR1"),
    "pharmacies": rx.pharmacy_choice,
    "nominate": lambda uow, who: rx.nominate_pharmacy(uow, who, PHARMACY),
    "confirmation": lambda uow, who: rx.order_for(uow, who, 1),
}


@pytest.mark.parametrize("use_case", USE_CASES)
@pytest.mark.parametrize("where", ["practice", "patient"])
def test_every_use_case_refuses_when_prescriptions_are_switched_off(
    uow: FakeUnitOfWork, use_case: str, where: str
) -> None:
    if where == "practice":
        who = acting(uow, the_patient(uow, off=(Service.PRESCRIPTIONS,)))
    else:
        who = acting(uow, the_patient(uow, prescriptions_enabled=False))
    with pytest.raises(ServiceOff):
        USE_CASES[use_case](uow, who)
    assert uow.system.calls == [] and uow.commits == 0
    assert_nothing_ordered(uow)


def proxy_for(uow: FakeUnitOfWork, whose: Patient, *, can_prescriptions: bool) -> Acting:
    """Someone acting for ``whose`` on the patient's consent, with or without the prescriptions permission."""
    person = user(uow)
    uow.session.add(
        ProxyLink(
            proxy_user_id=person.id,
            patient_id=whose.id,
            relationship_text="Daughter",
            basis="consent",
            status="active",
            can_prescriptions=can_prescriptions,
            patient_consent_at=uow.now(),
        )
    )
    uow.session.flush()
    found = acting_for(uow.session, person, whose.id)
    assert found is not None and found.is_proxy
    uow.commit()
    uow.commits = 0
    return found


def test_a_proxy_without_the_prescriptions_permission_is_refused(uow: FakeUnitOfWork) -> None:
    whose = the_patient(uow)
    acting(uow, whose)  # the patient's own account
    refused = proxy_for(uow, whose, can_prescriptions=False)
    for use_case in USE_CASES.values():
        with pytest.raises(ServiceOff):
            use_case(uow, refused)
    assert_nothing_ordered(uow)

    allowed = proxy_for(uow, whose, can_prescriptions=True)
    rx.order_repeats(uow, allowed, [AMLODIPINE.id], "", KEY)
    assert orders(uow) == 1
    [mail] = uow.sent
    assert mail.to == allowed.user.email


# The link is down: the order is queued ----------------------------------------------------------------------
def test_an_order_is_queued_when_the_link_is_down_and_the_patient_told(uow: FakeUnitOfWork) -> None:
    who = ordering(uow)
    uow.system.down = True
    result = rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY, offered={AMLODIPINE.id: AMLODIPINE.name})
    assert not uow.in_transaction
    assert result.status is RequestStatus.QUEUED and result.order.item_names == (AMLODIPINE.name,)
    assert result.order.ready_by == dt.date(2026, 3, 4)
    assert uow.system.requests == {}
    [message] = uow.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == rx.KIND))
    assert message.kind == rx.KIND and message.status == "pending" and message.idempotency_key == KEY
    [mail] = uow.sent
    assert "Their system is not available at the moment, so we will send your request" in mail.body
    assert uow.audit_actions() == ["prescription.ordered"]

    history = rx.list_requests(uow, who)
    assert not history.up_to_date
    [line] = history.lines
    assert line.request.status is RequestStatus.QUEUED and line.cancellable  # not sent yet: can be withdrawn
    assert line.ready_by == dt.date(2026, 3, 4) and line.pharmacy and line.pharmacy.ods_code == PHARMACY


def test_a_queued_order_is_sent_by_the_worker_once_the_link_is_back(uow: FakeUnitOfWork) -> None:
    who = ordering(uow)
    uow.system.down = True
    order = rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY, offered={AMLODIPINE.id: AMLODIPINE.name}).order
    uow.system.down = False
    assert isinstance(uow.clock, FixedClock)
    uow.clock.advance(minutes=1)
    assert outbox.deliver_due(uow, "worker-1").outcomes == [outbox.Outcome.DELIVERED]
    [(_, sent, key)] = uow.system.requests.values()
    row = uow.session.get_one(PrescriptionOrder, order.id)
    assert key == KEY and row.external_id == sent.id and row.status == RequestStatus.REQUESTED
    assert uow.audit_actions() == ["prescription.ordered", "prescription.sent"]
    assert [m.subject for m in uow.sent] == [
        "Your repeat prescription request",
        "Your repeat prescription request has been sent",
    ]


def test_an_order_the_clinical_system_refuses_is_marked_failed_and_the_patient_told(uow: FakeUnitOfWork) -> None:
    who = ordering(uow)
    uow.system.fail_next["request_repeats"] = NotFound()
    result = rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY)
    assert result.status is RequestStatus.FAILED
    assert uow.audit_actions() == ["prescription.ordered", "prescription.failed"]
    assert [m.subject for m in uow.sent] == [
        "We could not send your repeat prescription request",
        "Your repeat prescription request",
    ]
    assert "Contact them on 01632 960000" in uow.sent[-1].body


def test_with_the_link_down_only_offered_items_not_already_queued_can_be_ordered(uow: FakeUnitOfWork) -> None:
    who = ordering(uow)
    uow.system.down = True
    offered = {AMLODIPINE.id: AMLODIPINE.name}
    with pytest.raises(InputError) as not_offered:
        rx.order_repeats(uow, who, [RAMIPRIL.id], "", KEY, offered=offered)
    assert not_offered.value.message == "Select medicines from the list"
    rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY, offered=offered)
    with pytest.raises(InputError) as queued:
        rx.order_repeats(uow, who, [AMLODIPINE.id], "", "q" * 32, offered=offered)
    assert queued.value.message == f"{AMLODIPINE.name}: you have already requested this"
    assert orders(uow) == 1


# Cancelling (rule 13) ---------------------------------------------------------------------------------------
def test_a_request_can_be_cancelled_while_it_is_requested(uow: FakeUnitOfWork) -> None:
    who = ordering(uow)
    order = rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY).order
    cancelled = rx.cancel_request(uow, who, order.external_id)
    assert not uow.in_transaction
    assert cancelled.status is RequestStatus.CANCELLED
    assert uow.system.requests[order.external_id][1].status is RequestStatus.CANCELLED
    assert uow.session.get_one(PrescriptionOrder, order.id).status == RequestStatus.CANCELLED
    assert uow.audit_actions()[-1] == "prescription.cancelled"
    event = uow.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event is not None and event.detail == {"request_id": order.external_id, "order_id": order.id}
    assert {line.item.id: line.reason for line in rx.repeat_template(uow, who).lines}[AMLODIPINE.id] is None


@pytest.mark.parametrize("status", [RequestStatus.APPROVED, RequestStatus.REJECTED, RequestStatus.ISSUED])
def test_a_request_the_practice_has_dealt_with_cannot_be_cancelled(uow: FakeUnitOfWork, status: RequestStatus) -> None:
    who = ordering(uow)
    request_id = outstanding(uow, who, AMLODIPINE, status)
    with pytest.raises(DomainError) as refused:
        rx.cancel_request(uow, who, request_id)
    assert refused.value.message == rx.CANNOT_CANCEL
    assert "cancel_request" not in uow.system.calls and "prescription.cancelled" not in uow.audit_actions()


def test_someone_elses_request_cannot_be_cancelled(uow: FakeUnitOfWork) -> None:
    owner = ordering(uow)
    request_id = outstanding(uow, owner, AMLODIPINE, RequestStatus.REQUESTED)
    with pytest.raises(NotFound):
        rx.cancel_request(uow, ordering(uow), request_id)
    assert uow.system.requests[request_id][1].status is RequestStatus.REQUESTED


# The nominated pharmacy (rule 14) ---------------------------------------------------------------------------
def test_nominating_a_pharmacy_is_audited_and_an_unknown_one_refused(uow: FakeUnitOfWork) -> None:
    who = ordering(uow)
    uow.session.add(Pharmacy(ods_code="FA002", name="Station Road Pharmacy", address="45 Station Road"))
    chosen = rx.nominate_pharmacy(uow, who, " fa002 ")
    assert chosen.name == "Station Road Pharmacy" and who.patient.nominated_pharmacy_ods == "FA002"
    assert uow.audit_actions() == ["pharmacy.nominated"] and uow.commits == 1
    with pytest.raises(InputError) as refused:
        rx.nominate_pharmacy(uow, who, "XX999")
    assert (refused.value.field, refused.value.message) == ("pharmacy", "Select a pharmacy from the list")
    choice = rx.pharmacy_choice(uow, who, "station")
    assert choice.current == chosen and [p.ods_code for p in choice.results] == ["FA002"]


# The losing click of a double click answers with the order (issue 19) ----------------------------------------
def test_the_losing_click_of_a_double_submit_gets_the_order_not_a_refusal(
    uow: FakeUnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The twin request ordered (and sent) the items while this one asked the clinical system about them: the
    items now look "already requested", but they were requested by this very form."""
    who = ordering(uow)
    real = uow.system.list_repeat_template
    twin: list[rx.OrderResult] = []
    started: list[bool] = []

    def template_while_the_twin_orders(ref: Any) -> list[RepeatItem]:
        if not started:
            started.append(True)
            twin.append(rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY))
        return real(ref)

    monkeypatch.setattr(uow.system, "list_repeat_template", template_while_the_twin_orders)
    loser = rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY)
    assert loser.replayed and loser.order == twin[0].order
    assert orders(uow) == 1 and len(uow.system.requests) == 1 and len(uow.sent) == 1


def test_the_losing_click_while_the_link_is_down_gets_the_queued_order(
    uow: FakeUnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The twin queued the order after this request looked for the form's key and before it read the patient's
    outstanding orders: the item is queued by this very form, so this is its confirmation."""
    who = ordering(uow)
    uow.system.down = True
    offered = {AMLODIPINE.id: AMLODIPINE.name}
    real = rx._pharmacy
    twin: list[rx.OrderResult] = []
    started: list[bool] = []

    def pharmacy_while_the_twin_orders(unit: Any, ods: str) -> Any:
        if not started:
            started.append(True)
            twin.append(rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY, offered=offered))
        return real(unit, ods)

    monkeypatch.setattr(rx, "_pharmacy", pharmacy_while_the_twin_orders)
    loser = rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY, offered=offered)
    assert loser.replayed and loser.order == twin[0].order and loser.status is RequestStatus.QUEUED
    assert orders(uow) == 1 and len(uow.sent) == 1


# Where to collect it (issue 21) -----------------------------------------------------------------------------
def test_an_order_to_collect_from_the_surgery_reaches_the_clinical_system_without_a_pharmacy(
    uow: FakeUnitOfWork,
) -> None:
    who = ordering(uow)
    result = rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY, collection=Collection.SURGERY)
    assert result.status is RequestStatus.REQUESTED and result.pharmacy is None
    assert result.order.collection is Collection.SURGERY and result.order.pharmacy_ods == ""
    [(_, sent, _)] = uow.system.requests.values()
    assert sent.collection is Collection.SURGERY and sent.pharmacy_ods == ""
    event = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "prescription.ordered")).one()
    assert event.detail["collection"] == "surgery"
    [mail] = uow.sent
    assert f"ready for you to collect from {who.practice.name}" in mail.body and "Kingsbridge" not in mail.body
    [line] = rx.list_requests(uow, who).lines
    assert line.collection is Collection.SURGERY
    assert line.collect_from == "Paper prescription to collect from your GP practice"


def test_collecting_from_the_surgery_needs_no_nominated_pharmacy(uow: FakeUnitOfWork) -> None:
    who = ordering(uow)
    who.patient.nominated_pharmacy_ods = ""
    with pytest.raises(InputError) as refused:
        rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY, collection=Collection.PHARMACY)
    assert refused.value.field == "pharmacy"
    assert rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY, collection=Collection.SURGERY).order.collection == (
        Collection.SURGERY
    )


def test_a_form_that_did_not_ask_orders_to_the_nominated_pharmacy(uow: FakeUnitOfWork) -> None:
    who = ordering(uow)
    result = rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY)
    assert result.order.collection is Collection.PHARMACY and result.order.pharmacy_ods == PHARMACY
    [(_, sent, _)] = uow.system.requests.values()
    assert sent.collection is Collection.PHARMACY and sent.pharmacy_ods == PHARMACY


def test_a_queued_order_keeps_its_collection_and_request_time_when_sent_later(uow: FakeUnitOfWork) -> None:
    """The request time is when the patient asked: delivered an hour later, the list still says so, the
    clinical system is told so, and the delivery time is kept apart."""
    who = ordering(uow)
    asked = uow.now()
    uow.system.down = True
    offered = {AMLODIPINE.id: AMLODIPINE.name}
    order = rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY, offered=offered, collection=Collection.SURGERY).order
    assert order.requested_at == asked
    uow.system.down = False
    assert isinstance(uow.clock, FixedClock)
    uow.clock.advance(minutes=60)
    assert outbox.deliver_due(uow, "worker-1").outcomes == [outbox.Outcome.DELIVERED]
    [(_, sent, _)] = uow.system.requests.values()
    assert sent.requested_at == asked and sent.collection is Collection.SURGERY
    row = uow.session.get_one(PrescriptionOrder, order.id)
    assert row.created_at == asked and row.sent_at == asked + dt.timedelta(minutes=60)
    [line] = rx.list_requests(uow, who).lines
    assert line.request.id == sent.id and line.request.requested_at == asked
    assert line.sent_at == asked + dt.timedelta(minutes=60)


def test_the_list_keeps_the_patients_request_time_when_the_clinical_system_reports_another(
    uow: FakeUnitOfWork,
) -> None:
    """A clinical system that stamps a request with its arrival time does not move "Requested at"."""
    who = ordering(uow)
    order = rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY).order
    owner, request, key = uow.system.requests[order.external_id]
    uow.system.requests[order.external_id] = (
        owner,
        replace(request, requested_at=uow.now() + dt.timedelta(hours=3)),
        key,
    )
    [line] = rx.list_requests(uow, who).lines
    assert line.request.requested_at == order.requested_at == uow.now()


# Cancelling a queued order before it is sent (issue 21) -----------------------------------------------------
def queued_order(uow: FakeUnitOfWork, who: Acting) -> rx.OrderSummary:
    uow.system.down = True
    order = rx.order_repeats(uow, who, [AMLODIPINE.id], "", KEY, offered={AMLODIPINE.id: AMLODIPINE.name}).order
    assert order.status is RequestStatus.QUEUED
    return order


def test_a_queued_order_can_be_cancelled_before_it_is_sent_and_is_never_sent(uow: FakeUnitOfWork) -> None:
    who = ordering(uow)
    order = queued_order(uow, who)
    assert order.request_id == f"order-{order.id}"
    cancelled = rx.cancel_request(uow, who, order.request_id)
    assert not uow.in_transaction
    assert cancelled.status is RequestStatus.CANCELLED and cancelled.requested_at == order.requested_at
    assert uow.session.get_one(PrescriptionOrder, order.id).status == RequestStatus.CANCELLED
    [message] = uow.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == rx.KIND))
    assert message.status == MessageStatus.WITHDRAWN
    event = uow.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event is not None and event.action == "prescription.cancelled"
    assert event.detail == {"request_id": order.request_id, "order_id": order.id, "before_sending": True}
    assert "cancel_request" not in uow.system.calls

    tries = uow.system.calls.count("request_repeats")  # the one try while the link was down
    uow.system.down = False
    assert isinstance(uow.clock, FixedClock)
    uow.clock.advance(minutes=30)
    assert outbox.deliver_due(uow, "worker-1").outcomes == []
    assert uow.system.calls.count("request_repeats") == tries and uow.system.requests == {}
    [line] = rx.list_requests(uow, who).lines
    assert line.request.status is RequestStatus.CANCELLED and line.status_label == "Cancelled"
    assert not line.cancellable
    # The items can be ordered again.
    assert {x.item.id: x.reason for x in rx.repeat_template(uow, who).lines}[AMLODIPINE.id] is None


def test_a_queued_order_a_worker_is_sending_cannot_be_cancelled_yet(uow: FakeUnitOfWork) -> None:
    who = ordering(uow)
    order = queued_order(uow, who)
    [message] = uow.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == rx.KIND))
    message.locked_by, message.locked_until = "worker-1", uow.now() + dt.timedelta(minutes=1)  # in flight
    uow.commit()
    with pytest.raises(DomainError) as refused:
        rx.cancel_request(uow, who, order.request_id)
    assert refused.value.message == rx.BEING_SENT
    assert uow.session.get_one(PrescriptionOrder, order.id).status == RequestStatus.QUEUED
    assert uow.session.get_one(OutboxMessage, message.id).status == MessageStatus.PENDING
    assert "prescription.cancelled" not in uow.audit_actions()


def test_a_queued_order_sent_before_the_click_is_cancelled_in_the_clinical_system(uow: FakeUnitOfWork) -> None:
    who = ordering(uow)
    order = queued_order(uow, who)
    uow.system.down = False
    assert isinstance(uow.clock, FixedClock)
    uow.clock.advance(minutes=5)
    outbox.deliver_due(uow, "worker-1")
    cancelled = rx.cancel_request(uow, who, order.request_id)  # the page still showed "order-N"
    row = uow.session.get_one(PrescriptionOrder, order.id)
    assert cancelled.id == row.external_id and cancelled.status is RequestStatus.CANCELLED
    assert row.status == RequestStatus.CANCELLED and "cancel_request" in uow.system.calls


@pytest.mark.parametrize("request_id", ["order-999", "order-x", "order-99999999999"])
def test_an_unknown_or_someone_elses_queued_order_cannot_be_cancelled(uow: FakeUnitOfWork, request_id: str) -> None:
    owner = ordering(uow)
    order = queued_order(uow, owner)
    with pytest.raises(NotFound):
        rx.cancel_request(uow, ordering(uow), order.request_id)
    with pytest.raises(NotFound):
        rx.cancel_request(uow, owner, request_id)
    assert uow.session.get_one(PrescriptionOrder, order.id).status == RequestStatus.QUEUED


# Pharmacies near the practice (issue 21) --------------------------------------------------------------------
def test_pharmacies_are_listed_nearest_the_practice_first_then_unknown_ones_alphabetically(
    uow: FakeUnitOfWork,
) -> None:
    who = ordering(uow)
    who.practice.latitude, who.practice.longitude = 50.2840, -3.7770
    uow.session.get_one(Pharmacy, PHARMACY).latitude = None  # "Kingsbridge Pharmacy": no location
    uow.session.add_all(
        [
            Pharmacy(ods_code="FA002", name="Ashcombe Pharmacy", latitude=50.6062, longitude=-3.5466),
            Pharmacy(ods_code="FA003", name="Mill Lane Chemist", latitude=50.2846, longitude=-3.7790),
            Pharmacy(ods_code="FA004", name="Zeta Pharmacy", latitude=50.2905, longitude=-3.7850),
            Pharmacy(ods_code="FA005", name="Online Direct"),
        ]
    )
    uow.session.flush()
    found = rx.search_pharmacies(uow, who)
    assert [p.name for p in found] == [
        "Mill Lane Chemist",
        "Zeta Pharmacy",
        "Ashcombe Pharmacy",
        "Kingsbridge Pharmacy",
        "Online Direct",
    ]
    assert [p.distance for p in found] == ["0.1 miles", "0.6 miles", "24 miles", "", ""]
    assert [p.name for p in rx.search_pharmacies(uow, who, "pharmacy")][:2] == ["Zeta Pharmacy", "Ashcombe Pharmacy"]


def test_without_the_practices_location_pharmacies_are_alphabetical(uow: FakeUnitOfWork) -> None:
    who = ordering(uow)
    uow.session.add(Pharmacy(ods_code="FA002", name="Ashcombe Pharmacy", latitude=50.6, longitude=-3.5))
    uow.session.flush()
    found = rx.search_pharmacies(uow, who)
    assert [p.name for p in found] == ["Ashcombe Pharmacy", "Kingsbridge Pharmacy"]
    assert all(p.distance == "" for p in found)
