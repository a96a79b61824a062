"""Online appointments: find free slots, book, cancel, reschedule, add to a calendar (design rules 6, 9-11).

Everything goes through the practice's appointment-book port, so the demo and GP Connect adapters behave
alike. Each use case ends the request's read transaction before it calls the clinical system, and records
the outcome (audit event and confirmation message) in one transaction afterwards.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from icalendar import Calendar, Event
from sqlalchemy import select
from sqlalchemy.orm import Session

from patient_online.domain.access import Service
from patient_online.domain.appointments import (
    LONDON,
    Appointment,
    AppointmentRules,
    AppointmentStatus,
    BookingFailed,
    BookingLimitReached,
    CancellationQueued,
    CancellationRefused,
    Clinician,
    DeliveryMode,
    Slot,
    SlotDay,
    SlotQuery,
    clean_reason,
    group_by_day,
    is_upcoming,
    split_upcoming,
)
from patient_online.domain.errors import ClinicalSystemUnavailable, NotFound, SlotUnavailable
from patient_online.domain.patients import PatientRef
from patient_online.domain.ports import ClinicalSystem
from patient_online.extensions import WRITE_TRANSACTION
from patient_online.models import AuditEvent, OutboxMessage, Patient, Practice, User

from . import audit, notify, outbox
from .access import Acting
from .clinical import system_for
from .slot_cache import slot_cache

log = logging.getLogger("patient_online.appointments")

HISTORY_DAYS = 400  # how far back the appointment list reaches
WEEK_DAYS = 7
BOOKING_ACTIONS = ("appointment.booked", "appointment.rescheduled")
RECEPTION_ACTIONS = (
    "appointment.booked",
    "appointment.cancelled",
    "appointment.rescheduled",
    "appointment.reschedule_incomplete",
)


def rules_for(practice: Practice) -> AppointmentRules:
    """The practice's booking rules (design rule 6), as the manager set them."""
    return AppointmentRules(
        online_slot_types=frozenset(str(t) for t in practice.online_slot_types or ()),
        horizon_days=practice.booking_horizon_days,
        lead_time_hours=practice.min_lead_time_hours,
        max_future_appointments=practice.max_future_appointments,
        cancellation_allowed=practice.cancellation_allowed,
        cancellation_cutoff_hours=practice.cancellation_cutoff_hours,
    )


def _utcnow(now: dt.datetime | None) -> dt.datetime:
    return now if now is not None else dt.datetime.now(dt.UTC)


def _local_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(LONDON).date()


def _when(moment: dt.datetime) -> str:
    local = moment.astimezone(LONDON)
    return f"{local:%A} {local.day} {local:%B %Y} at {local.strftime('%-I:%M%p').lower()}"


def _call(practice: Practice) -> str:
    return f"call {practice.name} on {practice.phone}" if practice.phone else f"contact {practice.name}"


def _release(session: Session) -> None:
    """Never hold a database transaction open across a clinical-system call: end the request's reads first."""
    session.commit()


def _writing(session: Session) -> None:
    """Start the transaction that records an outcome with the write lock taken (SQLite), so it never fails
    half-way when it reads before it writes and other bookings are being recorded at the same moment."""
    target: Session = session if isinstance(session, Session) else cast(Any, session)()  # a scoped_session
    if not target.in_transaction():
        target.connection(execution_options=WRITE_TRANSACTION)


def _system(session: Session, acting: Acting) -> ClinicalSystem:
    _release(session)
    return system_for(acting.practice)


def _upcoming(system: ClinicalSystem, acting: Acting, now: dt.datetime) -> list[Appointment]:
    return [a for a in system.list_appointments(acting.ref, now) if is_upcoming(a, now)]


def _limit_message(rules: AppointmentRules, practice: Practice) -> str:
    most = rules.max_future_appointments
    words = "1 appointment" if most == 1 else f"{most} appointments"
    return (
        f"You already have {words} booked, the most you can book online at one time. "
        f"Cancel one of them to book another, or {_call(practice)}."
    )


def _check_limit(rules: AppointmentRules, practice: Practice, others: Sequence[Appointment]) -> None:
    if not rules.may_book_more(len(others)):
        raise BookingLimitReached(_limit_message(rules, practice))


