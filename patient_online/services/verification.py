"""Reception verifies identities: approve or reject link requests, suspend and reinstate access."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload

from patient_online.domain.errors import DomainError, InputError, NotFound
from patient_online.domain.nhs_number import is_valid, normalise
from patient_online.domain.patients import Demographics
from patient_online.domain.proxy import ProxyStatus
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
from .patient_search import OnlineStatus, online_statuses
from .unit_of_work import AbstractUnitOfWork


@dataclass(frozen=True)
class FieldComparison:
    """One detail the person entered beside the clinical system's; ``matches`` None when there is nothing to
    compare (the address is not asked for)."""

    label: str
    entered: str | dt.date
    record: str | dt.date
    matches: bool | None
    hint: str = ""


@dataclass(frozen=True)
class PendingRequest:
    """A request to link, with the clinical system's demographics beside it (or why they could not be read)."""

    request: LinkRequestView
    age_days: int
    record: Demographics | None
    record_error: str = ""
    comparison: tuple[FieldComparison, ...] = ()
    earlier_checks: tuple[CheckView, ...] = ()


def _squashed(text: str) -> str:
    return "".join(text.split()).casefold()


def compare_details(request: LinkRequestView, record: Demographics | None) -> tuple[FieldComparison, ...]:
    """Each detail marked as matching the record or not (case and spaces ignored), for reception to see at once."""
    if record is None:
        return ()
    given_entered, given_record = _squashed(request.given_name), _squashed(record.given_name)
    given_same = given_entered == given_record
    return (
        FieldComparison(
            "NHS number", request.nhs_number, record.ref.nhs_number, request.nhs_number == record.ref.nhs_number
        ),
        FieldComparison(
            "First name",
            request.given_name,
            record.given_name,
            given_same,
            ""
            if given_same
            else "First names are often shortened or spelt differently: check it against their documents.",
        ),
        FieldComparison(
            "Surname",
            request.family_name,
            record.family_name,
            _squashed(request.family_name) == _squashed(record.family_name),
        ),
        FieldComparison(
            "Date of birth", request.date_of_birth, record.date_of_birth, request.date_of_birth == record.date_of_birth
        ),
        FieldComparison(
            "Postcode", request.postcode, record.postcode, _squashed(request.postcode) == _squashed(record.postcode)
        ),
        FieldComparison("Address", "", record.address, None, "Not asked for: check it against their documents."),
    )


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
    known = uow.session.scalar(
        select(Patient.id).where(Patient.practice_id == practice_id, Patient.nhs_number == request.nhs_number)
    )
    earlier = tuple(_checks(uow, known)) if known is not None else ()
    uow.commit()
    age = (uow.now() - request.created_at).days
    return PendingRequest(
        request=request,
        age_days=age,
        record=record,
        record_error=error,
        comparison=compare_details(request, record),
        earlier_checks=earlier,
    )


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
    user_id: int = 0  # the account itself (closing it), beside the link (suspending it)

    @classmethod
    def of(cls, link: AccountLink) -> AccountView:
        return cls(
            id=link.id,
            email=link.user.email,
            linked_at=link.linked_at,
            method=link.method,
            status=AccountLinkStatus(link.status),
            suspended_reason=link.suspended_reason,
            user_id=link.user_id,
        )


@dataclass(frozen=True)
class ProxyView:
    """A proxy link of the patient: someone acting for them, or someone they act for."""

    id: int
    proxy_name: str
    patient_name: str
    relationship_text: str
    status: ProxyStatus
    patient_id: int

    @property
    def open(self) -> bool:
        return self.status.open


@dataclass(frozen=True)
class CheckView:
    """One identity check, as recorded (append-only), with the notes reception wrote."""

    verified_at: dt.datetime
    method: str
    remote: bool
    staff_name: str
    documents: list[dict[str, object]]
    notes: str = ""


def _checks(uow: AbstractUnitOfWork, patient_id: int) -> list[CheckView]:
    return [
        CheckView(
            verified_at=v.verified_at,
            method=v.method,
            remote=v.remote,
            staff_name=v.staff.display_name if v.staff else "",
            documents=list(v.documents or []),
            notes=v.notes or "",
        )
        for v in uow.session.scalars(
            select(Verification)
            .where(Verification.patient_id == patient_id)
            .order_by(Verification.verified_at.desc(), Verification.id.desc())
            .options(joinedload(Verification.staff))
        )
    ]


@dataclass(frozen=True)
class LetterView:
    """A linkage letter's dates (never its key)."""

    issued_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    issued_by: str = ""

    def live(self, now: dt.datetime) -> bool:
        """Whether its key would still link an account (so a new letter replaces it)."""
        return self.used_at is None and self.revoked_at is None and _aware(self.expires_at) > now


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class PatientPage:
    """Everything reception's page about one patient shows."""

    patient: PatientSummary
    links: list[AccountView]
    proxies: list[ProxyView]
    checks: list[CheckView]
    letter: LetterView | None
    access: AccessPanel
    record: Demographics | None = None
    record_error: str = ""
    status: OnlineStatus = OnlineStatus.NOT_ONLINE
    waiting: list[LinkRequestView] = field(default_factory=list)
    letters: list[LetterView] = field(default_factory=list)
    acts_for: list[ProxyView] = field(default_factory=list)
    letter_live: bool = False


def _letters(uow: AbstractUnitOfWork, patient_id: int) -> list[LetterView]:
    rows = uow.session.scalars(
        select(LinkageLetter).where(LinkageLetter.patient_id == patient_id).order_by(LinkageLetter.id.desc())
    )
    issuers = {
        user.id: user.display_name
        for user in uow.session.scalars(
            select(User).where(
                User.id.in_(
                    select(LinkageLetter.issued_by_id).where(LinkageLetter.patient_id == patient_id).scalar_subquery()
                )
            )
        )
    }
    return [
        LetterView(
            issued_at=row.issued_at,
            expires_at=row.expires_at,
            used_at=row.used_at,
            revoked_at=row.revoked_at,
            issued_by=issuers.get(row.issued_by_id, ""),
        )
        for row in rows
    ]


