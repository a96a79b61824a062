"""Reception verifies identities: approve or reject link requests, suspend and reinstate access."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from patient_online.domain.access import VerificationMethod
from patient_online.domain.errors import DomainError, NotAllowed, NotFound
from patient_online.domain.nhs_number import is_valid, normalise
from patient_online.domain.patients import Demographics
from patient_online.models import AccountLink, LinkRequest, Patient, Practice, User, Verification, utcnow

from . import audit, notify
from .clinical import system_for
from .linking import ensure_patient

STAFF_METHODS = (
    VerificationMethod.DOCUMENTS,
    VerificationMethod.VOUCHING,
    VerificationMethod.VOUCHING_WITH_CONFIRMATION,
)
PHOTO_DOCUMENTS = {
    "passport": "Passport",
    "driving_licence": "Photo driving licence",
    "id_card": "National ID card",
    "residence_permit": "Biometric residence permit",
}
OTHER_DOCUMENTS = {
    "utility_bill": "Utility bill (last 3 months)",
    "bank_statement": "Bank statement",
    "council_tax": "Council tax bill",
    "benefits_letter": "Benefits letter",
    "birth_certificate": "Birth certificate",
}
DOCUMENTS = {**PHOTO_DOCUMENTS, **OTHER_DOCUMENTS}


class VerificationError(DomainError):
    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def require_staff(staff: User, practice: Practice, role: str = "receptionist") -> None:
    """Only staff with the role at this practice may act on its patients (checked here too, not only by the gate)."""
    if not any(m.practice_id == practice.id and m.role == role for m in staff.memberships):
        raise NotAllowed("You do not have that role at this practice.")


@dataclass(frozen=True)
class PendingRequest:
    request: LinkRequest
    age_days: int
    record: Demographics | None
    record_error: str = ""


def pending_requests(session: Session, staff: User, practice: Practice) -> list[LinkRequest]:
    require_staff(staff, practice)
    return list(
        session.scalars(
            select(LinkRequest)
            .where(LinkRequest.practice_id == practice.id, LinkRequest.status == "pending")
            .order_by(LinkRequest.created_at)
        )
    )


def get_request(session: Session, staff: User, practice: Practice, request_id: int) -> PendingRequest:
    """One request with the clinical system's demographics beside it, for reception to compare."""
    require_staff(staff, practice)
    request = session.get(LinkRequest, request_id)
    if request is None or request.practice_id != practice.id:
        raise NotFound("We could not find that request at your practice.")
    record: Demographics | None = None
    error = ""
    try:
        record = system_for(practice).find_patient(request.nhs_number)
    except DomainError as exc:
        error = exc.message
    age = (utcnow() - request.created_at).days
    audit.record(
        session,
        "verification.viewed",
        actor_id=staff.id,
        actor_role="receptionist",
        practice_id=practice.id,
        subject_user_id=request.user_id,
        link_request=request.id,
    )
    session.commit()
    return PendingRequest(request=request, age_days=age, record=record, record_error=error)


def check_documents(method: str, documents: list[str]) -> list[dict[str, object]]:
    """Rule 3: documents means at least two documents seen, one of them with a photo."""
    if method != VerificationMethod.DOCUMENTS:
        return []
    chosen = [d for d in dict.fromkeys(documents) if d in DOCUMENTS]
    if len(chosen) < 2:
        raise VerificationError("Select at least 2 documents you have seen", "documents")
    if not any(d in PHOTO_DOCUMENTS for d in chosen):
        raise VerificationError(
            "Select at least 1 document with a photo, like a passport or driving licence", "documents"
        )
    return [{"type": d, "photo": d in PHOTO_DOCUMENTS} for d in chosen]


def approve_request(
    session: Session,
    staff: User,
    practice: Practice,
    request_id: int,
    method: str,
    documents: list[str],
    remote: bool,
    notes: str,
) -> Patient:
    """Link the account to the patient and record how their identity was verified (append-only)."""
    pending = get_request(session, staff, practice, request_id)
    request = pending.request
    if request.status != "pending":
        raise VerificationError("This request has already been decided", "method")
    if method not in {m.value for m in STAFF_METHODS}:
        raise VerificationError("Choose how you verified this person's identity", "method")
    docs = check_documents(method, documents)
    if pending.record is None:
        raise VerificationError(
            pending.record_error or "This NHS number is no longer registered at your practice. Reject the request.",
            "method",
        )
    patient = ensure_patient(session, practice, pending.record)
    if session.scalar(select(AccountLink.id).where(AccountLink.patient_id == patient.id).limit(1)) is not None:
        raise VerificationError("This patient's record is already linked to another account", "method")
    session.add(
        AccountLink(
            user_id=request.user_id,
            patient_id=patient.id,
            method=method,
            remote_vouching_only=remote and method != VerificationMethod.DOCUMENTS,
        )
    )
    session.add(
        Verification(
            patient_id=patient.id,
            user_id=request.user_id,
            method=method,
            documents=docs,
            remote=remote,
            staff_id=staff.id,
            notes=notes.strip()[:2000],
        )
    )
    request.status, request.decided_at, request.decided_by_id = "approved", utcnow(), staff.id
    user = session.get_one(User, request.user_id)
    if not user.given_name:
        user.given_name, user.family_name = patient.given_name, patient.family_name
    audit.record(
        session,
        "verification.approved",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=patient.id,
        practice_id=practice.id,
        subject_user_id=user.id,
        method=method,
        remote=remote,
        documents=[d["type"] for d in docs],
    )
    notify.send_email(
        session,
        user.email,
        "link_approved",
        "Your GP record is now linked",
        f"{practice.name} has checked your identity. Sign in to use your GP services online.",
    )
    session.commit()
    return patient