def _offered_slot(
    system: ClinicalSystem, rules: AppointmentRules, slot_id: str, at: dt.datetime | None, now: dt.datetime
) -> Slot:
    """The slot if it is still free and the practice offers it online now (rule 9), else SlotUnavailable.

    ``at`` (the start the page showed) narrows the search to one day; a wrong one only means "not found".
    """
    earliest, latest = rules.window(now)
    if not rules.online_slot_types:
        raise SlotUnavailable()
    start, end = earliest, latest
    if at is not None and earliest <= at <= latest:
        start, end = at, at + dt.timedelta(days=1)
    found = system.search_slots(SlotQuery(start=start, end=end, slot_types=rules.online_slot_types))
    slot = next((s for s in found if s.id == slot_id), None)
    if slot is None or not rules.may_offer(slot, now):
        raise SlotUnavailable()
    return slot


def _held(system: ClinicalSystem, acting: Acting, slot_id: str, now: dt.datetime) -> Appointment | None:
    """The patient's own booking of this slot, if an earlier attempt (a double submit) already took it."""
    try:
        return next((a for a in _upcoming(system, acting, now) if a.slot.id == slot_id), None)
    except ClinicalSystemUnavailable:
        return None


# Audit and messages --------------------------------------------------------------------------------------
def _slot_detail(appointment: Appointment, prefix: str = "") -> dict[str, Any]:
    """What staff and the audit trail may know about a booking: never the reason, which may be clinical."""
    slot = appointment.slot
    return {
        f"{prefix}appointment_id": appointment.id,
        f"{prefix}slot_id": slot.id,
        f"{prefix}start": slot.start.isoformat(),
        f"{prefix}end": slot.end.isoformat(),
        f"{prefix}clinician": slot.clinician.name,
        f"{prefix}clinician_role": slot.clinician.role,
        f"{prefix}slot_type": slot.slot_type,
        f"{prefix}delivery_mode": slot.delivery_mode.value,
    }


def _record(session: Session, acting: Acting, action: str, **detail: Any) -> None:
    audit.record(
        session,
        action,
        actor_id=acting.user.id,
        actor_role=acting.actor_role,
        patient_id=acting.patient.id,
        practice_id=acting.practice.id,
        **detail,
    )


def _already_recorded(session: Session, acting: Acting, appointment_id: str) -> bool:
    recent = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.patient_id == acting.patient.id, AuditEvent.action.in_(BOOKING_ACTIONS))
        .order_by(AuditEvent.id.desc())
        .limit(50)
    )
    return any((e.detail or {}).get("appointment_id") == appointment_id for e in recent)


def describe(appointment: Appointment, practice: Practice) -> str:
    """One appointment in words, for messages: when, with whom, and how or where."""
    slot = appointment.slot
    how = {
        DeliveryMode.FACE_TO_FACE: f"at {slot.location or practice.name}",
        DeliveryMode.TELEPHONE: "by telephone (the practice will call you)",
        DeliveryMode.VIDEO: "by video call",
    }[slot.delivery_mode]
    return f"{_when(slot.start)} with {slot.clinician.name} ({slot.clinician.role}), {how}"


def _whose(acting: Acting) -> str:
    return f" for {acting.patient.given_name}" if acting.is_proxy else ""


def _email(session: Session, acting: Acting, template: str, subject: str, lines: Sequence[str]) -> None:
    practice = acting.practice
    footer = (
        f"To see, change or cancel your appointments, sign in to Patient Online or {_call(practice)}.",
        "If you need help now, use NHS 111 online or call 111. In an emergency, call 999.",
    )
    notify.send_email(session, acting.user.email, template, subject, "\n\n".join([*lines, *footer]))


def _record_booking(session: Session, acting: Acting, appointment: Appointment) -> None:
    _writing(session)
    if _already_recorded(session, acting, appointment.id):
        return
    _record(session, acting, "appointment.booked", **_slot_detail(appointment))
    _email(
        session,
        acting,
        "appointment_booked",
        "Your GP appointment is booked",
        [f"Your appointment{_whose(acting)} is booked: {describe(appointment, acting.practice)}."],
    )
    session.commit()


# Finding slots ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SlotFilter:
    """What the patient asked for on the slots page; empty means any."""

    start_day: dt.date | None = None
    slot_type: str = ""
    clinician_id: str = ""
    delivery_mode: DeliveryMode | None = None

    @property
    def narrowed(self) -> bool:
        return bool(self.slot_type or self.clinician_id or self.delivery_mode)


