"""Appointment use cases (rules 9-11) with a fake unit of work and a fake clinical system: every reason a booking
or a cancellation is refused, switches and proxies, booking once per form, a link that is down, rescheduling that
never leaves the patient without an appointment, and no clinical call made with a transaction open."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from patient_online.domain.access import Service
from patient_online.domain.appointments import (
    Appointment,
    AppointmentStatus,
    BookingFailed,
    BookingLimitReached,
    CancellationQueued,
    CancellationRefused,
    Clinician,
    DeliveryMode,
    Slot,
)
from patient_online.domain.errors import (
    ClinicalSystemUnavailable,
    DomainError,
    NotFound,
    ServiceOff,
    SlotUnavailable,
)
from patient_online.models import AuditEvent, OutboxMessage, Patient, Practice, ProxyLink
from patient_online.services import appointments as service
from patient_online.services import outbox
from patient_online.services.access import Acting, proxy_access
from patient_online.services.appointments import queued_cancellation
from patient_online.services.unit_of_work import FixedClock, TransactionStillOpen
from tests.fakes import FakeUnitOfWork
from tests.unit.conftest import acting, patient, practice, user

PHONE = "01632 960000"
GP = Clinician("C1", "Dr Ada Byron", "GP")


def free_slot(uow: FakeUnitOfWork, sid: str, hours: float, slot_type: str = "Routine") -> Slot:
    """A free slot in the fake clinical system, ``hours`` after the fake clock's now."""
    start = uow.now() + dt.timedelta(hours=hours)
    slot = Slot(sid, start, start + dt.timedelta(minutes=10), slot_type, GP, DeliveryMode.FACE_TO_FACE, "Surgery")
    uow.system.slots[sid] = slot
    return slot


def book(uow: FakeUnitOfWork, who: Acting, sid: str, hours: float = 26, key: str = "") -> Appointment:
    slot = free_slot(uow, sid, hours)
    return service.book_appointment(uow, who, sid, "Sore knee", key or f"key-{sid}", slot.start)


def booked_ids(uow: FakeUnitOfWork) -> set[str]:
    return {a.id for _, a in uow.system.appointments.values() if a.status == AppointmentStatus.BOOKED}


def assert_nothing_recorded(uow: FakeUnitOfWork) -> None:
    assert uow.audit_actions() == [] and uow.sent == []


# Booking: what is refused -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("hours", "slot_type"),
    [
        (1, "Routine"),  # inside the 2-hour lead time
        (24 * 28 + 1, "Routine"),  # beyond the 28-day horizon
        (26, "Baby clinic"),  # a type the practice does not offer online
    ],
    ids=["inside-lead-time", "beyond-horizon", "not-online"],
)
def test_booking_is_refused_outside_the_window_or_for_a_type_not_offered(
    uow: FakeUnitOfWork, hours: float, slot_type: str
) -> None:
    who = acting(uow)
    slot = free_slot(uow, "s1", hours, slot_type)
    with pytest.raises(SlotUnavailable):
        service.book_appointment(uow, who, "s1", "Reason", "k", slot.start)
    assert "book" not in uow.system.calls and uow.system.appointments == {}
    assert_nothing_recorded(uow)


