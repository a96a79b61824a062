"""Booking a free slot (rules 9-11): checked again at the clinical system, and never twice for one form."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid

from sqlalchemy.exc import SQLAlchemyError

from patient_online.domain.access import Service
from patient_online.domain.appointments import Appointment, BookingFailed, BookingUnconfirmed, Slot, clean_reason
from patient_online.domain.errors import ClinicalSystemUnavailable, SlotUnavailable

from ..access import Acting
from ..unit_of_work import AbstractUnitOfWork
from . import recording
from .common import (
    call,
    changeable,
    check_limit,
    clinical,
    held,
    not_held_for_another,
    offered_slot,
    rules_for,
    upcoming_of,
)

log = logging.getLogger("patient_online.appointments")


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
    not_held_for_another(uow, acting, slot_id)
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
    """Book a free slot for the patient (rules 9-11); the same idempotency key never books twice, and the
    booking is recorded (audited and confirmed) exactly once, later if the gateway cannot record it at once."""
    acting.require(Service.APPOINTMENTS)
    reason = clean_reason(reason)
    key = idempotency_key or uuid.uuid4().hex
    now = uow.now()
    practice = acting.practice
    rules = rules_for(practice)
    not_held_for_another(uow, acting, slot_id)
    system = clinical(uow, acting)
    upcoming = upcoming_of(system, acting, now)
    mine = next((a for a in upcoming if a.slot.id == slot_id), None)
    if mine is not None:  # a double submit whose first attempt went through
        record_booking(uow, acting, mine)
        return mine
    check_limit(rules, practice, upcoming)
    intended = False
    try:
        slot = offered_slot(system, rules, slot_id, at, now)
        recording.intend(uow, acting, slot.id, key)  # committed before the call: a lost outcome is found later
        intended = True
        appointment = system.book(acting.ref, slot.id, reason, key)
        uow.slot_cache.forget(practice.ods_code)
    except SlotUnavailable:  # taken, perhaps by our own first attempt a moment ago
        taken = held(system, acting, slot_id, now)
        if taken is None:
            if intended:
                recording.forget(uow, acting.patient.id, slot_id)
            raise
        appointment = taken
    except ClinicalSystemUnavailable:  # it may have been booked all the same: the intent stays to find out
        raise BookingFailed(
            f"We could not book this appointment because {practice.name}'s appointment system is not responding. "
            f"Try again in a few minutes (you will not be booked twice), or {call(practice)}."
        ) from None
    record_booking(uow, acting, appointment)
    return appointment


def record_booking(uow: AbstractUnitOfWork, acting: Acting, appointment: Appointment) -> None:
    """The audit event and the confirmation of a booking, once however often or wherever the form was sent.

    When the gateway's database fails here the booking stands at the clinical system: the patient is told it
    may have been made, and the next look at their appointments records it (``recording.reconcile``).
    """
    unconfirmed = BookingUnconfirmed(f"{BookingUnconfirmed.message} If you need help, {call(acting.practice)}.")
    try:
        recording.record_booked(uow, acting.practice, acting.patient, recording.Booker.of(acting), appointment)
    except SQLAlchemyError as exc:  # its text may quote the statement's values: only its type is logged
        log.warning(
            "booking made but not recorded; left for reconciliation",
            extra={"fields": {"error_type": type(exc).__name__}},
        )
        with contextlib.suppress(SQLAlchemyError):
            uow.rollback()
        raise unconfirmed from None
