"""What the appointment use cases share: the practice's rules, the checks before a booking, the audit trail's
view of a booking and the wording of messages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from patient_online.domain.appointments import (
    LONDON,
    Appointment,
    AppointmentRules,
    BookingLimitReached,
    CancellationRefused,
    DeliveryMode,
    Slot,
    SlotQuery,
    is_upcoming,
)
from patient_online.domain.errors import ClinicalSystemUnavailable, NotFound, SlotUnavailable
from patient_online.domain.ports import ClinicalSystem
from patient_online.models import Practice

from ..access import Acting
from ..unit_of_work import AbstractUnitOfWork

HISTORY_DAYS = 400  # how far back the appointment list reaches
WEEK_DAYS = 7
BOOKING_ACTIONS = ("appointment.booked", "appointment.rescheduled")


@dataclass(frozen=True)
class PracticeContact:
    """How a patient reaches their practice, for pages that say "call the practice"."""

    ods_code: str
    name: str
    phone: str
    address: str
    postcode: str

    @classmethod
    def of(cls, practice: Practice) -> PracticeContact:
        return cls(practice.ods_code, practice.name, practice.phone, practice.address, practice.postcode)


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


def local_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(LONDON).date()


def day_start(day: dt.date) -> dt.datetime:
    """Midnight at the start of a London day, in UTC."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=LONDON).astimezone(dt.UTC)


def when(moment: dt.datetime) -> str:
    local = moment.astimezone(LONDON)
    return f"{local:%A} {local.day} {local:%B %Y} at {local.strftime('%-I:%M%p').lower()}"


def call(practice: Practice | PracticeContact) -> str:
    """How to reach the practice, to go inside a sentence; see ``call_sentence`` for the start of one."""
    return f"call {practice.name} on {practice.phone}" if practice.phone else f"contact {practice.name}"


def call_sentence(practice: Practice | PracticeContact) -> str:
    """``call`` at the start of a sentence. Only the first letter is raised: ``str.capitalize`` lowered the
    practice's name ("Call riverside medical centre on ...")."""
    words = call(practice)
    return words[:1].upper() + words[1:]


# The clinical system -----------------------------------------------------------------------------------------
def clinical(uow: AbstractUnitOfWork, acting: Acting) -> ClinicalSystem:
    """End the request's reads, then hand over the practice's system: no transaction is held across its calls."""
    uow.release()
    return uow.clinical(acting.practice)


def upcoming_of(system: ClinicalSystem, acting: Acting, now: dt.datetime) -> list[Appointment]:
    return [a for a in system.list_appointments(acting.ref, now) if is_upcoming(a, now)]


def limit_message(rules: AppointmentRules, practice: Practice) -> str:
    most = rules.max_future_appointments
    words = "1 appointment" if most == 1 else f"{most} appointments"
    return (
        f"You already have {words} booked, the most you can book online at one time. "
        f"Cancel one of them to book another, or {call(practice)}."
    )


def check_limit(rules: AppointmentRules, practice: Practice, others: Sequence[Appointment]) -> None:
    """Rule 10: refuse a booking at the patient's maximum of future appointments."""
    if not rules.may_book_more(len(others)):
        raise BookingLimitReached(limit_message(rules, practice))


def offered_slot(
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


def not_held_for_another(uow: AbstractUnitOfWork, acting: Acting, slot_id: str) -> None:
    """Refuse a time held for another patient's earlier-appointment offer (see ``services/waitlist.py``)."""
    from .. import waitlist

    if waitlist.held_for_other(uow, acting.practice.id, slot_id, acting.patient.id):
        raise SlotUnavailable("That time is no longer available. Choose another time.")


def held(system: ClinicalSystem, acting: Acting, slot_id: str, now: dt.datetime) -> Appointment | None:
    """The patient's own booking of this slot, if an earlier attempt (a double submit) already took it."""
    try:
        return next((a for a in upcoming_of(system, acting, now) if a.slot.id == slot_id), None)
    except ClinicalSystemUnavailable:
        return None


def changeable(
    upcoming: Sequence[Appointment], appointment_id: str, rules: AppointmentRules, practice: Practice, now: dt.datetime
) -> Appointment:
    """The upcoming appointment the patient wants to change, unless the practice's rules forbid it now."""
    old = next((a for a in upcoming if a.id == appointment_id), None)
    if old is None:
        raise NotFound("We could not find that appointment in your upcoming appointments.")
    refusal = rules.cancel_refusal(old, now)
    if refusal:
        raise CancellationRefused(
            f"You cannot change this appointment online because {refusal}. To change it, {call(practice)}."
        )
    return old


# Audit and messages --------------------------------------------------------------------------------------
def slot_detail(appointment: Appointment, prefix: str = "") -> dict[str, Any]:
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


def record(uow: AbstractUnitOfWork, acting: Acting, action: str, **detail: Any) -> None:
    uow.audit(
        action,
        actor_id=acting.user.id,
        actor_role=acting.actor_role,
        patient_id=acting.patient.id,
        practice_id=acting.practice.id,
        **detail,
    )


def describe(appointment: Appointment, practice: Practice) -> str:
    """One appointment in words, for messages: when, with whom, and how or where."""
    slot = appointment.slot
    how = {
        DeliveryMode.FACE_TO_FACE: f"at {slot.location or practice.name}",
        DeliveryMode.TELEPHONE: "by telephone (the practice will call you)",
        DeliveryMode.VIDEO: "by video call",
    }[slot.delivery_mode]
    return f"{when(slot.start)} with {slot.clinician.name} ({slot.clinician.role}), {how}"


def whose(acting: Acting) -> str:
    return f" for {acting.patient.given_name}" if acting.is_proxy else ""


def email(uow: AbstractUnitOfWork, acting: Acting, template: str, subject: str, lines: Sequence[str]) -> None:
    email_to(uow, acting.user.email, acting.practice, template, subject, lines)


def email_to(
    uow: AbstractUnitOfWork, to: str, practice: Practice, template: str, subject: str, lines: Sequence[str]
) -> None:
    """A message about appointments at ``practice``, with the footer every such message carries."""
    footer = (
        f"To see, change or cancel your appointments, sign in to Patient Online or {call(practice)}.",
        "If you need help now, use NHS 111 online or call 111. In an emergency, call 999.",
    )
    uow.send_email(to, template, subject, "\n\n".join([*lines, *footer]))
