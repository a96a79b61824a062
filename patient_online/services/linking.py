"""Link an account to the patient's record: linkage letter, request for reception, or NHS login P9."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select, update

from patient_online.crypto import random_key, token_hash, tokens_match
from patient_online.domain.access import VerificationMethod
from patient_online.domain.errors import InputError, NotAllowed, NotFound
from patient_online.domain.nhs_number import is_valid, normalise
from patient_online.domain.patients import Demographics
from patient_online.domain.verification import (
    IdentityCheck,
    LinkRequestStatus,
    LinkRequestView,
    PatientSummary,
    details_match,
    remote_vouching_only,
)
from patient_online.models import AccountLink, LinkageLetter, LinkRequest, Patient, Practice, User, Verification

from .access import noted_levels
from .system_ids import remember_patient_id
from .unit_of_work import AbstractUnitOfWork

LETTER_LIFETIME = dt.timedelta(days=30)
KEY_LENGTH = 12
ALREADY_LINKED = "Your account is already linked to your GP record"
WRONG_LETTER = (
    "The details do not match a current linkage letter. Check the ODS code, Account ID and Linkage Key, "
    "or ask your GP practice for a new letter"
)


# Shared by reception's use cases -------------------------------------------------------------------------
def require_staff(staff: User, practice: Practice, role: str = "receptionist") -> None:
    """Only staff with the role at this practice may act on its patients (checked here too, not only by the gate)."""
    if not any(m.practice_id == practice.id and m.role == role for m in staff.memberships):
        raise NotAllowed("You do not have that role at this practice.")


def practice_patient(uow: AbstractUnitOfWork, practice: Practice, patient_id: int) -> Patient:
    """The patient row, only if it belongs to ``practice`` (else NotFound: no cross-practice peeking)."""
    patient = uow.session.get(Patient, patient_id)
    if patient is None or patient.practice_id != practice.id:
        raise NotFound("We could not find that patient at your practice.")
    return patient


def summary(patient: Patient) -> PatientSummary:
    return PatientSummary(
        id=patient.id,
        nhs_number=patient.nhs_number,
        given_name=patient.given_name,
        family_name=patient.family_name,
        date_of_birth=patient.date_of_birth,
        online_account_id=patient.online_account_id,
    )


def request_view(request: LinkRequest) -> LinkRequestView:
    return LinkRequestView(
        id=request.id,
        status=LinkRequestStatus(request.status),
        practice_name=request.practice.name,
        nhs_number=request.nhs_number,
        given_name=request.given_name,
        family_name=request.family_name,
        date_of_birth=request.date_of_birth,
        postcode=request.postcode,
        email=request.user.email,
        created_at=request.created_at,
        rejection_reason=request.rejection_reason,
        matched=request.matched,
    )


def practice_by_ods(uow: AbstractUnitOfWork, ods: str) -> Practice | None:
    """The practice on the gateway with this ODS code, however the person typed it."""
    return uow.session.scalar(select(Practice).where(Practice.ods_code == (ods or "").strip().upper()))


def ensure_patient(uow: AbstractUnitOfWork, practice: Practice, person: Demographics) -> Patient:
    """The gateway's row for a practice patient, created from the clinical system's demographics."""
    session = uow.session
    patient = session.scalar(
        select(Patient).where(Patient.practice_id == practice.id, Patient.nhs_number == person.ref.nhs_number)
    )
    if patient is None:
        patient = Patient(
            practice_id=practice.id,
            nhs_number=person.ref.nhs_number,
            clinical_id=person.ref.clinical_id,
            given_name=person.given_name,
            family_name=person.family_name,
            date_of_birth=person.date_of_birth,
            online_account_id=new_account_id(uow, practice),
        )
        session.add(patient)
    noted = noted_levels(patient)  # rule 8: a review keeps the level noted when the gateway first saw it
    patient.flags = [
        {"code": f.code, "date": f.recorded_on.isoformat()}
        | ({"level_then": noted[key]} if (key := (f.code, f.recorded_on.isoformat())) in noted else {})
        for f in person.flags
    ]
    patient.flags_read_at = uow.now()
    session.flush()
    if remember_patient_id(uow, patient, person.ref.clinical_id):  # the id at the practice's current system
        session.flush()
    return patient


def new_account_id(uow: AbstractUnitOfWork, practice: Practice) -> str:
    """An Account ID no other patient has, for the linkage letter."""
    while True:
        candidate = f"{practice.ods_code}{secrets.randbelow(10**6):06d}"
        if uow.session.scalar(select(Patient.id).where(Patient.online_account_id == candidate)) is None:
            return candidate


def _secret(uow: AbstractUnitOfWork) -> str | None:
    """The key the Linkage Keys' hashes are made with (the app's secret key when the settings do not say)."""
    value = uow.setting("SECRET_KEY")
    return str(value) if value else None


def has_own_link(uow: AbstractUnitOfWork, user: User) -> bool:
    """Whether the account is linked to a GP record of its own (active or suspended)."""
    return uow.session.scalar(select(AccountLink.id).where(AccountLink.user_id == user.id).limit(1)) is not None


def _record_taken(uow: AbstractUnitOfWork, patient: Patient) -> bool:
    return uow.session.scalar(select(AccountLink.id).where(AccountLink.patient_id == patient.id).limit(1)) is not None


# The patient's /link page ------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinkPage:
    """What the patient's link page shows: whether they are linked, the practices, their latest request."""

    linked: bool
    practices: list[tuple[str, str]]  # (ODS code, "Name (ODS code)")
    latest: LinkRequestView | None


