"""Reception verifies identities: approve or reject link requests, suspend and reinstate access."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload

from patient_online.domain.errors import DomainError, InputError, NotFound
from patient_online.domain.nhs_number import is_valid, normalise
from patient_online.domain.patients import Demographics
from patient_online.domain.verification import (
    AccountLinkStatus,
    LinkRequestStatus,
    LinkRequestView,
    PatientSummary,
    details_match,
    identity_check,
)
from patient_online.models import (
    AccountLink,
    LinkageLetter,
    LinkRequest,
    Patient,
    Practice,
    ProxyLink,
    User,
    Verification,
)

from .linking import ensure_patient, practice_patient, request_view, require_staff, summary
from .patient_access import AccessPanel, view_patient_access
from .unit_of_work import AbstractUnitOfWork


@dataclass(frozen=True)
class PendingRequest:
    """A request to link, with the clinical system's demographics beside it (or why they could not be read)."""

    request: LinkRequestView
    age_days: int
    record: Demographics | None
    record_error: str = ""


def pending_requests(uow: AbstractUnitOfWork, staff: User, practice: Practice) -> list[LinkRequestView]:
    """The practice's requests waiting for an identity check, oldest first."""
    require_staff(staff, practice)
    rows = uow.session.scalars(
        select(LinkRequest)
        .where(LinkRequest.practice_id == practice.id, LinkRequest.status == LinkRequestStatus.PENDING)
        .order_by(LinkRequest.created_at)
        .options(joinedload(LinkRequest.user))
    )
    return [request_view(row) for row in rows]


def _practice_request(uow: AbstractUnitOfWork, practice: Practice, request_id: int) -> LinkRequest:
    request = uow.session.get(LinkRequest, request_id, populate_existing=True)
    if request is None or request.practice_id != practice.id:
        raise NotFound("We could not find that request at your practice.")
    return request


def get_request(uow: AbstractUnitOfWork, staff: User, practice: Practice, request_id: int) -> PendingRequest:
    """One request with the clinical system's demographics beside it, for reception to compare."""
    require_staff(staff, practice)
    row = _practice_request(uow, practice, request_id)
    request, user_id = request_view(row), row.user_id
    practice_id = practice.id
    system = uow.clinical(practice)
    uow.release()
    record: Demographics | None = None
    error = ""
    try:
        record = system.find_patient(request.nhs_number)
    except DomainError as exc:
        error = exc.message
    uow.audit(
        "verification.viewed",
        actor_id=staff.id,
        actor_role="receptionist",
        practice_id=practice_id,
        subject_user_id=user_id,
        link_request=request.id,
    )
    uow.commit()
    age = (uow.now() - request.created_at).days
    return PendingRequest(request=request, age_days=age, record=record, record_error=error)


@dataclass(frozen=True)
class Approved:
    """The patient whose account reception has just linked."""

    patient: PatientSummary


def approve_request(
    uow: AbstractUnitOfWork,
    staff: User,
    practice: Practice,
    request_id: int,
    method: str,
    documents: list[str],
    remote: bool,
    notes: str,
) -> Approved:
    """Link the account to the patient and record how their identity was verified (append-only)."""
    pending = get_request(uow, staff, practice, request_id)
    uow.writing()
    request = _practice_request(uow, practice, request_id)
    if request.status != LinkRequestStatus.PENDING:
        raise InputError("This request has already been decided", "method")
    check = identity_check(method, documents, remote, notes)
    chosen, docs = check.method, check.documents
    if pending.record is None:
        raise InputError(
            pending.record_error or "This NHS number is no longer registered at your practice. Reject the request.",
            "method",
        )
    # Every request reaches reception, matched or not (the patient is not told which): one whose details do
    # not match the record is never linked to it, however convincing the documents at the desk.
    if not details_match(pending.record, request.date_of_birth, request.family_name, request.postcode):
        raise InputError(
            "The details in this request do not match your clinical system. Reject the request, or correct the "
            "record first if it is out of date",
            "method",
        )
    patient = ensure_patient(uow, practice, pending.record)
    if uow.session.scalar(select(AccountLink.id).where(AccountLink.patient_id == patient.id).limit(1)) is not None:
        uow.rollback()
        raise InputError("This patient's record is already linked to another account", "method")
    now = uow.now()
    uow.session.add(
        AccountLink(
            user_id=request.user_id,
            patient_id=patient.id,
            method=chosen.value,
            remote_vouching_only=check.remote_vouching_only,
            linked_at=now,
        )
    )
    uow.session.add(
        Verification(
            patient_id=patient.id,
            user_id=request.user_id,
            method=chosen.value,
            documents=docs,
            remote=remote,
            staff_id=staff.id,
            verified_at=now,
            notes=check.notes,
        )
    )
    request.status, request.decided_at, request.decided_by_id = LinkRequestStatus.APPROVED.value, now, staff.id
    user = uow.session.get_one(User, request.user_id)
    if not user.given_name:
        user.given_name, user.family_name = patient.given_name, patient.family_name
    uow.audit(
        "verification.approved",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=patient.id,
        practice_id=practice.id,
        subject_user_id=user.id,
        method=chosen.value,
        remote=remote,
        documents=[d["type"] for d in docs],
    )
    uow.send_email(
        user.email,
        "link_approved",
        "Your GP record is now linked",
        f"{practice.name} has checked your identity. Sign in to use your GP services online.",
    )
    approved = Approved(summary(patient))
    uow.commit()
    return approved


