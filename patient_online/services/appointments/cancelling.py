"""Cancelling an appointment online, unless inside the practice's cutoff (rule 10); queued when the link is down."""

from __future__ import annotations

from patient_online.domain.access import Service
from patient_online.domain.appointments import (
    Appointment,
    AppointmentStatus,
    CancellationQueued,
    CancellationRefused,
    clean_reason,
)
from patient_online.domain.errors import ClinicalSystemUnavailable

from .. import waitlist
from ..access import Acting
from ..unit_of_work import AbstractUnitOfWork
from .common import call, clinical, describe, email, record, rules_for, slot_detail, whose
from .queued_cancellation import queue_cancellation
from .viewing import find_appointment


def cancel_appointment(uow: AbstractUnitOfWork, acting: Acting, appointment_id: str, reason: str = "") -> Appointment:
    """Cancel one of the patient's appointments, unless inside the practice's cutoff (rule 10)."""
    acting.require(Service.APPOINTMENTS)
    reason = clean_reason(reason)
    now = uow.now()
    practice = acting.practice
    rules = rules_for(practice)
    system = clinical(uow, acting)
    appointment = find_appointment(system, acting, appointment_id, now)
    if appointment.status == AppointmentStatus.CANCELLED:
        return appointment  # cancelled a moment ago (a double submit): nothing more to do
    refusal = rules.cancel_refusal(appointment, now)
    if refusal:
        raise CancellationRefused(
            f"You cannot cancel this appointment online because {refusal}. To cancel it, {call(practice)}."
        )
    try:
        cancelled = system.cancel(acting.ref, appointment.id, reason or "Cancelled online")
        uow.slot_cache.forget(practice.ods_code)
    except ClinicalSystemUnavailable:
        queue_cancellation(uow, acting, appointment, reason)
        raise CancellationQueued(
            f"{practice.name}'s appointment system is not responding, so we have kept your cancellation and will "
            "send it as soon as the system is back. We will email you when it is done. If your appointment is "
            f"in the next few hours, {call(practice)}."
        ) from None
    uow.join_writing()
    record(uow, acting, "appointment.cancelled", **slot_detail(cancelled), gave_reason=bool(reason))
    waitlist.look_soon(uow, practice.id)  # the time is free: someone waiting may want it
    email(
        uow,
        acting,
        "appointment_cancelled",
        "Your GP appointment is cancelled",
        [f"Your appointment{whose(acting)} is cancelled: {describe(appointment, practice)}."],
    )
    uow.commit()
    return cancelled