def test_a_slot_just_inside_the_window_is_booked(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    early, late = free_slot(uow, "early", 2), free_slot(uow, "late", 24 * 28)
    assert service.book_appointment(uow, who, "early", "Reason", "k1", early.start).slot.id == "early"
    assert service.book_appointment(uow, who, "late", "Reason", "k2", late.start).slot.id == "late"


def test_booking_is_refused_at_the_patients_maximum_of_future_appointments(uow: FakeUnitOfWork) -> None:
    who = acting(uow, max_future_appointments=1)
    book(uow, who, "first")
    slot = free_slot(uow, "second", 30)
    with pytest.raises(BookingLimitReached, match=f"You already have 1 appointment booked.*{PHONE}"):
        service.book_appointment(uow, who, "second", "Reason", "k2", slot.start)
    assert uow.system.calls.count("book") == 1
    assert uow.audit_actions() == ["appointment.booked"] and len(uow.sent) == 1
    page = service.find_slots(uow, who, service.SlotFilter())
    assert page.at_limit and "Cancel one of them" in page.limit_message


def test_booking_is_refused_when_the_practice_switch_is_off(uow: FakeUnitOfWork) -> None:
    who = acting(uow, patient(uow, practice(uow, off=(Service.APPOINTMENTS,))))
    slot = free_slot(uow, "s1", 26)
    with pytest.raises(ServiceOff):
        service.book_appointment(uow, who, "s1", "Reason", "k", slot.start)
    with pytest.raises(ServiceOff):
        service.find_slots(uow, who, service.SlotFilter())
    assert uow.system.calls == []
    assert_nothing_recorded(uow)


def test_booking_is_refused_when_the_patients_own_appointments_are_switched_off(uow: FakeUnitOfWork) -> None:
    who = acting(uow, patient(uow, practice(uow), appointments_enabled=False))
    slot = free_slot(uow, "s1", 26)
    with pytest.raises(ServiceOff):
        service.book_appointment(uow, who, "s1", "Reason", "k", slot.start)
    with pytest.raises(ServiceOff):
        service.find_days(uow, who, service.SlotFilter())
    assert uow.system.calls == []
    assert_nothing_recorded(uow)


@pytest.mark.parametrize("switched_off", ["for everyone", "for this patient"])
def test_with_appointments_switched_off_the_patient_still_sees_theirs_read_only(
    uow: FakeUnitOfWork, switched_off: str
) -> None:
    where = practice(uow, off=(Service.APPOINTMENTS,) if switched_off == "for everyone" else ())
    for switch in where.switches:
        if switch.service == Service.APPOINTMENTS.value and not switch.enabled:
            switch.message = "Online booking is paused until 4 January."
    who = acting(uow, patient(uow, where, appointments_enabled=switched_off != "for this patient"))
    held = Appointment("A1", free_slot(uow, "s1", 26), AppointmentStatus.BOOKED, reason="Sore knee")
    uow.system.appointments["A1"] = (who.ref, held)

    listed = service.list_appointments(uow, who)
    assert listed.read_only and not listed.may_book_more and listed.limit_message == ""
    assert [i.id for i in listed.upcoming] == ["A1"] and not listed.upcoming[0].may_change
    assert listed.by_phone == f"To cancel or change an appointment, call {where.name} on {PHONE}."
    assert listed.off_message == (
        "Online booking is paused until 4 January."
        if switched_off == "for everyone"
        else f"Contact {where.name} about online access to your appointments."
    )
    assert uow.audit_actions() == ["appointments.viewed"]
    item = service.get_appointment(uow, who, "A1")
    assert not item.may_change
    assert item.refusal == f"To cancel or change this appointment, call {where.name} on {PHONE}."
    with pytest.raises(ServiceOff):
        service.cancel_appointment(uow, who, "A1", "")
    with pytest.raises(ServiceOff):
        service.start_booking(uow, who)
    assert booked_ids(uow) == {"A1"}


def test_a_refusal_names_the_practice_as_it_is_written(uow: FakeUnitOfWork) -> None:
    who = acting(uow, cancellation_cutoff_hours=48)
    book(uow, who, "s1", hours=26)
    [item] = service.list_appointments(uow, who).upcoming
    assert f"Call {who.practice.name} on {PHONE}." in item.refusal, "never lower-cased"


def proxy_for(uow: FakeUnitOfWork, whose: Patient, *, can_appointments: bool) -> Acting:
    """Someone acting for ``whose`` on the patient's consent, with or without the appointments permission."""
    person = user(uow)
    link = ProxyLink(
        proxy_user_id=person.id,
        patient_id=whose.id,
        relationship_text="Son",
        basis="consent",
        status="active",
        can_appointments=can_appointments,
        patient_consent_at=uow.now(),
    )
    uow.session.add(link)
    uow.session.flush()
    found = Acting(person, whose, whose.practice, proxy_access(uow.session, link), proxy=link)
    uow.commit()
    uow.commits = 0
    return found


def test_a_proxy_without_the_appointments_permission_is_refused(uow: FakeUnitOfWork) -> None:
    whose = patient(uow, practice(uow))
    acting(uow, whose)  # the patient's own account
    refused = proxy_for(uow, whose, can_appointments=False)
    slot = free_slot(uow, "s1", 26)
    with pytest.raises(ServiceOff):
        service.book_appointment(uow, refused, "s1", "Reason", "k", slot.start)
    with pytest.raises(ServiceOff):
        service.find_slots(uow, refused, service.SlotFilter())
    with pytest.raises(ServiceOff):
        service.list_appointments(uow, refused)  # nor do they see the patient's appointments
    assert uow.system.calls == []
    assert_nothing_recorded(uow)

    allowed = proxy_for(uow, whose, can_appointments=True)
    service.book_appointment(uow, allowed, "s1", "Reason", "k", slot.start)
    [mail] = uow.sent
    assert mail.to == allowed.user.email and f"for {whose.given_name}" in mail.body
    assert uow.audit_actions() == ["appointment.booked"]


# Booking once per form ----------------------------------------------------------------------------------------
def test_a_double_submit_books_once_with_one_audit_event_and_one_email(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    slot = free_slot(uow, "s1", 26)
    first = service.book_appointment(uow, who, "s1", "Reason", "same-key", slot.start)
    second = service.book_appointment(uow, who, "s1", "Reason", "same-key", slot.start)
    assert first.id == second.id and len(uow.system.appointments) == 1
    assert uow.audit_actions() == ["appointment.booked"]
    [mail] = uow.sent
    assert mail.template == "appointment_booked" and PHONE in mail.body and "Sore" not in mail.body


def test_a_booking_whose_first_answer_was_lost_is_recorded_once(uow: FakeUnitOfWork) -> None:
    """The clinical system booked the first attempt, but the request died before recording it."""
    who = acting(uow)
    slot = free_slot(uow, "s1", 26)
    taken = uow.system.book(who.ref, "s1", "Reason", "same-key")
    for _ in range(2):
        assert service.book_appointment(uow, who, "s1", "Reason", "same-key", slot.start).id == taken.id
    assert uow.audit_actions() == ["appointment.booked"] and len(uow.sent) == 1


def test_booking_when_the_link_is_down_books_nothing_and_says_try_again(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    slot = free_slot(uow, "s1", 26)
    uow.system.fail_next["book"] = ClinicalSystemUnavailable()
    with pytest.raises(BookingFailed, match=f"you will not be booked twice.*{PHONE}"):
        service.book_appointment(uow, who, "s1", "Reason", "k", slot.start)
    assert uow.system.appointments == {}
    assert_nothing_recorded(uow)


# Cancelling -------------------------------------------------------------------------------------------------
def test_cancelling_inside_the_cutoff_is_refused(uow: FakeUnitOfWork) -> None:
    who = acting(uow, cancellation_cutoff_hours=30)
    appointment = book(uow, who, "s1", hours=26)
    with pytest.raises(CancellationRefused, match=f"less than 30 hours away.*{PHONE}"):
        service.cancel_appointment(uow, who, appointment.id, "Better")
    assert "cancel" not in uow.system.calls and booked_ids(uow) == {appointment.id}
    assert uow.audit_actions() == ["appointment.booked"]


def test_cancelling_is_audited_without_the_reason_and_confirmed(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    appointment = book(uow, who, "s1")
    cancelled = service.cancel_appointment(uow, who, appointment.id, "Feeling better")
    assert cancelled.status == AppointmentStatus.CANCELLED and booked_ids(uow) == set()
    assert uow.audit_actions() == ["appointment.booked", "appointment.cancelled"]
    assert uow.sent[-1].template == "appointment_cancelled" and "better" not in uow.sent[-1].body


def test_someone_elses_appointment_cannot_be_cancelled(uow: FakeUnitOfWork) -> None:
    owner, other = acting(uow), acting(uow)
    appointment = book(uow, owner, "s1")
    with pytest.raises(NotFound):
        service.cancel_appointment(uow, other, appointment.id)
    assert booked_ids(uow) == {appointment.id}


def test_cancelling_when_the_link_is_down_is_queued_once(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    appointment = book(uow, who, "s1")
    for _ in range(2):  # a double submit while the link is down queues one cancellation
        uow.system.fail_next["cancel"] = ClinicalSystemUnavailable()
        with pytest.raises(CancellationQueued, match=f"kept your cancellation.*{PHONE}"):
            service.cancel_appointment(uow, who, appointment.id, "Better")
    [queued] = uow.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == service.CANCEL_KIND)).all()
    assert queued.idempotency_key == f"cancel:{who.practice.ods_code}:FA1"
    assert queued.payload["appointment_id"] == appointment.id and queued.payload["email"] == who.user.email
    assert uow.audit_actions() == ["appointment.booked", "appointment.cancel_queued"]
    assert [m.template for m in uow.sent] == ["appointment_booked", "appointment_cancel_queued"]
    assert booked_ids(uow) == {appointment.id}


def queued_message(uow: FakeUnitOfWork, who: Acting) -> OutboxMessage:
    appointment = book(uow, who, "s1")
    uow.system.fail_next["cancel"] = ClinicalSystemUnavailable()
    with pytest.raises(CancellationQueued):
        service.cancel_appointment(uow, who, appointment.id)
    return uow.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == service.CANCEL_KIND)).one()


def test_a_queued_cancellation_is_sent_outside_the_transaction_and_its_outcome_told(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    message = queued_message(uow, who)
    send = queued_cancellation.prepare_cancel(uow, message)
    assert uow.system.calls.count("cancel") == 1  # prepare only reads
    uow.commit()
    assert send() == {"status": "cancelled"} and booked_ids(uow) == set()
    queued_cancellation.cancel_delivered(uow, message)
    assert uow.audit_actions()[-1] == "appointment.cancelled"
    assert uow.sent[-1].template == "appointment_cancelled" and uow.sent[-1].to == who.user.email


def test_a_queued_cancellation_the_practice_refuses_is_reported(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    message = queued_message(uow, who)
    queued_cancellation.cancel_failed(uow, message)
    assert uow.audit_actions()[-1] == "appointment.cancel_failed"
    assert uow.sent[-1].template == "appointment_cancel_failed" and PHONE in uow.sent[-1].body


# Rescheduling ---------------------------------------------------------------------------------------------
def test_rescheduling_books_the_new_time_before_cancelling_the_old(uow: FakeUnitOfWork) -> None:
    who = acting(uow, max_future_appointments=1)
    old = book(uow, who, "old", hours=48)
    new_slot = free_slot(uow, "new", 30)
    outcome = service.reschedule_appointment(uow, who, old.id, "new", "Reason", "k2", new_slot.start)
    assert outcome.old_cancelled and outcome.new.slot.id == "new"
    calls = uow.system.calls
    assert calls.index("book", calls.index("book") + 1) < calls.index("cancel")
    assert booked_ids(uow) == {outcome.new.id}
    assert uow.audit_actions() == ["appointment.booked", "appointment.rescheduled"]
    assert uow.sent[-1].template == "appointment_rescheduled"


@pytest.mark.parametrize(
    ("failure", "refusal"),
    [(ClinicalSystemUnavailable(), BookingFailed), (SlotUnavailable(), SlotUnavailable)],
    ids=["link-down", "slot-taken"],
)
def test_rescheduling_that_cannot_book_keeps_the_old_appointment(
    uow: FakeUnitOfWork, failure: Exception, refusal: type[Exception]
) -> None:
    who = acting(uow)
    old = book(uow, who, "old", hours=48)
    new_slot = free_slot(uow, "new", 30)
    uow.system.fail_next["book"] = failure
    with pytest.raises(refusal, match="You still have your appointment"):
        service.reschedule_appointment(uow, who, old.id, "new", "Reason", "k2", new_slot.start)
    assert "cancel" not in uow.system.calls and booked_ids(uow) == {old.id}
    assert uow.audit_actions() == ["appointment.booked"]


def test_rescheduling_that_cannot_cancel_the_old_leaves_both_and_says_so(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    old = book(uow, who, "old", hours=48)
    new_slot = free_slot(uow, "new", 30)
    uow.system.fail_next["cancel"] = ClinicalSystemUnavailable()
    outcome = service.reschedule_appointment(uow, who, old.id, "new", "Reason", "k2", new_slot.start)
    assert not outcome.old_cancelled and booked_ids(uow) == {old.id, outcome.new.id}
    assert uow.audit_actions() == ["appointment.booked", "appointment.booked", "appointment.reschedule_incomplete"]
    assert uow.sent[-1].template == "appointment_reschedule_incomplete"
    assert "could not cancel your old appointment" in uow.sent[-1].body
    lines = service.practice_bookings(uow, who.practice, uow.today(), 3)
    assert [line.needs_action for day in lines for line in day.lines].count(True) == 1


def test_rescheduling_inside_the_cutoff_is_refused_before_anything_is_booked(uow: FakeUnitOfWork) -> None:
    who = acting(uow, cancellation_cutoff_hours=30)
    old = book(uow, who, "old", hours=26)
    new_slot = free_slot(uow, "new", 48)
    with pytest.raises(CancellationRefused, match="cannot change this appointment"):
        service.reschedule_appointment(uow, who, old.id, "new", "Reason", "k2", new_slot.start)
    assert uow.system.calls.count("book") == 1 and booked_ids(uow) == {old.id}


# Reading, and the transaction around clinical calls -------------------------------------------------------------
def test_the_list_puts_upcoming_first_and_says_what_may_be_changed(uow: FakeUnitOfWork) -> None:
    who = acting(uow, cancellation_cutoff_hours=30)
    near, later = book(uow, who, "near", hours=26), book(uow, who, "later", hours=72)
    listed = service.list_appointments(uow, who)
    assert [i.id for i in listed.upcoming] == [near.id, later.id] and listed.past == []
    assert not listed.upcoming[0].may_change and PHONE in listed.upcoming[0].refusal
    assert listed.upcoming[1].may_change and not listed.may_book_more
    assert not uow.in_transaction
    assert uow.audit_actions()[-1] == "appointments.viewed"


def test_a_clinical_call_with_a_transaction_open_raises(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    uow.session.scalar(select(Practice).where(Practice.id == who.practice.id))  # a read opens a transaction
    system = uow.clinical(who.practice)
    with pytest.raises(TransactionStillOpen):
        system.list_appointments(who.ref, uow.now())
    assert uow.system.calls == []
    uow.release()
    assert system.list_appointments(who.ref, uow.now()) == []


def test_the_calendar_file_is_named_by_the_london_time(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    appointment = book(uow, who, "s1", hours=26)  # 11:00 on 3 March, GMT
    name, content = service.calendar_file(uow, who, appointment.id)
    assert name == "appointment-2026-03-03-1100.ics" and b"Sore knee" not in content


# Exactly once, whatever the timing (issue 19) ----------------------------------------------------------------
def count_rows(uow: FakeUnitOfWork, table: str) -> int:
    return int(uow.session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)


def fail_recording_once(uow: FakeUnitOfWork, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the next booking's record fail as a database that went away would (the fake's notifier sends at
    once, so the failure comes before the confirmation; the integration test fails the commit itself)."""
    failed: list[str] = []
    real = uow.audit

    def audit(action: str, **kwargs: Any) -> AuditEvent:
        if action == "appointment.booked" and not failed:
            failed.append(action)
            raise OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly"))
        return real(action, **kwargs)

    monkeypatch.setattr(uow, "audit", audit)
    return failed


def test_a_booking_the_gateway_failed_to_record_is_recorded_once_by_the_next_list(
    uow: FakeUnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clinical system booked it, then the database failed: the patient is told to check their list, and
    the next look at the list records the booking with one confirmation."""
    who = acting(uow)
    slot = free_slot(uow, "s1", 26)
    failed = fail_recording_once(uow, monkeypatch)
    with pytest.raises(DomainError, match=r"may have been booked.*appointments"):
        service.book_appointment(uow, who, "s1", "Reason", "lost-key", slot.start)
    assert failed and booked_ids(uow) and uow.sent == []

    listed = service.list_appointments(uow, who)
    assert [item.appointment.slot.id for item in listed.upcoming] == ["s1"]
    assert uow.audit_actions().count("appointment.booked") == 1
    [mail] = uow.sent
    assert mail.template == "appointment_booked" and mail.to == who.user.email
    service.list_appointments(uow, who)
    assert uow.audit_actions().count("appointment.booked") == 1 and len(uow.sent) == 1
    assert count_rows(uow, "booking_intent") == 0


def test_a_booking_whose_answer_timed_out_is_recorded_once_by_the_next_list(
    uow: FakeUnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clinical system took the booking but its answer never came back: "try again", then the list finds it."""
    who = acting(uow)
    slot = free_slot(uow, "s1", 26)
    real_book = uow.system.book

    def book_then_time_out(*args: Any) -> Appointment:
        real_book(*args)
        raise ClinicalSystemUnavailable()

    monkeypatch.setattr(uow.system, "book", book_then_time_out)
    with pytest.raises(BookingFailed):
        service.book_appointment(uow, who, "s1", "Reason", "slow-key", slot.start)
    assert uow.sent == []
    service.list_appointments(uow, who)
    service.list_appointments(uow, who)
    assert uow.audit_actions().count("appointment.booked") == 1 and len(uow.sent) == 1


def test_an_intent_that_led_to_no_booking_is_dropped_after_a_while(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    slot = free_slot(uow, "s1", 26)
    uow.system.fail_next["book"] = ClinicalSystemUnavailable()
    with pytest.raises(BookingFailed):
        service.book_appointment(uow, who, "s1", "Reason", "k", slot.start)
    service.list_appointments(uow, who)
    assert count_rows(uow, "booking_intent") == 1  # too recent to give up on: the booking may still appear
    assert isinstance(uow.clock, FixedClock)
    uow.clock.advance(hours=2)
    service.list_appointments(uow, who)
    assert count_rows(uow, "booking_intent") == 0
    assert "appointment.booked" not in uow.audit_actions() and uow.sent == []


def test_a_booking_refused_for_certain_leaves_nothing_to_reconcile(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    slot = free_slot(uow, "s1", 26)
    uow.system.fail_next["book"] = SlotUnavailable()
    with pytest.raises(SlotUnavailable):
        service.book_appointment(uow, who, "s1", "Reason", "k", slot.start)
    assert count_rows(uow, "booking_intent") == 0


def test_a_booking_already_recorded_by_a_twin_request_answers_the_same_without_recording_again(
    uow: FakeUnitOfWork,
) -> None:
    """A double click served by two servers: the twin recorded the booking first (its row holds the unique key),
    so this request answers with the same appointment and writes no second event or email."""
    who = acting(uow)
    slot = free_slot(uow, "s1", 26)
    taken = uow.system.book(who.ref, "s1", "Reason", "same-key")
    uow.session.execute(
        text(
            "INSERT INTO booking_record (practice_id, appointment_ref, patient_id, action, created_at) "
            "VALUES (:practice, :ref, :patient, 'appointment.booked', :at)"
        ),
        {"practice": who.practice.id, "ref": taken.id, "patient": who.patient.id, "at": uow.now()},
    )
    uow.commit()
    assert service.book_appointment(uow, who, "s1", "Reason", "same-key", slot.start).id == taken.id
    assert "appointment.booked" not in uow.audit_actions() and uow.sent == []
    assert count_rows(uow, "booking_record") == 1


def test_a_reconciled_proxy_booking_is_confirmed_to_the_proxy(
    uow: FakeUnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    whose = patient(uow, practice(uow))
    own = acting(uow, whose)
    proxy = proxy_for(uow, whose, can_appointments=True)
    slot = free_slot(uow, "s1", 26)
    fail_recording_once(uow, monkeypatch)
    with pytest.raises(DomainError):
        service.book_appointment(uow, proxy, "s1", "Reason", "proxy-key", slot.start)
    service.list_appointments(uow, own)  # the patient looks first: the proxy who booked is the one told
    [mail] = uow.sent
    assert mail.to == proxy.user.email and f"for {whose.given_name}" in mail.body
    event = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "appointment.booked")).one()
    assert (event.actor_user_id, event.actor_role) == (proxy.user.id, "proxy")


def test_the_outbox_worker_records_a_lost_booking_for_a_patient_who_never_comes_back(
    uow: FakeUnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    who = acting(uow)
    slot = free_slot(uow, "s1", 26)
    fail_recording_once(uow, monkeypatch)
    with pytest.raises(DomainError):
        service.book_appointment(uow, who, "s1", "Reason", "lost-key", slot.start)
    assert outbox.deliver_due(uow, "w1").outcomes == []  # not due yet: the request may still be recording it
    assert isinstance(uow.clock, FixedClock)
    uow.clock.advance(minutes=11)
    assert outbox.deliver_due(uow, "w1").outcomes == [outbox.Outcome.DELIVERED]
    event = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "appointment.booked")).one()
    assert event.detail["slot_id"] == "s1" and event.detail["reconciled"] is True and "Reason" not in str(event.detail)
    [mail] = uow.sent
    assert mail.to == who.user.email and "is booked" in mail.body
    service.list_appointments(uow, who)
    assert uow.audit_actions().count("appointment.booked") == 1 and len(uow.sent) == 1
    assert count_rows(uow, "booking_intent") == 0


def test_the_outbox_check_of_a_booking_recorded_at_once_asks_the_practice_nothing(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    book(uow, who, "s1")
    calls = len(uow.system.calls)
    assert isinstance(uow.clock, FixedClock)
    uow.clock.advance(minutes=11)
    assert outbox.deliver_due(uow, "w1").outcomes == [outbox.Outcome.DELIVERED]
    assert len(uow.system.calls) == calls and len(uow.sent) == 1
    assert uow.audit_actions().count("appointment.booked") == 1


# Finding a time, phone first: a type, a day, a time ------------------------------------------------------------
NURSE = Clinician("C2", "Nurse Mary Seacole", "Practice nurse")


def slot_at(uow: FakeUnitOfWork, sid: str, day: dt.date, hour: int, minute: int = 0, who: Clinician = GP) -> Slot:
    """A free slot at a London time of ``day``."""
    start = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=service.LONDON).astimezone(dt.UTC)
    slot = Slot(sid, start, start + dt.timedelta(minutes=10), "Routine", who, DeliveryMode.FACE_TO_FACE, "Surgery")
    uow.system.slots[sid] = slot
    return slot


def test_the_day_step_lists_the_next_days_with_times_and_how_many(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    first = (uow.now() + dt.timedelta(days=1)).astimezone(service.LONDON).date()
    days = [first + dt.timedelta(days=2 * n) for n in range(service.DAYS_SHOWN + 2)]  # beyond one week's search
    for n, day in enumerate(days):
        slot_at(uow, f"s{n}", day, 10)
    slot_at(uow, "extra", days[0], 11, who=NURSE)
    free_slot(uow, "other-type", 30, "Baby clinic")

    start = service.start_booking(uow, who)
    assert start.slot_types == ["Routine"] and not start.limit_message
    page = service.find_days(uow, who, service.SlotFilter())
    assert [c.day for c in page.days] == days[: service.DAYS_SHOWN]
    assert page.days[0].count == 2 and {c.count for c in page.days[1:]} == {1}
    assert page.later_start == days[service.DAYS_SHOWN]
    later = service.find_days(uow, who, service.SlotFilter(start_day=page.later_start))
    assert [c.day for c in later.days] == days[service.DAYS_SHOWN :] and later.later_start is None
    nurse = service.find_days(uow, who, service.SlotFilter(clinician_id=NURSE.id))
    assert [(c.day, c.count) for c in nurse.days] == [(days[0], 1)]
    assert [c.id for c in page.clinicians] == [GP.id, NURSE.id]


def test_the_time_step_lists_one_days_times_in_time_order_whoever_they_are_with(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    day = (uow.now() + dt.timedelta(days=3)).astimezone(service.LONDON).date()
    slot_at(uow, "gp-late", day, 15, 30)
    slot_at(uow, "nurse", day, 9, 10, who=NURSE)
    slot_at(uow, "gp-early", day, 9, 0)
    slot_at(uow, "gp-mid", day, 9, 20)
    slot_at(uow, "next-day", day + dt.timedelta(days=1), 8, 0)
    page = service.find_times(uow, who, service.SlotFilter(), day)
    assert [s.id for s in page.slots] == ["gp-early", "nurse", "gp-mid", "gp-late"]
    assert [s.id for s in service.find_times(uow, who, service.SlotFilter(clinician_id=NURSE.id), day).slots] == [
        "nurse"
    ]
    assert service.find_times(uow, who, service.SlotFilter(), day + dt.timedelta(days=60)).slots == []
    assert uow.system.calls.count("search_slots") <= 3, "one search a page (the last day is outside the window)"


def test_at_the_maximum_the_first_step_says_so(uow: FakeUnitOfWork) -> None:
    who = acting(uow, max_future_appointments=1)
    book(uow, who, "s1")
    start = service.start_booking(uow, who)
    assert "Cancel one of them" in start.limit_message
    assert service.find_days(uow, who, service.SlotFilter()).days == []