@dataclass(frozen=True)
class SlotPage:
    """One page of free slots, grouped by day, with what the patient can do when nothing fits."""

    practice: Practice
    wanted: SlotFilter
    start_day: dt.date
    end_day: dt.date
    days: list[SlotDay]
    weeks: list[tuple[dt.date, dt.date]]
    slot_types: list[str]
    clinicians: list[Clinician]
    next_match: Slot | None
    other_types: list[tuple[str, int]]
    any_in_range: int
    upcoming_count: int
    max_future: int
    replacing: Appointment | None = None
    limit_message: str = ""

    @property
    def count(self) -> int:
        return sum(len(d.slots) for d in self.days)

    @property
    def at_limit(self) -> bool:
        return bool(self.limit_message)

    @property
    def previous_start(self) -> dt.date | None:
        earlier = [w for w, _ in self.weeks if w < self.start_day]
        return earlier[-1] if earlier else None

    @property
    def next_start(self) -> dt.date | None:
        return next((w for w, _ in self.weeks if w > self.start_day), None)

    @property
    def offers_nothing(self) -> bool:
        return not self.slot_types

    @property
    def next_match_week(self) -> dt.date | None:
        """The first day of the week holding the next matching time after this one."""
        if self.next_match is None:
            return None
        day = _local_day(self.next_match.start)
        return next((start for start, end in self.weeks if start <= day <= end), None)


def _matches(slot: Slot, wanted: SlotFilter, *, by_type: bool = True) -> bool:
    return (
        (not by_type or not wanted.slot_type or slot.slot_type == wanted.slot_type)
        and (not wanted.clinician_id or slot.clinician.id == wanted.clinician_id)
        and (wanted.delivery_mode is None or slot.delivery_mode == wanted.delivery_mode)
    )


def find_slots(
    session: Session,
    acting: Acting,
    wanted: SlotFilter,
    now: dt.datetime | None = None,
    replacing: str | None = None,
) -> SlotPage:
    """Free slots the patient may book (rule 9) for one week, filtered.

    One search covers the week shown; only when nothing there fits is the rest of the horizon searched, for the
    next available time. Searching the whole horizon every time made this the slowest patient page.

    With ``replacing`` (an appointment id) the page is for rescheduling that appointment.
    """
    acting.require(Service.APPOINTMENTS)
    now = _utcnow(now)
    practice = acting.practice
    rules = rules_for(practice)
    earliest, latest = rules.window(now)
    first_day, last_day = _local_day(earliest), _local_day(latest)
    weeks: list[tuple[dt.date, dt.date]] = []
    day = first_day
    while day <= last_day:
        weeks.append((day, min(day + dt.timedelta(days=WEEK_DAYS - 1), last_day)))
        day += dt.timedelta(days=WEEK_DAYS)
    start_day = wanted.start_day if wanted.start_day and first_day <= wanted.start_day <= last_day else first_day
    end_day = min(start_day + dt.timedelta(days=WEEK_DAYS - 1), last_day)

    system = _system(session, acting)
    upcoming = _upcoming(system, acting, now)
    old: Appointment | None = None
    if replacing is not None:
        old = _changeable(upcoming, replacing, rules, practice, now)
    others = [a for a in upcoming if old is None or a.id != old.id]
    limit_message = "" if rules.may_book_more(len(others)) else _limit_message(rules, practice)
    week_start = max(earliest, _day_start(start_day))
    week_end = min(latest, _day_start(end_day + dt.timedelta(days=1)))
    # The search may be a few seconds old (slot_cache), perhaps from before this patient's own latest booking
    # made through another node: never offer them a time they already hold.
    held = {a.slot.id for a in upcoming}
    offered = [s for s in _offered(system, rules, now, week_start, week_end, practice.ods_code) if s.id not in held]

    # The week's London days as UTC instants: comparing those costs no time-zone conversion for every slot.
    days_start, days_end = _day_start(start_day), _day_start(end_day + dt.timedelta(days=1))
    in_week = [s for s in offered if days_start <= s.start < days_end]
    shown = [s for s in in_week if _matches(s, wanted)]
    later: list[Slot] = []
    if not shown and week_end < latest:
        later = [s for s in _offered(system, rules, now, week_end, latest, practice.ods_code) if s.id not in held]
    next_match = next((s for s in later if s.start >= days_end and _matches(s, wanted)), None)
    by_type = Counter(s.slot_type for s in in_week if _matches(s, wanted, by_type=False))
    clinicians = sorted({s.clinician for s in [*offered, *later]}, key=lambda c: (c.role != "GP", c.role, c.name))
    return SlotPage(
        practice=practice,
        wanted=wanted,
        start_day=start_day,
        end_day=end_day,
        days=group_by_day(shown),
        weeks=weeks,
        slot_types=sorted(rules.online_slot_types),
        clinicians=clinicians,
        next_match=next_match,
        other_types=sorted((t, n) for t, n in by_type.items() if t != wanted.slot_type),
        any_in_range=len(in_week),
        upcoming_count=len(others),
        max_future=rules.max_future_appointments,
        replacing=old,
        limit_message=limit_message,
    )