def link_page(uow: AbstractUnitOfWork, user: User) -> LinkPage:
    """Everything the link page needs, read at once."""
    practices = uow.session.scalars(select(Practice).order_by(Practice.name))
    return LinkPage(
        linked=has_own_link(uow, user),
        practices=[(p.ods_code, f"{p.name} ({p.ods_code})") for p in practices],
        latest=latest_request(uow, user),
    )


def latest_request(uow: AbstractUnitOfWork, user: User) -> LinkRequestView | None:
    """The account's most recent request to link, whatever its outcome, for the patient's pages to explain."""
    found = uow.session.scalar(
        select(LinkRequest).where(LinkRequest.user_id == user.id).order_by(LinkRequest.id.desc()).limit(1)
    )
    return request_view(found) if found else None


# Linkage letters --------------------------------------------------------------------------------------
def issue_letter(
    uow: AbstractUnitOfWork, staff: User, practice: Practice, patient_id: int, check: IdentityCheck
) -> str:
    """A fresh Linkage Key for the patient; any earlier key stops working. Returns the key to print.

    A letter links an account without anyone looking again, so it is issued only after an identity check,
    and that check is recorded as reception described it (method, documents seen, remote or not, notes):
    the verification record never claims more than was done (rule 3)."""
    require_staff(staff, practice)
    uow.writing()
    patient = practice_patient(uow, practice, patient_id)
    now = uow.now()
    uow.session.add(
        Verification(
            patient_id=patient.id,
            user_id=None,  # no account yet: the letter's user is known only when it is used
            method=check.method.value,
            documents=check.documents,
            remote=check.remote,
            staff_id=staff.id,
            verified_at=now,
            notes=check.notes,
        )
    )
    uow.session.execute(
        update(LinkageLetter)
        .where(
            LinkageLetter.patient_id == patient.id, LinkageLetter.revoked_at.is_(None), LinkageLetter.used_at.is_(None)
        )
        .values(revoked_at=now)
    )
    key = random_key(KEY_LENGTH)
    uow.session.add(
        LinkageLetter(
            patient_id=patient.id,
            key_hash=token_hash(key, _secret(uow)),
            issued_by_id=staff.id,
            issued_at=now,
            expires_at=now + LETTER_LIFETIME,
            verification_method=check.method.value,
        )
    )
    uow.audit(
        "linkage_letter.issued",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=patient.id,
        practice_id=patient.practice_id,
        method=check.method.value,
        remote=check.remote,
        documents=[d["type"] for d in check.documents],
    )
    uow.commit()
    return "-".join(key[i : i + 4] for i in range(0, len(key), 4))


