"""The demo clinical system's prescription queue: what practice staff do in the real system (approve, reject
with a reason, issue to the nominated pharmacy or on paper for collection at the surgery), over the demo tables."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from patient_online.domain.errors import InputError, NotFound
from patient_online.domain.prescriptions import Collection, InvalidTransition, RequestStatus, move
from patient_online.extensions import begin_write

from .models import DemoMedication, DemoPatient, DemoRepeatRequest

MAX_REASON = 500


@dataclass(frozen=True)
class QueueRow:
    id: str
    patient_id: str
    patient_name: str
    nhs_number: str
    item_names: tuple[str, ...]
    note: str
    pharmacy_ods: str
    collection: Collection
    status: RequestStatus
    requested_at: dt.datetime
    rejection_reason: str


def prescription_queue(session: Session, practice_ods: str) -> list[QueueRow]:
    """Every repeat request at the practice, those waiting for action first, then newest first."""
    rows = session.execute(
        select(DemoRepeatRequest, DemoPatient)
        .join(DemoPatient, DemoRepeatRequest.patient_id == DemoPatient.id)
        .where(DemoPatient.practice_ods == practice_ods)
        .order_by(DemoRepeatRequest.requested_at.desc())
    ).all()
    ids = {i for r, _ in rows for i in r.item_ids}
    names = dict(
        session.execute(select(DemoMedication.id, DemoMedication.name).where(DemoMedication.id.in_(ids))).tuples().all()
    )
    queue = [
        QueueRow(
            id=r.id,
            patient_id=p.id,
            patient_name=f"{p.given_name} {p.family_name}",
            nhs_number=p.nhs_number,
            item_names=tuple(names.get(i, "Unknown item") for i in r.item_ids),
            note=r.note,
            pharmacy_ods=r.pharmacy_ods,
            collection=Collection(r.collection),
            status=RequestStatus(r.status),
            requested_at=r.requested_at,
            rejection_reason=r.rejection_reason,
        )
        for r, p in rows
    ]
    waiting = (RequestStatus.REQUESTED, RequestStatus.APPROVED)
    return sorted(queue, key=lambda q: q.status not in waiting)  # stable: keeps newest first within each


def decide(session: Session, practice_ods: str, request_id: str, new: RequestStatus, reason: str = "") -> str:
    """Move one request on (approve, reject with a reason, issue) and commit; returns the patient's clinical id."""
    begin_write(session)  # a transaction of its own that takes the write lock first (SQLite)
    row = session.get(DemoRepeatRequest, request_id, with_for_update=True)
    patient = session.get(DemoPatient, row.patient_id) if row else None
    if row is None or patient is None or patient.practice_ods != practice_ods:
        raise NotFound("We could not find that request.")
    reason = reason.strip()
    if new is RequestStatus.REJECTED:
        if not reason:
            raise InputError("Enter the reason the patient will see", "reason")
        if len(reason) > MAX_REASON:
            raise InputError(f"Enter a reason of {MAX_REASON} characters or fewer", "reason")
    try:
        row.status = move(RequestStatus(row.status), new).value
    except InvalidTransition:
        session.rollback()
        raise InputError("This request has already been dealt with. Check its status.") from None
    now = dt.datetime.now(dt.UTC)
    row.updated_at = now
    if new is RequestStatus.REJECTED:
        row.rejection_reason = reason
    if new is RequestStatus.ISSUED:
        issued_on = now.astimezone(ZoneInfo("Europe/London")).date()
        for med in session.scalars(select(DemoMedication).where(DemoMedication.id.in_(list(row.item_ids)))):
            med.issues_used += 1
            med.last_issued = issued_on
    session.commit()
    return row.patient_id
