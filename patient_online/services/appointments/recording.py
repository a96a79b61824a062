"""A booking's outcome (its audit event and confirmation) recorded exactly once, whatever the timing.

Two guarantees, both kept by the database rather than by checking first:

- **once**: the record of a booking is a ``booking_record`` row unique per practice and appointment, inserted
  in the same transaction as the audit event and the confirmation. Two requests recording the same booking at
  once (a double click served by two servers) cannot both commit; the one that fails answers as if it had
  recorded it, because it has been.
- **not lost**: before a booking is asked of the clinical system a ``booking_intent`` (slot, patient, who
  booked, a digest of the form's key) is committed, with an outbox check due a little later. If the clinical
  system books the slot and the gateway then cannot record it (its database failed, the answer timed out),
  the intent stays; the next look at the patient's appointments, or the outbox worker's check, finds the
  booking and records it, once. Intents that led to no booking are dropped then.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from patient_online.domain.appointments import (
    Appointment,
    AppointmentStatus,
    Clinician,
    DeliveryMode,
    Slot,
    is_upcoming,
)
from patient_online.domain.patients import PatientRef
from patient_online.models import BookingIntent, BookingRecord, OutboxMessage, Patient, Practice, User

from .. import outbox
from ..access import Acting
from ..unit_of_work import AbstractUnitOfWork
from .common import describe, email_to, slot_detail

BOOKED = "appointment.booked"
RESCHEDULED = "appointment.rescheduled"
CHECK_KIND = "appointment.booking_check"
# Clinical calls time out within seconds: a booking asked for this long ago that is not there never happened.
INTENT_GRACE = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class Booker:
    """Who asked for a booking: the audit event names them and the confirmation goes to them."""

    user_id: int
    actor_role: str  # "patient" or "proxy"

    @classmethod
    def of(cls, acting: Acting) -> Booker:
        return cls(acting.user.id, acting.actor_role)


@dataclass(frozen=True)
class PendingIntent:
    """A booking intent as read before the clinical call (plain values: the session commits in between)."""

    id: int
    slot_id: str
    booker: Booker
    created_at: dt.datetime


def digest(key: str) -> str:
    """The form's key as the intent keeps it: bounded in length whatever a browser sent."""
    return hashlib.sha256(key.encode()).hexdigest()[:40]


# The intent, before the clinical call -------------------------------------------------------------------------
def intend(uow: AbstractUnitOfWork, acting: Acting, slot_id: str, key: str) -> None:
    """Commit a note of the booking about to be asked for, and the outbox check that looks for it later, so a
    booking the gateway fails to record is found. The same form sent twice writes one note."""
    uow.writing()
    patient_id, hashed = acting.patient.id, digest(key)
    known = uow.session.scalar(
        select(BookingIntent.id).where(BookingIntent.patient_id == patient_id, BookingIntent.idempotency_key == hashed)
    )
    if known is None:
        intent = BookingIntent(
            practice_id=acting.practice.id,
            patient_id=patient_id,
            user_id=acting.user.id,
            actor_role=acting.actor_role,
            slot_id=slot_id,
            idempotency_key=hashed,
            created_at=uow.now(),
        )
        # A savepoint, so that losing to a twin request expires nothing else the use case still reads.
        with contextlib.suppress(IntegrityError), uow.session.begin_nested():
            uow.session.add(intent)
            check = outbox.enqueue(
                uow,
                acting.practice.id,
                CHECK_KIND,
                {"patient_id": patient_id, "intent": hashed},
                f"booking-check-{patient_id}-{hashed}",
            )
            check.next_attempt_at = uow.now() + INTENT_GRACE
    uow.commit()


def forget(uow: AbstractUnitOfWork, patient_id: int, slot_id: str) -> None:
    """Drop the notes of a booking the clinical system refused for certain: there is nothing to find later."""
    uow.join_writing()
    _drop_intents(uow, patient_id, slot_id)
    uow.commit()


def pending(uow: AbstractUnitOfWork, patient_id: int) -> list[PendingIntent]:
    """The patient's bookings asked for and not yet recorded (read before the clinical call)."""
    rows = uow.session.scalars(select(BookingIntent).where(BookingIntent.patient_id == patient_id))
    return [PendingIntent(r.id, r.slot_id, Booker(r.user_id, r.actor_role), r.created_at) for r in rows]


def _drop_intents(uow: AbstractUnitOfWork, patient_id: int, slot_id: str) -> None:
    uow.session.execute(
        delete(BookingIntent).where(BookingIntent.patient_id == patient_id, BookingIntent.slot_id == slot_id)
    )


# The record, once ---------------------------------------------------------------------------------------------
def claim(uow: AbstractUnitOfWork, practice_id: int, patient_id: int, appointment_id: str, action: str) -> bool:
    """Insert the booking's unique record in the open transaction; False (nothing written) when another
    request recorded it first. ``appointment.rescheduled`` may take over a record left as
    ``appointment.booked`` by a reschedule that could not cancel the old appointment at first."""
    row = BookingRecord(
        practice_id=practice_id,
        appointment_ref=appointment_id,
        patient_id=patient_id,
        action=action,
        created_at=uow.now(),
    )
    try:
        with uow.session.begin_nested():  # losing rolls back the savepoint only: the transaction goes on
            uow.session.add(row)
        return True
    except IntegrityError:
        pass
    if action != RESCHEDULED:
        return False
    taken = uow.session.execute(
        update(BookingRecord)
        .where(
            BookingRecord.practice_id == practice_id,
            BookingRecord.appointment_ref == appointment_id,
            BookingRecord.action == BOOKED,
        )
        .values(action=RESCHEDULED)
    )
    return bool(getattr(taken, "rowcount", 0) == 1)