def link_with_letter(uow: AbstractUnitOfWork, user: User, ods: str, account_id: str, key: str) -> PatientSummary:
    """A correct ODS code, Account ID and unexpired Linkage Key link and verify the account at once."""
    uow.writing()
    if has_own_link(uow, user):
        raise InputError(ALREADY_LINKED, "key")
    practice = practice_by_ods(uow, ods)
    patient = (
        uow.session.scalar(
            select(Patient).where(
                Patient.practice_id == practice.id, func.upper(Patient.online_account_id) == account_id.strip().upper()
            )
        )
        if practice
        else None
    )
    letter = (
        uow.session.scalar(
            select(LinkageLetter)
            .where(
                LinkageLetter.patient_id == patient.id,
                LinkageLetter.revoked_at.is_(None),
                LinkageLetter.used_at.is_(None),
            )
            .order_by(LinkageLetter.id.desc())
        )
        if patient
        else None
    )
    now = uow.now()
    clean_key = key.replace("-", "").replace(" ", "").upper()
    if (
        letter is None
        or letter.expires_at < now
        or not tokens_match(letter.key_hash, clean_key, _secret(uow))
        or patient is None
    ):
        uow.audit("link.letter_failed", actor_id=user.id, actor_role="patient", subject_user_id=user.id)
        uow.commit()
        raise InputError(WRONG_LETTER, "key")
    if _record_taken(uow, patient):
        raise InputError("This record is already linked to another account. Contact your GP practice", "key")
    letter.used_at = now
    letter.used_by_id = user.id
    # The identity check was recorded when the letter was issued; using the letter adds no new check.
    uow.session.add(
        AccountLink(
            user_id=user.id,
            patient_id=patient.id,
            method=VerificationMethod.LINKAGE_LETTER,
            remote_vouching_only=_letter_check_was_remote(uow, letter),
            linked_at=now,
        )
    )
    if not user.given_name:
        user.given_name, user.family_name = patient.given_name, patient.family_name
    uow.audit(
        "link.letter_used",
        actor_id=user.id,
        actor_role="patient",
        patient_id=patient.id,
        subject_user_id=user.id,
        practice_id=patient.practice_id,
    )
    linked = summary(patient)
    uow.commit()
    return linked


def _letter_check_was_remote(uow: AbstractUnitOfWork, letter: LinkageLetter) -> bool:
    """Whether the check the letter was issued on was vouching by phone or video (which caps the record)."""
    check = uow.session.scalar(
        select(Verification)
        .where(
            Verification.patient_id == letter.patient_id,
            Verification.staff_id == letter.issued_by_id,
            Verification.verified_at == letter.issued_at,
        )
        .order_by(Verification.id.desc())
        .limit(1)
    )
    return check is not None and remote_vouching_only(VerificationMethod(check.method), check.remote)


# Requests for reception ---------------------------------------------------------------------------
def _has_pending_request(uow: AbstractUnitOfWork, user: User) -> bool:
    return (
        uow.session.scalar(
            select(LinkRequest.id)
            .where(LinkRequest.user_id == user.id, LinkRequest.status == LinkRequestStatus.PENDING)
            .limit(1)
        )
        is not None
    )


def request_link(
    uow: AbstractUnitOfWork,
    user: User,
    ods: str,
    nhs_number: str,
    date_of_birth: dt.date,
    given_name: str,
    family_name: str,
    postcode: str,
) -> None:
    """Send the request to the practice, recording whether the details matched its clinical system.

    The patient is told the same thing, after the same work, whether the details match a patient, match
    nobody, or match someone else's NHS number: every request waits for reception, who see the outcome
    beside it. Answering "no match" at once would let anyone test an NHS number against a name, a date of
    birth and a postcode (enumeration). One request waits at a time, so guesses cannot be made in bulk.
    """
    number = normalise(nhs_number)
    if not is_valid(number):
        raise InputError("Enter a valid 10-digit NHS number", "nhs_number")
    if has_own_link(uow, user):
        raise InputError(ALREADY_LINKED, "nhs_number")
    practice = practice_by_ods(uow, ods)
    if practice is None:
        raise InputError("Choose your GP practice", "practice")
    if _has_pending_request(uow, user):
        raise InputError("You already have a request waiting for your GP practice", "nhs_number")
    practice_id = practice.id
    system = uow.clinical(practice)
    uow.release()
    person = system.find_patient(number)
    matched = person is not None and details_match(person, date_of_birth, family_name, postcode)

    uow.writing()
    if _has_pending_request(uow, user):
        raise InputError("You already have a request waiting for your GP practice", "nhs_number")
    request = LinkRequest(
        user_id=user.id,
        practice_id=practice_id,
        nhs_number=number,
        clinical_id=person.ref.clinical_id if person is not None and matched else "",
        given_name=given_name.strip(),
        family_name=family_name.strip(),
        date_of_birth=date_of_birth,
        postcode=postcode.strip().upper(),
        status=LinkRequestStatus.PENDING,
        matched=matched,
        created_at=uow.now(),
    )
    uow.session.add(request)
    uow.flush()
    uow.audit(
        "link.requested",
        actor_id=user.id,
        actor_role="patient",
        subject_user_id=user.id,
        practice_id=practice_id,
        request_id_=request.id,
        matched=matched,
    )
    uow.commit()