def _offered(
    system: ClinicalSystem,
    rules: AppointmentRules,
    now: dt.datetime,
    start: dt.datetime,
    end: dt.datetime,
    practice_ods: str,
) -> list[Slot]:
    """What the slots page offers: a recent search of the practice's book may serve (see slot_cache)."""
    if not rules.online_slot_types or start >= end:
        return []
    query = SlotQuery(start=start, end=end, slot_types=rules.online_slot_types)
    return rules.offered(slot_cache().search(practice_ods, query, system.search_slots), now)


def _day_start(day: dt.date) -> dt.datetime:
    """Midnight at the start of a London day, in UTC."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=LONDON).astimezone(dt.UTC)


def _changeable(
    upcoming: Sequence[Appointment], appointment_id: str, rules: AppointmentRules, practice: Practice, now: dt.datetime
) -> Appointment:
    old = next((a for a in upcoming if a.id == appointment_id), None)
    if old is None:
        raise NotFound("We could not find that appointment in your upcoming appointments.")
    refusal = rules.cancel_refusal(old, now)
    if refusal:
        raise CancellationRefused(
            f"You cannot change this appointment online because {refusal}. To change it, {_call(practice)}."
        )
    return old


# Booking ---------------------------------------------------------------------------------------------------
def prepare_booking(
    session: Session,
    acting: Acting,
    slot_id: str,
    at: dt.datetime | None = None,
    now: dt.datetime | None = None,
    replacing: str | None = None,
) -> tuple[Slot, Appointment | None]:
    """The slot for the booking page, checked before the patient types a reason; and the appointment it replaces."""
    acting.require(Service.APPOINTMENTS)
    now = _utcnow(now)
    rules = rules_for(acting.practice)
    system = _system(session, acting)
    upcoming = _upcoming(system, acting, now)
    old = _changeable(upcoming, replacing, rules, acting.practice, now) if replacing else None
    _check_limit(rules, acting.practice, [a for a in upcoming if old is None or a.id != old.id])
    return _offered_slot(system, rules, slot_id, at, now), old


def book_appointment(
    session: Session,
    acting: Acting,
    slot_id: str,
    reason: str,
    idempotency_key: str,
    at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> Appointment:
    """Book a free slot for the patient (rules 9-11); the same idempotency key never books twice."""
    acting.require(Service.APPOINTMENTS)
    reason = clean_reason(reason)
    key = idempotency_key or uuid.uuid4().hex
    now = _utcnow(now)
    practice = acting.practice
    rules = rules_for(practice)
    system = _system(session, acting)
    upcoming = _upcoming(system, acting, now)
    held = next((a for a in upcoming if a.slot.id == slot_id), None)
    if held is not None:  # a double submit whose first attempt went through
        _record_booking(session, acting, held)
        return held
    _check_limit(rules, practice, upcoming)
    try:
        slot = _offered_slot(system, rules, slot_id, at, now)
        appointment = system.book(acting.ref, slot.id, reason, key)
        slot_cache().forget(practice.ods_code)
    except SlotUnavailable:  # taken, perhaps by our own first attempt a moment ago
        mine = _held(system, acting, slot_id, now)
        if mine is None:
            raise
        appointment = mine
    except ClinicalSystemUnavailable:
        raise BookingFailed(
            f"We could not book this appointment because {practice.name}'s appointment system is not responding. "
            f"Try again in a few minutes (you will not be booked twice), or {_call(practice)}."
        ) from None
    _record_booking(session, acting, appointment)
    return appointment


# Viewing ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AppointmentItem:
    """One appointment with what the patient may do with it, and why not."""

    appointment: Appointment
    upcoming: bool
    may_change: bool
    refusal: str = ""

    @property
    def id(self) -> str:
        return self.appointment.id


@dataclass(frozen=True)
class AppointmentList:
    upcoming: list[AppointmentItem]
    past: list[AppointmentItem]
    may_book_more: bool
    limit_message: str = ""
    rules: AppointmentRules = field(default_factory=lambda: AppointmentRules(frozenset()))


def _item(appointment: Appointment, rules: AppointmentRules, practice: Practice, now: dt.datetime) -> AppointmentItem:
    upcoming = is_upcoming(appointment, now)
    refusal = rules.cancel_refusal(appointment, now) if upcoming else ""
    message = f"You cannot cancel or change this appointment online because {refusal}. {_call(practice).capitalize()}."
    return AppointmentItem(appointment, upcoming, upcoming and not refusal, message if refusal else "")


def list_appointments(session: Session, acting: Acting, now: dt.datetime | None = None) -> AppointmentList:
    """The patient's upcoming appointments first, then past and cancelled ones, each with its allowed actions."""
    acting.require(Service.APPOINTMENTS)
    now = _utcnow(now)
    practice = acting.practice
    rules = rules_for(practice)
    system = _system(session, acting)
    found = system.list_appointments(acting.ref, now - dt.timedelta(days=HISTORY_DAYS))
    _record(session, acting, "appointments.viewed")
    session.commit()
    upcoming, past = split_upcoming(found, now)
    may_more = rules.may_book_more(len(upcoming))
    return AppointmentList(
        upcoming=[_item(a, rules, practice, now) for a in upcoming],
        past=[_item(a, rules, practice, now) for a in past],
        may_book_more=may_more,
        limit_message="" if may_more else _limit_message(rules, practice),
        rules=rules,
    )