def reject_request(session: Session, staff: User, practice: Practice, request_id: int, reason: str) -> None:
    require_staff(staff, practice)
    request = session.get(LinkRequest, request_id)
    if request is None or request.practice_id != practice.id:
        raise NotFound("We could not find that request at your practice.")
    if request.status != "pending":
        raise VerificationError("This request has already been decided", "reason")
    reason = reason.strip()
    if not reason:
        raise VerificationError("Enter the reason the patient will see", "reason")
    if len(reason) > 500:
        raise VerificationError("Reason must be 500 characters or fewer", "reason")
    request.status, request.decided_at, request.decided_by_id, request.rejection_reason = (
        "rejected",
        utcnow(),
        staff.id,
        reason,
    )
    user = session.get_one(User, request.user_id)
    audit.record(
        session,
        "verification.rejected",
        actor_id=staff.id,
        actor_role="receptionist",
        practice_id=practice.id,
        subject_user_id=user.id,
    )
    notify.send_email(
        session,
        user.email,
        "link_rejected",
        "Your request to link your GP record",
        f"{practice.name} could not approve your request: {reason}",
    )
    session.commit()


def patient_of_practice(session: Session, staff: User, practice: Practice, patient_id: int) -> Patient:
    """A patient row, only if it belongs to the staff member's practice (else NotFound: no cross-practice peeking)."""
    require_staff(staff, practice)
    patient = session.get(Patient, patient_id)
    if patient is None or patient.practice_id != practice.id:
        raise NotFound("We could not find that patient at your practice.")
    return patient


def set_suspended(
    session: Session, staff: User, practice: Practice, link_id: int, suspend: bool, reason: str
) -> AccountLink:
    """Suspend or reinstate one account's access to the practice, with a reason; audited."""
    require_staff(staff, practice)
    link = session.get(AccountLink, link_id)
    if link is None or link.patient.practice_id != practice.id:
        raise NotFound("We could not find that account at your practice.")
    reason = reason.strip()
    if not reason:
        raise VerificationError("Enter a reason", "reason")
    link.status = "suspended" if suspend else "active"
    link.suspended_reason = reason if suspend else ""
    link.suspended_at = utcnow() if suspend else None
    link.suspended_by_id = staff.id if suspend else None
    audit.record(
        session,
        "account.suspended" if suspend else "account.reinstated",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=link.patient_id,
        subject_user_id=link.user_id,
        practice_id=practice.id,
        reason=reason,
    )
    user = session.get_one(User, link.user_id)
    notify.send_email(
        session,
        user.email,
        "access_suspended" if suspend else "access_reinstated",
        "Your online access has changed",
        (
            f"{practice.name} has suspended your online access: {reason}. Contact the practice for help."
            if suspend
            else f"{practice.name} has reinstated your online access."
        ),
    )
    session.commit()
    return link


def search_patients(
    session: Session, staff: User, practice: Practice, query: str, born: dt.date | None
) -> list[Patient]:
    """Find the practice's patients by NHS number (asking the clinical system too), name or date of birth."""
    require_staff(staff, practice)
    text = query.strip()
    number = normalise(text)
    if is_valid(number):
        found = session.scalar(select(Patient).where(Patient.practice_id == practice.id, Patient.nhs_number == number))
        if found is None:
            person = system_for(practice).find_patient(number)
            if person is not None:
                found = ensure_patient(session, practice, person)
                session.commit()
        results = [found] if found else []
    else:
        stmt = select(Patient).where(Patient.practice_id == practice.id)
        if text:
            like = f"%{text.lower()}%"
            stmt = stmt.where(
                or_(func.lower(Patient.family_name).like(like), func.lower(Patient.given_name).like(like))
            )
        if born:
            stmt = stmt.where(Patient.date_of_birth == born)
        if not text and not born:
            return []
        results = list(session.scalars(stmt.order_by(Patient.family_name, Patient.given_name).limit(50)))
    audit.record(
        session,
        "patient.searched",
        actor_id=staff.id,
        actor_role="receptionist",
        practice_id=practice.id,
        results=len(results),
    )
    session.commit()
    return results