def reject_request(uow: AbstractUnitOfWork, staff: User, practice: Practice, request_id: int, reason: str) -> None:
    """Turn a request down with a reason the patient is told."""
    require_staff(staff, practice)
    uow.writing()
    request = _practice_request(uow, practice, request_id)
    if request.status != LinkRequestStatus.PENDING:
        raise InputError("This request has already been decided", "reason")
    reason = reason.strip()
    if not reason:
        raise InputError("Enter the reason the patient will see", "reason")
    if len(reason) > 500:
        raise InputError("Reason must be 500 characters or fewer", "reason")
    request.status, request.decided_at, request.decided_by_id, request.rejection_reason = (
        LinkRequestStatus.REJECTED.value,
        uow.now(),
        staff.id,
        reason,
    )
    user = uow.session.get_one(User, request.user_id)
    uow.audit(
        "verification.rejected",
        actor_id=staff.id,
        actor_role="receptionist",
        practice_id=practice.id,
        subject_user_id=user.id,
    )
    uow.send_email(
        user.email,
        "link_rejected",
        "Your request to link your GP record",
        f"{practice.name} could not approve your request: {reason}",
    )
    uow.commit()


def patient_of_practice(uow: AbstractUnitOfWork, staff: User, practice: Practice, patient_id: int) -> PatientSummary:
    """The patient, only if they belong to the staff member's practice (else NotFound: no cross-practice peeking)."""
    require_staff(staff, practice)
    return summary(practice_patient(uow, practice, patient_id))


# Reception's page about one patient ---------------------------------------------------------------------
@dataclass(frozen=True)
class AccountView:
    """One account linked to the patient's own record."""

    id: int
    email: str
    linked_at: dt.datetime
    method: str
    status: AccountLinkStatus
    suspended_reason: str


@dataclass(frozen=True)
class ProxyView:
    """Someone acting for the patient."""

    proxy_name: str
    relationship_text: str
    status: str


@dataclass(frozen=True)
class CheckView:
    """One identity check, as recorded (append-only)."""

    verified_at: dt.datetime
    method: str
    remote: bool
    staff_name: str
    documents: list[dict[str, object]]


@dataclass(frozen=True)
class LetterView:
    """The latest linkage letter's dates (never its key)."""

    issued_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None
    revoked_at: dt.datetime | None


@dataclass(frozen=True)
class PatientPage:
    """Everything reception's page about one patient shows."""

    patient: PatientSummary
    links: list[AccountView]
    proxies: list[ProxyView]
    checks: list[CheckView]
    letter: LetterView | None
    access: AccessPanel


def _latest_letter(uow: AbstractUnitOfWork, patient_id: int) -> LetterView | None:
    row = uow.session.scalar(
        select(LinkageLetter).where(LinkageLetter.patient_id == patient_id).order_by(LinkageLetter.id.desc()).limit(1)
    )
    if row is None:
        return None
    return LetterView(
        issued_at=row.issued_at, expires_at=row.expires_at, used_at=row.used_at, revoked_at=row.revoked_at
    )