def _find(system: ClinicalSystem, acting: Acting, appointment_id: str, now: dt.datetime) -> Appointment:
    found = system.list_appointments(acting.ref, now - dt.timedelta(days=HISTORY_DAYS))
    appointment = next((a for a in found if a.id == appointment_id), None)
    if appointment is None:
        raise NotFound("We could not find that appointment.")
    return appointment


def get_appointment(
    session: Session, acting: Acting, appointment_id: str, now: dt.datetime | None = None, *, audited: bool = True
) -> AppointmentItem:
    """One of the patient's appointments with its allowed actions; NotFound for anyone else's."""
    acting.require(Service.APPOINTMENTS)
    now = _utcnow(now)
    system = _system(session, acting)
    appointment = _find(system, acting, appointment_id, now)
    if audited:
        _record(session, acting, "appointments.viewed", appointment_id=appointment.id)
        session.commit()
    return _item(appointment, rules_for(acting.practice), acting.practice, now)


# Cancelling ------------------------------------------------------------------------------------------------
def cancel_appointment(
    session: Session, acting: Acting, appointment_id: str, reason: str = "", now: dt.datetime | None = None
) -> Appointment:
    """Cancel one of the patient's appointments, unless inside the practice's cutoff (rule 10)."""
    acting.require(Service.APPOINTMENTS)
    reason = clean_reason(reason)
    now = _utcnow(now)
    practice = acting.practice
    rules = rules_for(practice)
    system = _system(session, acting)
    appointment = _find(system, acting, appointment_id, now)
    if appointment.status == AppointmentStatus.CANCELLED:
        return appointment  # cancelled a moment ago (a double submit): nothing more to do
    refusal = rules.cancel_refusal(appointment, now)
    if refusal:
        raise CancellationRefused(
            f"You cannot cancel this appointment online because {refusal}. To cancel it, {_call(practice)}."
        )
    try:
        cancelled = system.cancel(acting.ref, appointment.id, reason or "Cancelled online")
        slot_cache().forget(practice.ods_code)
    except ClinicalSystemUnavailable:
        _queue_cancellation(session, acting, appointment, reason)
        raise CancellationQueued(
            f"{practice.name}'s appointment system is not responding, so we have kept your cancellation and will "
            "send it as soon as the system is back. We will email you when it is done. If your appointment is "
            f"in the next few hours, {_call(practice)}."
        ) from None
    _writing(session)
    _record(session, acting, "appointment.cancelled", **_slot_detail(cancelled), gave_reason=bool(reason))
    _email(
        session,
        acting,
        "appointment_cancelled",
        "Your GP appointment is cancelled",
        [f"Your appointment{_whose(acting)} is cancelled: {describe(appointment, practice)}."],
    )
    session.commit()
    return cancelled


