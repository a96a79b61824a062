"""Changing the reason of a booked appointment online (Appointment Management "amend"), where the practice's
system offers it and its rules allow it: the same rules as cancelling (rule 10), so never inside the cutoff."""

from __future__ import annotations

from patient_online.domain.access import Service
from patient_online.domain.appointments import (
    AmendmentNotOffered,
    AmendmentRefused,
    Appointment,
    clean_reason,
)
from patient_online.domain.errors import InputError
from patient_online.domain.ports import AppointmentAmendment, ClinicalSystem

from ..access import Acting
from ..unit_of_work import AbstractUnitOfWork
from .common import call, clinical, describe, email, record, rules_for, slot_detail, whose
from .viewing import find_appointment

ENTER_REASON = "Enter the reason for your appointment"


def amendable(system: ClinicalSystem) -> bool:
    """Whether the practice's system can change an appointment's reason (the optional port)."""
    return isinstance(system, AppointmentAmendment)


def amend_appointment(uow: AbstractUnitOfWork, acting: Acting, appointment_id: str, reason: str) -> Appointment:
    """Replace the reason of one of the patient's upcoming appointments.

    Refused (with the practice's phone number) when the practice takes no changes online, inside its cutoff,
    or for an appointment that is not booked; a new reason equal to the one held changes nothing. The clinical
    system is called with no transaction open; the audit event (never the reason, which may be clinical) and
    the confirmation email are written together afterwards.
    """
    acting.require(Service.APPOINTMENTS)
    reason = clean_reason(reason)
    if not reason:
        raise InputError(ENTER_REASON, "reason")
    now = uow.now()
    practice = acting.practice
    rules = rules_for(practice)
    system = clinical(uow, acting)
    if not isinstance(system, AppointmentAmendment):
        raise AmendmentNotOffered(
            f"{practice.name}'s system does not let you change the reason for an appointment online. "
            f"To change it, {call(practice)}."
        )
    appointment = find_appointment(system, acting, appointment_id, now)
    if appointment.reason == reason:
        return appointment  # already says this (a second click): nothing to change
    refusal = rules.cancel_refusal(appointment, now)
    if refusal:
        raise AmendmentRefused(
            f"You cannot change the reason for this appointment online because {refusal}. "
            f"To change it, {call(practice)}."
        )
    amended = system.amend(acting.ref, appointment.id, reason)
    uow.join_writing()
    record(uow, acting, "appointment.amended", **slot_detail(amended))
    email(
        uow,
        acting,
        "appointment_amended",
        "The reason for your GP appointment has changed",
        [f"The reason for your appointment{whose(acting)} has been changed: {describe(amended, practice)}."],
    )
    uow.commit()
    return amended
