"""Reception's view of online bookings, cancellations and changes, built from the audit trail (no clinical text)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from patient_online.domain.appointments import LONDON, DeliveryMode
from patient_online.models import AuditEvent, Patient, Practice, User

from ..unit_of_work import AbstractUnitOfWork
from .common import WEEK_DAYS, local_day, when

RECEPTION_ACTIONS = (
    "appointment.booked",
    "appointment.cancelled",
    "appointment.rescheduled",
    "appointment.reschedule_incomplete",
)


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
            ("", f"Moved here online from {when(dt.datetime.fromisoformat(d['old_start']))}", False),
            ("old_", f"Cancelled online: moved to {when(dt.datetime.fromisoformat(d['start']))}", False),
        ]
    return [("", "Not cancelled: the patient moved this appointment but cancelling it failed. Cancel it.", True)]


def practice_bookings(
    uow: AbstractUnitOfWork, practice: Practice, first_day: dt.date, days: int = WEEK_DAYS
) -> list[BookingDay]:
    """Online bookings, cancellations and changes of the practice's appointments from ``first_day`` for ``days``."""
    session = uow.session
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
            day = local_day(start)
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