CANCEL_KIND = "appointment.cancel"


def _queue_cancellation(session: Session, acting: Acting, appointment: Appointment, reason: str) -> None:
    """Keep the cancellation in the durable outbox; the worker sends it exactly once when the link returns."""
    _writing(session)
    key = f"cancel:{acting.practice.ods_code}:{appointment.id}"
    if session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)) is None:
        outbox.enqueue(
            session,
            acting.practice.id,
            CANCEL_KIND,
            {
                "patient_id": acting.patient.id,
                "appointment_id": appointment.id,
                "reason": reason,
                "email": acting.user.email,
                "when": describe(appointment, acting.practice),
            },
            key,
        )
        _record(session, acting, "appointment.cancel_queued", **_slot_detail(appointment))
        _email(
            session,
            acting,
            "appointment_cancel_queued",
            "We will cancel your GP appointment",
            [
                f"We will cancel your appointment{_whose(acting)} ({describe(appointment, acting.practice)}) as soon "
                "as your practice's system is back, and email you when it is done."
            ],
        )
    session.commit()


def _prepare_cancel(session: Session, message: OutboxMessage) -> Callable[[], dict[str, Any]]:
    patient = session.get(Patient, message.payload["patient_id"])
    if patient is None:
        raise NotFound("The patient has gone.")
    system = system_for(patient.practice)
    ref = PatientRef(patient.practice.ods_code, patient.nhs_number, patient.clinical_id)
    appointment_id, reason = str(message.payload["appointment_id"]), str(message.payload.get("reason") or "")

    def call() -> dict[str, Any]:
        cancelled = system.cancel(ref, appointment_id, reason or "Cancelled online")
        slot_cache().forget(ref.practice_ods)
        return {"status": cancelled.status.value}

    return call


def _cancel_outcome(
    session: Session, message: OutboxMessage, action: str, template: str, subject: str, body: str, **detail: Any
) -> None:
    """Record what became of a queued cancellation and tell the patient, in the outbox's transaction."""
    payload = message.payload
    patient = session.get_one(Patient, payload["patient_id"])
    audit.record(
        session,
        action,
        actor_role="system",
        patient_id=patient.id,
        practice_id=patient.practice_id,
        appointment_id=payload["appointment_id"],
        **detail,
    )
    notify.send_email(session, str(payload["email"]), template, subject, body)


def _cancel_delivered(session: Session, message: OutboxMessage) -> None:
    when = message.payload.get("when", "")
    _cancel_outcome(
        session,
        message,
        "appointment.cancelled",
        "appointment_cancelled",
        "Your GP appointment is cancelled",
        f"Your appointment ({when}) is now cancelled.",
        via="outbox",
    )


def _cancel_failed(session: Session, message: OutboxMessage) -> None:
    practice = session.get_one(Patient, message.payload["patient_id"]).practice
    _cancel_outcome(
        session,
        message,
        "appointment.cancel_failed",
        "appointment_cancel_failed",
        "We could not cancel your GP appointment",
        f"We could not cancel your appointment ({message.payload.get('when', '')}). It may still be booked: "
        f"contact {practice.name} on {practice.phone}.",
    )


outbox.register(
    CANCEL_KIND, outbox.Handler(prepare=_prepare_cancel, delivered=_cancel_delivered, failed=_cancel_failed)
)


# Rescheduling ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RescheduleOutcome:
    new: Appointment
    old: Appointment
    old_cancelled: bool


