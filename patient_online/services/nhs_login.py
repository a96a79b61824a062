"""Sign in with NHS login: find or create the account, and link a P9 identity to the GP record."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from patient_online.domain.accounts import AccountKind, SecondFactor
from patient_online.domain.errors import DomainError
from patient_online.domain.identity import (
    P9,
    AuthorizationRequest,
    Identity,
    IdentityProvider,
    IdentityRefused,
    LinkOutcome,
)
from patient_online.domain.nhs_number import is_valid
from patient_online.domain.patients import Demographics
from patient_online.models import AccountLink, Practice, User, Verification

from .accounts import find_by_email
from .linking import ensure_patient, practice_by_ods
from .unit_of_work import AbstractUnitOfWork


@dataclass(frozen=True)
class NHSLoginResult:
    """The account signed in (an ORM row: the web session is started with it) and what happened to its link."""

    user: User
    outcome: LinkOutcome
    proofing_level: str


def begin_sign_in(provider: IdentityProvider) -> AuthorizationRequest:
    """Where to send the browser to sign in with NHS login, and what to check when it comes back."""
    url, state, nonce = provider.authorization_url()
    return AuthorizationRequest(url, state, nonce)


def finish_sign_in(uow: AbstractUnitOfWork, provider: IdentityProvider, code: str, nonce: str) -> NHSLoginResult:
    """Redeem the provider's code for the person's checked identity, then sign them in; refusals are audited."""
    uow.release()  # no transaction open while NHS login answers
    try:
        identity = provider.redeem(code, nonce)
    except IdentityRefused as exc:
        refuse_sign_in(uow, exc.reason)
        raise
    return sign_in_with_nhs_login(uow, identity)


def refuse_sign_in(uow: AbstractUnitOfWork, reason: str) -> None:
    """Keep a trace of an NHS login answer the gateway did not trust (the reason is never personal)."""
    uow.audit("sign_in.failed", stage="nhs_login", reason=reason)
    uow.commit()


def sign_in_with_nhs_login(uow: AbstractUnitOfWork, identity: Identity) -> NHSLoginResult:
    """The account for this NHS login identity (created at first use), linked when the identity is P9."""
    uow.writing()
    user = _account_for(uow, identity)
    uow.audit(
        "sign_in",
        actor_id=user.id,
        actor_role="patient",
        subject_user_id=user.id,
        via="nhs_login",
        level=identity.proofing_level,
    )
    outcome, practice = _before_matching(uow, user, identity)
    uow.commit()
    if outcome is None and practice is not None:
        outcome = _match_and_link(uow, user, practice, identity)
    return NHSLoginResult(user, outcome or LinkOutcome.NOT_MATCHED, identity.proofing_level)


def _account_for(uow: AbstractUnitOfWork, identity: Identity) -> User:
    session = uow.session
    user = session.scalar(select(User).where(User.nhs_login_sub == identity.sub))
    if user is None and identity.email and identity.email_verified:
        existing = find_by_email(uow, identity.email)
        if existing is not None and existing.kind == AccountKind.PATIENT and existing.nhs_login_sub is None:
            user = existing
    if user is None:
        email = identity.email or f"{identity.sub}@nhs-login.invalid"
        if find_by_email(uow, email) is not None:
            email = f"{identity.sub}@nhs-login.invalid"
        user = User(kind=AccountKind.PATIENT.value, email=email.lower(), second_factor=SecondFactor.NHS_LOGIN.value)
        session.add(user)
    now = uow.now()
    user.nhs_login_sub = identity.sub
    user.identity_proofing_level = identity.proofing_level
    user.given_name = user.given_name or identity.given_name
    user.family_name = user.family_name or identity.family_name
    if identity.email_verified and user.email_confirmed_at is None:
        user.email_confirmed_at = now
    user.last_sign_in_at = now
    uow.flush()
    return user


def _has_link(uow: AbstractUnitOfWork, user_id: int) -> bool:
    return uow.session.scalar(select(AccountLink.id).where(AccountLink.user_id == user_id).limit(1)) is not None


def _before_matching(
    uow: AbstractUnitOfWork, user: User, identity: Identity
) -> tuple[LinkOutcome | None, Practice | None]:
    """The outcome when it is decided without asking the practice; else the practice to ask."""
    if _has_link(uow, user.id):
        return LinkOutcome.ALREADY_LINKED, None
    if identity.proofing_level != P9:
        return LinkOutcome.NEEDS_P9, None
    practice = practice_by_ods(uow, identity.gp_ods_code)
    if practice is None:
        return LinkOutcome.PRACTICE_NOT_ON_GATEWAY, None
    if not is_valid(identity.nhs_number):
        return LinkOutcome.NOT_MATCHED, None
    return None, practice


def _match_and_link(uow: AbstractUnitOfWork, user: User, practice: Practice, identity: Identity) -> LinkOutcome:
    """Ask the practice's clinical system for the person (no transaction open), then link when they match."""
    system = uow.clinical(practice)
    try:
        person: Demographics | None = system.find_patient(identity.nhs_number)
    except DomainError:
        return LinkOutcome.NOT_MATCHED
    uow.writing()
    if _has_link(uow, user.id):
        uow.commit()
        return LinkOutcome.ALREADY_LINKED
    if person is None or person.date_of_birth != _date(identity.birthdate):
        uow.audit(
            "link.nhs_login_unmatched",
            actor_id=user.id,
            actor_role="patient",
            subject_user_id=user.id,
            practice_id=practice.id,
        )
        uow.commit()
        return LinkOutcome.NOT_MATCHED
    patient = ensure_patient(uow, practice, person)
    if uow.session.scalar(select(AccountLink.id).where(AccountLink.patient_id == patient.id).limit(1)) is not None:
        uow.commit()
        return LinkOutcome.NOT_MATCHED
    uow.session.add(AccountLink(user_id=user.id, patient_id=patient.id, method="nhs_login"))
    uow.session.add(
        Verification(
            patient_id=patient.id, user_id=user.id, method="nhs_login", notes="NHS login identity proofing level P9"
        )
    )
    uow.audit(
        "link.nhs_login",
        actor_id=user.id,
        actor_role="patient",
        patient_id=patient.id,
        subject_user_id=user.id,
        practice_id=practice.id,
    )
    uow.commit()
    return LinkOutcome.LINKED


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None