def _latest_letter(uow: AbstractUnitOfWork, patient_id: int) -> LetterView | None:
    letters = _letters(uow, patient_id)
    return letters[0] if letters else None


def _proxy_view(p: ProxyLink) -> ProxyView:
    return ProxyView(
        id=p.id,
        proxy_name=p.proxy.display_name,
        patient_name=p.patient.full_name,
        relationship_text=p.relationship_text,
        status=ProxyStatus(p.status),
        patient_id=p.patient_id,
    )


def patient_page(uow: AbstractUnitOfWork, staff: User, practice: Practice, patient_id: int) -> PatientPage:
    """The patient as the clinical system knows them (for the identity check), their place with online services,
    requests waiting, identity checks with their notes, letters, proxy links both ways and online access.

    The clinical system is asked with no transaction open; the view is audited (who looked at whose details)."""
    require_staff(staff, practice)
    patient = practice_patient(uow, practice, patient_id)
    session = uow.session
    link_rows = list(
        session.scalars(
            select(AccountLink).where(AccountLink.patient_id == patient.id).options(joinedload(AccountLink.user))
        )
    )
    links = [AccountView.of(link) for link in link_rows]
    proxies = [
        _proxy_view(p)
        for p in session.scalars(
            select(ProxyLink)
            .where(ProxyLink.patient_id == patient.id)
            .order_by(ProxyLink.id)
            .options(joinedload(ProxyLink.proxy), joinedload(ProxyLink.patient))
        )
    ]
    account_ids = [link.user_id for link in link_rows]
    acts_for = (
        [
            _proxy_view(p)
            for p in session.scalars(
                select(ProxyLink)
                .join(Patient, Patient.id == ProxyLink.patient_id)
                .where(ProxyLink.proxy_user_id.in_(account_ids), Patient.practice_id == practice.id)
                .order_by(ProxyLink.id)
                .options(joinedload(ProxyLink.proxy), joinedload(ProxyLink.patient))
            )
        ]
        if account_ids
        else []
    )
    waiting = [
        request_view(row)
        for row in session.scalars(
            select(LinkRequest)
            .where(
                LinkRequest.practice_id == practice.id,
                LinkRequest.nhs_number == patient.nhs_number,
                LinkRequest.status == LinkRequestStatus.PENDING,
            )
            .order_by(LinkRequest.created_at)
            .options(joinedload(LinkRequest.user))
        )
    ]
    checks = _checks(uow, patient.id)
    letters = _letters(uow, patient.id)
    status = online_statuses(uow, practice, [patient.nhs_number])[patient.nhs_number]
    summary_of = summary(patient)
    nhs_number, practice_id = patient.nhs_number, practice.id
    system = uow.clinical(practice)
    uow.release()
    record: Demographics | None = None
    record_error = ""
    try:
        record = system.find_patient(nhs_number)
    except DomainError as exc:
        record_error = exc.message
    else:
        if record is None:
            record_error = "This patient is no longer registered at your practice in your clinical system."
    uow.audit(
        "patient.viewed",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=summary_of.id,
        practice_id=practice_id,
    )
    uow.commit()
    now = uow.now()
    return PatientPage(
        patient=summary_of,
        links=links,
        proxies=proxies,
        checks=checks,
        letter=letters[0] if letters else None,
        access=view_patient_access(uow, staff, practice, summary_of.id),
        record=record,
        record_error=record_error,
        status=status,
        waiting=waiting,
        letters=letters,
        acts_for=acts_for,
        letter_live=bool(letters) and letters[0].live(now),
    )


@dataclass(frozen=True)
class LetterPage:
    """The printable letter and the check before it: the patient and the latest letter's dates (the key itself is
    held by the page); whether a new letter replaces one still usable, and whether an account is already linked."""

    patient: PatientSummary
    letter: LetterView | None
    replaces: bool = False
    linked: bool = False


def letter_page(uow: AbstractUnitOfWork, staff: User, practice: Practice, patient_id: int) -> LetterPage:
    """What the identity check before a letter, and the printable letter, show besides its key."""
    require_staff(staff, practice)
    patient = practice_patient(uow, practice, patient_id)
    latest = _latest_letter(uow, patient.id)
    linked = (
        uow.session.scalar(
            select(AccountLink.id)
            .where(AccountLink.patient_id == patient.id, AccountLink.status == AccountLinkStatus.ACTIVE)
            .limit(1)
        )
        is not None
    )
    return LetterPage(
        patient=summary(patient),
        letter=latest,
        replaces=latest is not None and latest.live(uow.now()),
        linked=linked,
    )


@dataclass(frozen=True)
class AccountToChange:
    """One account of a patient, for the page that confirms suspending or reinstating it."""

    patient: PatientSummary
    account: AccountView


def account_of_patient(
    uow: AbstractUnitOfWork, staff: User, practice: Practice, patient_id: int, link_id: int
) -> AccountToChange:
    """The account linked to the practice's patient (NotFound for any other)."""
    require_staff(staff, practice)
    patient = practice_patient(uow, practice, patient_id)
    link = uow.session.get(AccountLink, link_id)
    if link is None or link.patient_id != patient.id:
        raise NotFound("We could not find that account at your practice.")
    found = AccountToChange(
        patient=summary(patient),
        account=AccountView.of(link),
    )
    uow.commit()
    return found


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
