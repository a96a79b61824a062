"""Sign in with NHS login: find or create the account, and link a P9 identity to the GP record."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from patient_online.auth.oidc import Identity
from patient_online.domain.errors import DomainError
from patient_online.domain.nhs_number import is_valid
from patient_online.models import AccountLink, User, Verification, utcnow

from . import audit
from .accounts import find_by_email
from .clinical import system_for
from .linking import ensure_patient, practice_by_ods


class LinkOutcome(enum.StrEnum):
    LINKED = "linked"  # P9, matched: linked and verified now
    ALREADY_LINKED = "already_linked"
    NEEDS_P9 = "needs_p9"  # P5 or lower: explain how to prove identity
    PRACTICE_NOT_ON_GATEWAY = "practice_not_on_gateway"
    NOT_MATCHED = "not_matched"


@dataclass(frozen=True)
class NHSLoginResult:
    user: User
    outcome: LinkOutcome


def sign_in_with_nhs_login(session: Session, identity: Identity) -> NHSLoginResult:
    """The account for this NHS login identity (created at first use), linked when the identity is P9."""
    user = session.scalar(select(User).where(User.nhs_login_sub == identity.sub))
    if user is None and identity.email and identity.email_verified:
        existing = find_by_email(session, identity.email)
        if existing is not None and existing.kind == "patient" and existing.nhs_login_sub is None:
            user = existing
    if user is None:
        email = identity.email or f"{identity.sub}@nhs-login.invalid"
        if find_by_email(session, email) is not None:
            email = f"{identity.sub}@nhs-login.invalid"
        user = User(kind="patient", email=email.lower(), second_factor="nhs_login")
        session.add(user)
    user.nhs_login_sub = identity.sub
    user.identity_proofing_level = identity.proofing_level
    user.given_name = user.given_name or identity.given_name
    user.family_name = user.family_name or identity.family_name
    if identity.email_verified and user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
    user.last_sign_in_at = utcnow()
    session.flush()
    audit.record(
        session,
        "sign_in",
        actor_id=user.id,
        actor_role="patient",
        subject_user_id=user.id,
        via="nhs_login",
        level=identity.proofing_level,
    )
    outcome = _link(session, user, identity)
    session.commit()
    return NHSLoginResult(user, outcome)


def _link(session: Session, user: User, identity: Identity) -> LinkOutcome:
    if session.scalar(select(AccountLink.id).where(AccountLink.user_id == user.id).limit(1)) is not None:
        return LinkOutcome.ALREADY_LINKED
    if identity.proofing_level != "P9":
        return LinkOutcome.NEEDS_P9
    practice = practice_by_ods(session, identity.gp_ods_code)
    if practice is None:
        return LinkOutcome.PRACTICE_NOT_ON_GATEWAY
    if not is_valid(identity.nhs_number):
        return LinkOutcome.NOT_MATCHED
    try:
        person = system_for(practice).find_patient(identity.nhs_number)
    except DomainError:
        return LinkOutcome.NOT_MATCHED
    if person is None or person.date_of_birth != _date(identity.birthdate):
        audit.record(
            session,
            "link.nhs_login_unmatched",
            actor_id=user.id,
            actor_role="patient",
            subject_user_id=user.id,
            practice_id=practice.id,
        )
        return LinkOutcome.NOT_MATCHED
    patient = ensure_patient(session, practice, person)
    if session.scalar(select(AccountLink.id).where(AccountLink.patient_id == patient.id).limit(1)) is not None:
        return LinkOutcome.NOT_MATCHED
    session.add(AccountLink(user_id=user.id, patient_id=patient.id, method="nhs_login"))
    session.add(
        Verification(
            patient_id=patient.id, user_id=user.id, method="nhs_login", notes="NHS login identity proofing level P9"
        )
    )
    audit.record(
        session,
        "link.nhs_login",
        actor_id=user.id,
        actor_role="patient",
        patient_id=patient.id,
        subject_user_id=user.id,
        practice_id=practice.id,
    )
    return LinkOutcome.LINKED


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None