def patient_page(uow: AbstractUnitOfWork, staff: User, practice: Practice, patient_id: int) -> PatientPage:
    """The patient's accounts, proxies, identity checks, latest letter and online access (the view is audited)."""
    require_staff(staff, practice)
    patient = practice_patient(uow, practice, patient_id)
    session = uow.session
    links = [
        AccountView(
            id=link.id,
            email=link.user.email,
            linked_at=link.linked_at,
            method=link.method,
            status=AccountLinkStatus(link.status),
            suspended_reason=link.suspended_reason,
        )
        for link in session.scalars(
            select(AccountLink).where(AccountLink.patient_id == patient.id).options(joinedload(AccountLink.user))
        )
    ]
    proxies = [
        ProxyView(proxy_name=p.proxy.display_name, relationship_text=p.relationship_text, status=p.status)
        for p in session.scalars(
            select(ProxyLink).where(ProxyLink.patient_id == patient.id).options(joinedload(ProxyLink.proxy))
        )
    ]
    checks = [
        CheckView(
            verified_at=v.verified_at,
            method=v.method,
            remote=v.remote,
            staff_name=v.staff.display_name if v.staff else "",
            documents=list(v.documents or []),
        )
        for v in session.scalars(
            select(Verification)
            .where(Verification.patient_id == patient.id)
            .order_by(Verification.verified_at.desc())
            .options(joinedload(Verification.staff))
        )
    ]
    page = PatientPage(
        patient=summary(patient),
        links=links,
        proxies=proxies,
        checks=checks,
        letter=_latest_letter(uow, patient.id),
        access=view_patient_access(uow, staff, practice, patient.id),
    )
    return page


@dataclass(frozen=True)
class LetterPage:
    """The printable letter: the patient and the latest letter's dates (the key itself is held by the page)."""

    patient: PatientSummary
    letter: LetterView | None


def letter_page(uow: AbstractUnitOfWork, staff: User, practice: Practice, patient_id: int) -> LetterPage:
    """What the printable linkage letter shows besides its key."""
    require_staff(staff, practice)
    patient = practice_patient(uow, practice, patient_id)
    return LetterPage(patient=summary(patient), letter=_latest_letter(uow, patient.id))


def set_suspended(
    uow: AbstractUnitOfWork,
    staff: User,
    practice: Practice,
    patient_id: int,
    link_id: int,
    suspend: bool,
    reason: str,
) -> AccountLinkStatus:
    """Suspend or reinstate one account's access to the practice, with a reason; audited."""
    require_staff(staff, practice)
    uow.writing()
    practice_patient(uow, practice, patient_id)
    link = uow.session.get(AccountLink, link_id)
    if link is None or link.patient.practice_id != practice.id:
        raise NotFound("We could not find that account at your practice.")
    reason = reason.strip()
    if not reason:
        raise InputError("Enter a reason", "reason")
    status = AccountLinkStatus.SUSPENDED if suspend else AccountLinkStatus.ACTIVE
    link.status = status.value
    link.suspended_reason = reason if suspend else ""
    link.suspended_at = uow.now() if suspend else None
    link.suspended_by_id = staff.id if suspend else None
    uow.audit(
        "account.suspended" if suspend else "account.reinstated",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=link.patient_id,
        subject_user_id=link.user_id,
        practice_id=practice.id,
        reason=reason,
    )
    user = uow.session.get_one(User, link.user_id)
    uow.send_email(
        user.email,
        "access_suspended" if suspend else "access_reinstated",
        "Your online access has changed",
        (
            f"{practice.name} has suspended your online access: {reason}. Contact the practice for help."
            if suspend
            else f"{practice.name} has reinstated your online access."
        ),
    )
    uow.commit()
    return status


def search_patients(
    uow: AbstractUnitOfWork, staff: User, practice: Practice, query: str, born: dt.date | None
) -> list[PatientSummary]:
    """Find the practice's patients by NHS number (asking the clinical system too), name or date of birth."""
    require_staff(staff, practice)
    session = uow.session
    text = query.strip()
    number = normalise(text)
    if is_valid(number):
        found = session.scalar(select(Patient).where(Patient.practice_id == practice.id, Patient.nhs_number == number))
        if found is None:
            system = uow.clinical(practice)
            uow.release()
            person = system.find_patient(number)
            if person is not None:
                uow.writing()
                found = ensure_patient(uow, practice, person)
                uow.commit()
        results = [summary(found)] if found else []
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
        found_rows = session.scalars(stmt.order_by(Patient.family_name, Patient.given_name).limit(50))
        results = [summary(p) for p in found_rows]
    uow.audit(
        "patient.searched",
        actor_id=staff.id,
        actor_role="receptionist",
        practice_id=practice.id,
        results=len(results),
    )
    uow.commit()
    return results
