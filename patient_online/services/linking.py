"""Link an account to the patient's record: linkage letter, request for reception, or NHS login P9."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from patient_online.crypto import random_key, token_hash, tokens_match
from patient_online.domain.errors import DomainError
from patient_online.domain.nhs_number import is_valid, normalise
from patient_online.domain.patients import Demographics
from patient_online.models import AccountLink, LinkageLetter, LinkRequest, Patient, Practice, User, Verification, utcnow

from . import audit
from .clinical import system_for

LETTER_LIFETIME = dt.timedelta(days=30)
KEY_LENGTH = 12


class LinkError(DomainError):
    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def practice_by_ods(session: Session, ods: str) -> Practice | None:
    return session.scalar(select(Practice).where(Practice.ods_code == (ods or "").strip().upper()))


def ensure_patient(session: Session, practice: Practice, person: Demographics) -> Patient:
    """The gateway's row for a practice patient, created from the clinical system's demographics."""
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
            online_account_id=new_account_id(session, practice),
        )
        session.add(patient)
    patient.flags = [{"code": f.code, "date": f.recorded_on.isoformat()} for f in person.flags]
    patient.flags_read_at = utcnow()
    session.flush()
    return patient


def new_account_id(session: Session, practice: Practice) -> str:
    while True:
        candidate = f"{practice.ods_code}{secrets.randbelow(10**6):06d}"
        if session.scalar(select(Patient.id).where(Patient.online_account_id == candidate)) is None:
            return candidate


def has_own_link(session: Session, user: User) -> bool:
    return session.scalar(select(AccountLink.id).where(AccountLink.user_id == user.id).limit(1)) is not None


# Linkage letters --------------------------------------------------------------------------------------
def issue_letter(session: Session, patient: Patient, staff: User, method: str = "documents") -> str:
    """A fresh Linkage Key for the patient; any earlier key stops working. Returns the key to print."""
    session.execute(
        update(LinkageLetter)
        .where(
            LinkageLetter.patient_id == patient.id, LinkageLetter.revoked_at.is_(None), LinkageLetter.used_at.is_(None)
        )
        .values(revoked_at=utcnow())
    )
    key = random_key(KEY_LENGTH)
    session.add(
        LinkageLetter(
            patient_id=patient.id,
            key_hash=token_hash(key),
            issued_by_id=staff.id,
            expires_at=utcnow() + LETTER_LIFETIME,
            verification_method=method,
        )
    )
    audit.record(
        session,
        "linkage_letter.issued",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=patient.id,
        practice_id=patient.practice_id,
    )
    session.commit()
    return "-".join(key[i : i + 4] for i in range(0, len(key), 4))


def link_with_letter(session: Session, user: User, ods: str, account_id: str, key: str) -> Patient:
    """A correct ODS code, Account ID and unexpired Linkage Key link and verify the account at once."""
    wrong = LinkError(
        "The details do not match a current linkage letter. Check the ODS code, Account ID and Linkage Key, "
        "or ask your GP practice for a new letter",
        "key",
    )
    if has_own_link(session, user):
        raise LinkError("Your account is already linked to your GP record", "key")
    practice = practice_by_ods(session, ods)
    patient = (
        session.scalar(
            select(Patient).where(
                Patient.practice_id == practice.id, func.upper(Patient.online_account_id) == account_id.strip().upper()
            )
        )
        if practice
        else None
    )
    letter = (
        session.scalar(
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
    clean_key = key.replace("-", "").replace(" ", "").upper()
    if (
        letter is None
        or letter.expires_at < utcnow()
        or not tokens_match(letter.key_hash, clean_key)
        or patient is None
    ):
        audit.record(session, "link.letter_failed", actor_id=user.id, actor_role="patient", subject_user_id=user.id)
        session.commit()
        raise wrong
    if session.scalar(select(AccountLink.id).where(AccountLink.patient_id == patient.id).limit(1)) is not None:
        raise LinkError("This record is already linked to another account. Contact your GP practice", "key")
    letter.used_at = utcnow()
    letter.used_by_id = user.id
    session.add(AccountLink(user_id=user.id, patient_id=patient.id, method="linkage_letter"))
    session.add(
        Verification(
            patient_id=patient.id,
            user_id=user.id,
            method=letter.verification_method,
            staff_id=letter.issued_by_id,
            notes="Linkage letter issued after identity check; used by the patient.",
        )
    )
    if not user.given_name:
        user.given_name, user.family_name = patient.given_name, patient.family_name
    audit.record(
        session,
        "link.letter_used",
        actor_id=user.id,
        actor_role="patient",
        patient_id=patient.id,
        subject_user_id=user.id,
        practice_id=patient.practice_id,
    )
    session.commit()
    return patient


# Requests for reception ---------------------------------------------------------------------------
def request_link(
    session: Session,
    user: User,
    ods: str,
    nhs_number: str,
    date_of_birth: dt.date,
    given_name: str,
    family_name: str,
    postcode: str,
) -> None:
    """Match the details against the practice's system; a match waits for reception, no match says so.

    The patient sees the same outcome page whether or not the person exists (no enumeration): only a
    match creates a pending request, and a non-match is recorded for the audit trail.
    """
    number = normalise(nhs_number)
    if not is_valid(number):
        raise LinkError("Enter a valid 10-digit NHS number", "nhs_number")
    if has_own_link(session, user):
        raise LinkError("Your account is already linked to your GP record", "nhs_number")
    practice = practice_by_ods(session, ods)
    if practice is None:
        raise LinkError("Choose your GP practice", "practice")
    pending = session.scalar(
        select(LinkRequest.id).where(LinkRequest.user_id == user.id, LinkRequest.status == "pending").limit(1)
    )
    if pending is not None:
        raise LinkError("You already have a request waiting for your GP practice", "nhs_number")
    person = system_for(practice).find_patient(number)
    matched = person is not None and _matches(person, date_of_birth, family_name, postcode)
    if not matched:
        audit.record(
            session,
            "link.request_unmatched",
            actor_id=user.id,
            actor_role="patient",
            subject_user_id=user.id,
            practice_id=practice.id,
        )
        session.commit()
        raise LinkError(
            "We could not match these details with a patient registered at this practice. Check them against a letter "
            "from your GP practice, or contact the practice",
            "nhs_number",
        )
    assert person is not None
    request = LinkRequest(
        user_id=user.id,
        practice_id=practice.id,
        nhs_number=number,
        clinical_id=person.ref.clinical_id,
        given_name=given_name.strip(),
        family_name=family_name.strip(),
        date_of_birth=date_of_birth,
        postcode=postcode.strip().upper(),
    )
    session.add(request)
    session.flush()
    audit.record(
        session,
        "link.requested",
        actor_id=user.id,
        actor_role="patient",
        subject_user_id=user.id,
        practice_id=practice.id,
        request_id_=request.id,
    )
    session.commit()


def _squash(text: str) -> str:
    return "".join(text.split()).upper()


def _matches(person: Demographics, born: dt.date, family_name: str, postcode: str) -> bool:
    return (
        person.date_of_birth == born
        and _squash(person.family_name) == _squash(family_name)
        and _squash(person.postcode) == _squash(postcode)
    )


def pending_request(session: Session, user: User) -> LinkRequest | None:
    return session.scalar(
        select(LinkRequest).where(LinkRequest.user_id == user.id).order_by(LinkRequest.id.desc()).limit(1)
    )
