"""Moving an appointment to another time: the new one is booked before the old one is cancelled (rule 11)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from patient_online.domain.access import Service
from patient_online.domain.appointments import (
    Appointment,
    AppointmentStatus,
    BookingFailed,
    clean_reason,
    is_upcoming,
)
from patient_online.domain.errors import ClinicalSystemUnavailable, SlotUnavailable

from .. import waitlist
from ..access import Acting
from ..unit_of_work import AbstractUnitOfWork, TransactionStillOpen
from . import recording
from .common import (
    call,
    changeable,
    check_limit,
    clinical,
    describe,
    email,
    held,
    not_held_for_another,
    offered_slot,
    record,
    rules_for,
    slot_detail,
    when,
    whose,
)

log = logging.getLogger("patient_online.appointments")


@dataclass(frozen=True)
class RescheduleOutcome:
    new: Appointment
    old: Appointment
    old_cancelled: bool


def reschedule_appointment(
    uow: AbstractUnitOfWork,
    acting: Acting,
    appointment_id: str,
    slot_id: str,
    reason: str,
    idempotency_key: str,
    at: dt.datetime | None = None,
) -> RescheduleOutcome:
    """Move an appointment to another slot: book the new one first, then cancel the old one (rule 11).

    If booking fails the patient keeps the old appointment; if cancelling the old one fails they have both,
    are told which to cancel, and the practice sees it on the reception page.
    """
    acting.require(Service.APPOINTMENTS)
    reason = clean_reason(reason)
    key = idempotency_key or uuid.uuid4().hex
    now = uow.now()
    practice = acting.practice
    rules = rules_for(practice)
    not_held_for_another(uow, acting, slot_id)
    system = clinical(uow, acting)
    appointments = system.list_appointments(acting.ref, now)
    upcoming = [a for a in appointments if is_upcoming(a, now)]
    old = next((a for a in appointments if a.id == appointment_id), None)
    mine = next((a for a in upcoming if a.slot.id == slot_id), None)
    if old is not None and mine is not None and old.status == AppointmentStatus.CANCELLED:
        return RescheduleOutcome(new=mine, old=old, old_cancelled=True)  # a double submit that went through
    old = changeable(upcoming, appointment_id, rules, practice, now)
    keep = f"You still have your appointment on {when(old.slot.start)}."
    if mine is None:
        check_limit(rules, practice, [a for a in upcoming if a.id != old.id])
        try:
            slot = offered_slot(system, rules, slot_id, at, now)
            new = system.book(acting.ref, slot.id, reason, key)
            uow.slot_cache.forget(practice.ods_code)
        except SlotUnavailable:
            taken = held(system, acting, slot_id, now)
            if taken is None:
                raise SlotUnavailable(f"Sorry, that time has just been booked by someone else. {keep}") from None
            new = taken
        except ClinicalSystemUnavailable:
            raise BookingFailed(
                f"We could not change your appointment because {practice.name}'s appointment system is not "
                f"responding. {keep} Try again in a few minutes, or {call(practice)}."
            ) from None
    else:
        new = mine
    try:
        system.cancel(acting.ref, old.id, "Rescheduled online")
        uow.slot_cache.forget(practice.ods_code)
    except TransactionStillOpen:
        raise
    except Exception:  # whatever went wrong, the patient must be told they now hold both appointments
        log.warning("old appointment not cancelled after rescheduling", exc_info=True)
        _record_incomplete(uow, acting, new, old)
        return RescheduleOutcome(new=new, old=old, old_cancelled=False)
    uow.join_writing()
    if not recording.claim(uow, practice.id, acting.patient.id, new.id, recording.RESCHEDULED):
        uow.commit()
        return RescheduleOutcome(new=new, old=old, old_cancelled=True)  # a twin request recorded it
    record(uow, acting, "appointment.rescheduled", **slot_detail(new), **slot_detail(old, "old_"))
    waitlist.look_soon(uow, practice.id)  # the old time is free: someone waiting may want it
    email(
        uow,
        acting,
        "appointment_rescheduled",
        "Your GP appointment has changed",
        [
            f"Your appointment{whose(acting)} has changed. New appointment: {describe(new, practice)}.",
            f"Your appointment on {when(old.slot.start)} is cancelled.",
        ],
    )
    uow.commit()
    return RescheduleOutcome(new=new, old=old, old_cancelled=True)


def _record_incomplete(uow: AbstractUnitOfWork, acting: Acting, new: Appointment, old: Appointment) -> None:
    """The new appointment is booked but the old one stands: tell the patient which to cancel, and reception."""
    practice = acting.practice
    uow.join_writing()
    if not recording.claim(uow, practice.id, acting.patient.id, new.id, recording.BOOKED):
        uow.commit()
        return
    record(uow, acting, "appointment.booked", **slot_detail(new), rescheduled_from=old.id)
    record(uow, acting, "appointment.reschedule_incomplete", **slot_detail(old), new_appointment_id=new.id)
    email(
        uow,
        acting,
        "appointment_reschedule_incomplete",
        "Your new GP appointment is booked: your old one is not cancelled yet",
        [
            f"Your new appointment{whose(acting)} is booked: {describe(new, practice)}.",
            f"We could not cancel your old appointment on {when(old.slot.start)}. Please cancel it, or "
            f"{call(practice)}. The practice has been told.",
        ],
    )
    uow.commit()