def reschedule_appointment(
    session: Session,
    acting: Acting,
    appointment_id: str,
    slot_id: str,
    reason: str,
    idempotency_key: str,
    at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> RescheduleOutcome:
    """Move an appointment to another slot: book the new one first, then cancel the old one (rule 11).

    If booking fails the patient keeps the old appointment; if cancelling the old one fails they have both,
    are told which to cancel, and the practice sees it on the reception page.
    """
    acting.require(Service.APPOINTMENTS)
    reason = clean_reason(reason)
    key = idempotency_key or uuid.uuid4().hex
    now = _utcnow(now)
    practice = acting.practice
    rules = rules_for(practice)
    system = _system(session, acting)
    appointments = system.list_appointments(acting.ref, now)
    upcoming = [a for a in appointments if is_upcoming(a, now)]
    old = next((a for a in appointments if a.id == appointment_id), None)
    held = next((a for a in upcoming if a.slot.id == slot_id), None)
    if old is not None and held is not None and old.status == AppointmentStatus.CANCELLED:
        return RescheduleOutcome(new=held, old=old, old_cancelled=True)  # a double submit that went through
    old = _changeable(upcoming, appointment_id, rules, practice, now)
    keep = f"You still have your appointment on {_when(old.slot.start)}."
    if held is None:
        _check_limit(rules, practice, [a for a in upcoming if a.id != old.id])
        try:
            slot = _offered_slot(system, rules, slot_id, at, now)
            new = system.book(acting.ref, slot.id, reason, key)
            slot_cache().forget(practice.ods_code)
        except SlotUnavailable:
            mine = _held(system, acting, slot_id, now)
            if mine is None:
                raise SlotUnavailable(f"Sorry, that time has just been booked by someone else. {keep}") from None
            new = mine
        except ClinicalSystemUnavailable:
            raise BookingFailed(
                f"We could not change your appointment because {practice.name}'s appointment system is not "
                f"responding. {keep} Try again in a few minutes, or {_call(practice)}."
            ) from None
    else:
        new = held
    try:
        system.cancel(acting.ref, old.id, "Rescheduled online")
        slot_cache().forget(practice.ods_code)
    except Exception:  # whatever went wrong, the patient must be told they now hold both appointments
        log.warning("old appointment not cancelled after rescheduling", exc_info=True)
        _writing(session)
        if not _already_recorded(session, acting, new.id):
            _record(session, acting, "appointment.booked", **_slot_detail(new), rescheduled_from=old.id)
            _record(
                session, acting, "appointment.reschedule_incomplete", **_slot_detail(old), new_appointment_id=new.id
            )
            _email(
                session,
                acting,
                "appointment_reschedule_incomplete",
                "Your new GP appointment is booked: your old one is not cancelled yet",
                [
                    f"Your new appointment{_whose(acting)} is booked: {describe(new, practice)}.",
                    f"We could not cancel your old appointment on {_when(old.slot.start)}. Please cancel it, or "
                    f"{_call(practice)}. The practice has been told.",
                ],
            )
            session.commit()
        return RescheduleOutcome(new=new, old=old, old_cancelled=False)
    _writing(session)
    _record(session, acting, "appointment.rescheduled", **_slot_detail(new), **_slot_detail(old, "old_"))
    _email(
        session,
        acting,
        "appointment_rescheduled",
        "Your GP appointment has changed",
        [
            f"Your appointment{_whose(acting)} has changed. New appointment: {describe(new, practice)}.",
            f"Your appointment on {_when(old.slot.start)} is cancelled.",
        ],
    )
    session.commit()
    return RescheduleOutcome(new=new, old=old, old_cancelled=True)


# Calendar --------------------------------------------------------------------------------------------------
def calendar_file(
    session: Session, acting: Acting, appointment_id: str, now: dt.datetime | None = None
) -> tuple[str, bytes]:
    """An .ics file for one of the patient's appointments: its file name and content."""
    item = get_appointment(session, acting, appointment_id, now, audited=False)
    local = item.appointment.slot.start.astimezone(LONDON)
    return f"appointment-{local:%Y-%m-%d-%H%M}.ics", appointment_ics(item.appointment, acting.practice, now)


def appointment_ics(appointment: Appointment, practice: Practice, now: dt.datetime | None = None) -> bytes:
    """iCalendar for one appointment, in Europe/London time with its VTIMEZONE, without the (clinical) reason."""
    slot = appointment.slot
    address = ", ".join(p for p in (practice.name, practice.address, practice.postcode) if p)
    where = {
        DeliveryMode.FACE_TO_FACE: address,
        DeliveryMode.TELEPHONE: "Telephone appointment: the practice will call you",
        DeliveryMode.VIDEO: "Video appointment: the practice will send you a link",
    }[slot.delivery_mode]
    calendar = Calendar()
    calendar.add("prodid", "-//Patient Online gateway//Appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"{appointment.id}@{practice.ods_code.lower()}.patient-online")
    event.add("dtstamp", _utcnow(now))
    event.add("dtstart", slot.start.astimezone(LONDON))
    event.add("dtend", slot.end.astimezone(LONDON))
    event.add("summary", f"{slot.slot_type} with {slot.clinician.name} ({practice.name})")
    event.add("location", where)
    event.add(
        "description",
        f"{slot.slot_type} with {slot.clinician.name} ({slot.clinician.role}), {slot.delivery_mode.label.lower()}.\n"
        f"To change or cancel it, sign in to Patient Online or {_call(practice)}.",
    )
    event.add("status", "CANCELLED" if appointment.status == AppointmentStatus.CANCELLED else "CONFIRMED")
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())


# Reception -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BookingLine:
    """One online booking, cancellation or change, as reception sees it (no clinical text)."""

    start: dt.datetime
    what: str
    patient_name: str
    nhs_number: str
    clinician: str
    clinician_role: str
    slot_type: str
    delivery_mode: DeliveryMode
    by: str
    at: dt.datetime
    needs_action: bool = False


@dataclass(frozen=True)
class BookingDay:
    day: dt.date
    lines: list[BookingLine]


def _lines(event: AuditEvent) -> list[tuple[str, str, bool]]:
    """(prefix of the slot fields, what happened, needs action) for each appointment the event touched."""
    d = event.detail or {}
    if event.action == "appointment.booked":
        moved = " (moved from another time)" if d.get("rescheduled_from") else ""
        return [("", f"Booked online{moved}", False)]
    if event.action == "appointment.cancelled":
        return [("", "Cancelled online", False)]
    if event.action == "appointment.rescheduled":
        return [
            ("", f"Moved here online from {_when(dt.datetime.fromisoformat(d['old_start']))}", False),
            ("old_", f"Cancelled online: moved to {_when(dt.datetime.fromisoformat(d['start']))}", False),
        ]
    return [("", "Not cancelled: the patient moved this appointment but cancelling it failed. Cancel it.", True)]


def practice_bookings(
    session: Session, practice: Practice, first_day: dt.date, days: int = WEEK_DAYS
) -> list[BookingDay]:
    """Online bookings, cancellations and changes of the practice's appointments from ``first_day`` for ``days``."""
    last_day = first_day + dt.timedelta(days=days - 1)
    look_back = max(practice.booking_horizon_days, 28) + days + 1
    since = dt.datetime.combine(first_day, dt.time(), tzinfo=LONDON) - dt.timedelta(days=look_back)
    events = list(
        session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.practice_id == practice.id,
                AuditEvent.action.in_(RECEPTION_ACTIONS),
                AuditEvent.at >= since,
            )
            .order_by(AuditEvent.at.desc())
            .limit(5000)
        )
    )
    patients = {p.id: p for p in session.scalars(select(Patient).where(Patient.id.in_({e.patient_id for e in events})))}
    actors = {u.id: u for u in session.scalars(select(User).where(User.id.in_({e.actor_user_id for e in events})))}
    by_day: dict[dt.date, list[BookingLine]] = {}
    for event in events:
        d = event.detail or {}
        patient = patients.get(event.patient_id) if event.patient_id else None
        actor = actors.get(event.actor_user_id) if event.actor_user_id else None
        for prefix, what, needs_action in _lines(event):
            raw = d.get(f"{prefix}start")
            if not raw:
                continue
            start = dt.datetime.fromisoformat(raw)
            day = _local_day(start)
            if not first_day <= day <= last_day:
                continue
            by = "Patient"
            if event.actor_role == "proxy":
                by = f"Proxy: {actor.display_name}" if actor else "Proxy"
            by_day.setdefault(day, []).append(
                BookingLine(
                    start=start,
                    what=what,
                    patient_name=patient.full_name if patient else "",
                    nhs_number=patient.nhs_number if patient else "",
                    clinician=str(d.get(f"{prefix}clinician", "")),
                    clinician_role=str(d.get(f"{prefix}clinician_role", "")),
                    slot_type=str(d.get(f"{prefix}slot_type", "")),
                    delivery_mode=DeliveryMode(d.get(f"{prefix}delivery_mode", "face_to_face")),
                    by=by,
                    at=event.at,
                    needs_action=needs_action,
                )
            )
    return [
        BookingDay(day, sorted(lines, key=lambda line: (line.start, line.at))) for day, lines in sorted(by_day.items())
    ]
