"""A cancellation the clinical system could not take at once: kept in the durable outbox, sent exactly once when
the link is back, and its outcome told to the patient."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from patient_online.domain.appointments import Appointment
from patient_online.domain.errors import NotFound
from patient_online.domain.patients import PatientRef
from patient_online.models import OutboxMessage, Patient

from .. import outbox
from ..access import Acting
from ..unit_of_work import AbstractUnitOfWork
from .common import describe, email, record, slot_detail, whose

CANCEL_KIND = "appointment.cancel"


def queue_cancellation(uow: AbstractUnitOfWork, acting: Acting, appointment: Appointment, reason: str) -> None:
    """Keep the cancellation in the durable outbox; the worker sends it exactly once when the link returns."""
    uow.join_writing()
    key = f"cancel:{acting.practice.ods_code}:{appointment.id}"
    if uow.session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)) is None:
        outbox.enqueue(
            uow,
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
        record(uow, acting, "appointment.cancel_queued", **slot_detail(appointment))
        email(
            uow,
            acting,
            "appointment_cancel_queued",
            "We will cancel your GP appointment",
            [
                f"We will cancel your appointment{whose(acting)} ({describe(appointment, acting.practice)}) as soon "
                "as your practice's system is back, and email you when it is done."
            ],
        )
    uow.commit()


def prepare_cancel(uow: AbstractUnitOfWork, message: OutboxMessage) -> Callable[[], dict[str, Any]]:
    """Read what the delivery needs; the outbox makes the returned call later, with no transaction open."""
    patient = uow.session.get(Patient, message.payload["patient_id"])
    if patient is None:
        raise NotFound("The patient has gone.")
    system = uow.clinical_systems.system_for(patient.practice)
    cache = uow.slot_cache
    ref = PatientRef(patient.practice.ods_code, patient.nhs_number, patient.clinical_id)
    appointment_id, reason = str(message.payload["appointment_id"]), str(message.payload.get("reason") or "")

    def send() -> dict[str, Any]:
        cancelled = system.cancel(ref, appointment_id, reason or "Cancelled online")
        cache.forget(ref.practice_ods)
        return {"status": cancelled.status.value}

    return send


def _outcome(
    uow: AbstractUnitOfWork, message: OutboxMessage, action: str, template: str, subject: str, body: str, **detail: Any
) -> None:
    """Record what became of a queued cancellation and tell the patient, in the outbox's transaction."""
    payload = message.payload
    patient = uow.session.get_one(Patient, payload["patient_id"])
    uow.audit(
        action,
        actor_role="system",
        patient_id=patient.id,
        practice_id=patient.practice_id,
        appointment_id=payload["appointment_id"],
        **detail,
    )
    uow.send_email(str(payload["email"]), template, subject, body)


def cancel_delivered(uow: AbstractUnitOfWork, message: OutboxMessage) -> None:
    """The practice's system took the cancellation: record it and tell the patient."""
    when = message.payload.get("when", "")
    _outcome(
        uow,
        message,
        "appointment.cancelled",
        "appointment_cancelled",
        "Your GP appointment is cancelled",
        f"Your appointment ({when}) is now cancelled.",
        via="outbox",
    )
    from .. import waitlist

    practice_id = uow.session.get_one(Patient, message.payload["patient_id"]).practice_id
    waitlist.look_soon(uow, practice_id)  # the time is free: someone waiting may want it


def cancel_failed(uow: AbstractUnitOfWork, message: OutboxMessage) -> None:
    """The practice's system refused the cancellation or never came back: the patient must call the practice."""
    practice = uow.session.get_one(Patient, message.payload["patient_id"]).practice
    _outcome(
        uow,
        message,
        "appointment.cancel_failed",
        "appointment_cancel_failed",
        "We could not cancel your GP appointment",
        f"We could not cancel your appointment ({message.payload.get('when', '')}). It may still be booked: "
        f"contact {practice.name} on {practice.phone}.",
    )


outbox.register(CANCEL_KIND, outbox.Handler(prepare=prepare_cancel, delivered=cancel_delivered, failed=cancel_failed))
