"""Booking a free slot (rules 9-11): checked again at the clinical system, and never twice for one form."""

from __future__ import annotations

import datetime as dt
import uuid

from patient_online.domain.access import Service
from patient_online.domain.appointments import Appointment, BookingFailed, Slot, clean_reason
from patient_online.domain.errors import ClinicalSystemUnavailable, SlotUnavailable

from ..access import Acting
from ..unit_of_work import AbstractUnitOfWork
from .common import (
    already_recorded,
    call,
    changeable,
    check_limit,
    clinical,
    describe,
    email,
    held,
    offered_slot,
    record,
    rules_for,
    slot_detail,
    upcoming_of,
    whose,
)


def prepare_booking(
    uow: AbstractUnitOfWork,
    acting: Acting,
    slot_id: str,
    at: dt.datetime | None = None,
    replacing: str | None = None,
) -> tuple[Slot, Appointment | None]:
    """The slot for the booking page, checked before the patient types a reason; and the appointment it replaces."""
    acting.require(Service.APPOINTMENTS)
    now = uow.now()
    rules = rules_for(acting.practice)
    system = clinical(uow, acting)
    upcoming = upcoming_of(system, acting, now)
    old = changeable(upcoming, replacing, rules, acting.practice, now) if replacing else None
    check_limit(rules, acting.practice, [a for a in upcoming if old is None or a.id != old.id])
    return offered_slot(system, rules, slot_id, at, now), old


def book_appointment(
    uow: AbstractUnitOfWork,
    acting: Acting,
    slot_id: str,
    reason: str,
    idempotency_key: str,
    at: dt.datetime | None = None,
) -> Appointment:
    """Book a free slot for the patient (rules 9-11); the same idempotency key never books twice."""
    acting.require(Service.APPOINTMENTS)
    reason = clean_reason(reason)
    key = idempotency_key or uuid.uuid4().hex
    now = uow.now()
    practice = acting.practice
    rules = rules_for(practice)
    system = clinical(uow, acting)
    upcoming = upcoming_of(system, acting, now)
    mine = next((a for a in upcoming if a.slot.id == slot_id), None)
    if mine is not None:  # a double submit whose first attempt went through
        record_booking(uow, acting, mine)
        return mine
    check_limit(rules, practice, upcoming)
    try:
        slot = offered_slot(system, rules, slot_id, at, now)
        appointment = system.book(acting.ref, slot.id, reason, key)
        uow.slot_cache.forget(practice.ods_code)
    except SlotUnavailable:  # taken, perhaps by our own first attempt a moment ago
        taken = held(system, acting, slot_id, now)
        if taken is None:
            raise
        appointment = taken
    except ClinicalSystemUnavailable:
        raise BookingFailed(
            f"We could not book this appointment because {practice.name}'s appointment system is not responding. "
            f"Try again in a few minutes (you will not be booked twice), or {call(practice)}."
        ) from None
    record_booking(uow, acting, appointment)
    return appointment


def record_booking(uow: AbstractUnitOfWork, acting: Acting, appointment: Appointment) -> None:
    """The audit event and the confirmation of a booking, once however often the form was sent."""
    uow.join_writing()
    if already_recorded(uow, acting, appointment.id):
        uow.commit()
        return
    record(uow, acting, "appointment.booked", **slot_detail(appointment))
    email(
        uow,
        acting,
        "appointment_booked",
        "Your GP appointment is booked",
        [f"Your appointment{whose(acting)} is booked: {describe(appointment, acting.practice)}."],
    )
    uow.commit()