def record_booked(
    uow: AbstractUnitOfWork,
    practice: Practice,
    patient: Patient,
    booker: Booker,
    appointment: Appointment,
    *,
    reconciled: bool = False,
    commit: bool = True,
) -> bool:
    """The audit event and the confirmation of a booking, in one transaction with its unique record and the
    removal of its intents. False when it was recorded already, by a twin request or an earlier look.
    ``commit=False`` leaves the transaction to the caller (the outbox commits it with the message)."""
    patient_id, slot_id = patient.id, appointment.slot.id
    uow.join_writing()
    if not claim(uow, practice.id, patient_id, appointment.id, BOOKED):
        _drop_intents(uow, patient_id, slot_id)
        if commit:
            uow.commit()
        return False
    _drop_intents(uow, patient_id, slot_id)
    extra = {"reconciled": True} if reconciled else {}
    uow.audit(
        BOOKED,
        actor_id=booker.user_id,
        actor_role=booker.actor_role,
        patient_id=patient_id,
        practice_id=practice.id,
        **slot_detail(appointment),
        **extra,
    )
    user = uow.session.get(User, booker.user_id)
    if user is not None and user.active and is_upcoming(appointment, uow.now()):
        whose = f" for {patient.given_name}" if booker.actor_role == "proxy" else ""
        email_to(
            uow,
            user.email,
            practice,
            "appointment_booked",
            "Your GP appointment is booked",
            [f"Your appointment{whose} is booked: {describe(appointment, practice)}."],
        )
    if commit:
        uow.commit()
    return True


# Reconciliation, on the next look -------------------------------------------------------------------------
def reconcile(
    uow: AbstractUnitOfWork, acting: Acting, intents: Sequence[PendingIntent], found: Sequence[Appointment]
) -> int:
    """Record the bookings the clinical system holds for the patient's pending intents (each once, with one
    confirmation to whoever booked it); drop intents old enough that no booking will come of them."""
    if not intents:
        return 0
    booked = {a.slot.id: a for a in found if a.status == AppointmentStatus.BOOKED}
    stale_before = uow.now() - INTENT_GRACE
    recorded = 0
    for intent in intents:
        appointment = booked.get(intent.slot_id)
        if appointment is not None:
            recorded += record_booked(uow, acting.practice, acting.patient, intent.booker, appointment, reconciled=True)
        elif intent.created_at < stale_before:
            uow.join_writing()
            uow.session.execute(delete(BookingIntent).where(BookingIntent.id == intent.id))
            uow.commit()
    return recorded


# Reconciliation by the outbox worker, for a patient who does not come back ------------------------------------
def _intent_of(uow: AbstractUnitOfWork, message: OutboxMessage) -> BookingIntent | None:
    payload = message.payload
    return uow.session.scalar(
        select(BookingIntent).where(
            BookingIntent.patient_id == payload.get("patient_id"),
            BookingIntent.idempotency_key == payload.get("intent"),
        )
    )


def _prepare_check(uow: AbstractUnitOfWork, message: OutboxMessage) -> Callable[[], dict[str, Any]]:
    """Look for the booking at the clinical system, unless it was recorded at once (as nearly always)."""
    intent = _intent_of(uow, message)
    if intent is None:
        return lambda: {"outcome": "recorded"}
    patient = uow.session.get_one(Patient, intent.patient_id)
    practice = patient.practice
    system = uow.clinical_systems.system_for(practice)  # the outbox calls it with no transaction open
    ref = PatientRef(practice.ods_code, patient.nhs_number, patient.clinical_id)
    slot_id, since = intent.slot_id, intent.created_at - dt.timedelta(days=1)

    def call() -> dict[str, Any]:
        found = next(
            (
                a
                for a in system.list_appointments(ref, since)
                if a.slot.id == slot_id and a.status == AppointmentStatus.BOOKED
            ),
            None,
        )
        return {"outcome": "booked", "appointment": _as_json(found)} if found else {"outcome": "not booked"}

    return call


def _checked(uow: AbstractUnitOfWork, message: OutboxMessage) -> None:
    """Record the booking found (once, whoever else is recording it), or drop an intent that led to none."""
    intent = _intent_of(uow, message)
    if intent is None:
        return
    if message.result.get("outcome") != "booked":
        uow.session.delete(intent)
        return
    patient = uow.session.get_one(Patient, intent.patient_id)
    appointment = _from_json(message.result["appointment"])
    booker = Booker(intent.user_id, intent.actor_role)
    record_booked(uow, patient.practice, patient, booker, appointment, reconciled=True, commit=False)


outbox.register(CHECK_KIND, outbox.Handler(prepare=_prepare_check, delivered=_checked))


def _as_json(appointment: Appointment) -> dict[str, Any]:
    """What the audit event and the confirmation need of an appointment (never the reason: it may be clinical)."""
    slot = appointment.slot
    return {
        "id": appointment.id,
        "status": appointment.status.value,
        "slot": {
            "id": slot.id,
            "start": slot.start.isoformat(),
            "end": slot.end.isoformat(),
            "slot_type": slot.slot_type,
            "clinician": [slot.clinician.id, slot.clinician.name, slot.clinician.role],
            "delivery_mode": slot.delivery_mode.value,
            "location": slot.location,
        },
    }


def _from_json(data: dict[str, Any]) -> Appointment:
    slot = data["slot"]
    return Appointment(
        id=data["id"],
        status=AppointmentStatus(data["status"]),
        slot=Slot(
            id=slot["id"],
            start=dt.datetime.fromisoformat(slot["start"]),
            end=dt.datetime.fromisoformat(slot["end"]),
            slot_type=slot["slot_type"],
            clinician=Clinician(*slot["clinician"]),
            delivery_mode=DeliveryMode(slot["delivery_mode"]),
            location=slot["location"],
        ),
    )
