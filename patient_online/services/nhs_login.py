"""Sign in with NHS login: find or create the account, and link a P9 identity to the GP record.

An NHS login is bound to an existing account only by what NHS login has proved: its own subject stored on the
account before, or a P9 identity whose NHS number and birth date are those of the account's linked record.
Never by email address: NHS login below P9 has not checked who the person is, and an email address says
nothing about whose GP record an account holds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from patient_online.domain.accounts import AccountKind, SecondFactor
from patient_online.domain.errors import DomainError
from patient_online.domain.identity import (
    P9,
    AccountMatch,
    AuthorizationRequest,
    Identity,
    IdentityProvider,
    IdentityProviderUnavailable,
    IdentityRefused,
    LinkOutcome,
    NHSLoginBelongsElsewhere,
    may_bind_by_record,
)
from patient_online.domain.nhs_number import is_valid
from patient_online.domain.patients import Demographics
from patient_online.models import AccountLink, Patient, Practice, User, Verification

from .accounts import find_by_email, normalise_email
from .linking import ensure_patient, practice_by_ods
from .unit_of_work import AbstractUnitOfWork


@dataclass(frozen=True)
class NHSLoginResult:
    """The account signed in (an ORM row: the web session is started with it) and what happened to its link."""

    user: User
    outcome: LinkOutcome
    proofing_level: str
    match: AccountMatch = AccountMatch.BY_SUB

    @property
    def separate_account(self) -> bool:
        """A new account was made although another account has this NHS login's email: say so plainly."""
        return self.match is AccountMatch.NEW_EMAIL_IN_USE


def begin_sign_in(provider: IdentityProvider) -> AuthorizationRequest:
    """Where to send the browser to sign in with NHS login, and what to check when it comes back."""
    url, state, nonce = provider.authorization_url()
    return AuthorizationRequest(url, state, nonce)


def finish_sign_in(uow: AbstractUnitOfWork, provider: IdentityProvider, code: str, nonce: str) -> NHSLoginResult:
    """Redeem the provider's code for the person's checked identity, then sign them in; refusals are audited."""
    uow.release()  # no transaction open while NHS login answers
    try:
        identity = provider.redeem(code, nonce)
    except (IdentityRefused, IdentityProviderUnavailable) as exc:
        refuse_sign_in(uow, exc.reason)
        raise
    return sign_in_with_nhs_login(uow, identity)


def refuse_sign_in(uow: AbstractUnitOfWork, reason: str) -> None:
    """Keep a trace of an NHS login answer the gateway did not trust (the reason is never personal)."""
    uow.audit("sign_in.failed", stage="nhs_login", reason=reason)
    uow.commit()


def sign_in_with_nhs_login(uow: AbstractUnitOfWork, identity: Identity) -> NHSLoginResult:
    """The account for this NHS login identity (found by its subject, by its P9-proved GP record, or made new),
    linked to the person's GP record when the identity is P9. Never found by email address."""
    uow.writing()
    user, match = _account_for(uow, identity)
    uow.audit(
        "sign_in",
        actor_id=user.id,
        actor_role="patient",
        subject_user_id=user.id,
        via="nhs_login",
        level=identity.proofing_level,
        account=match.value,
    )
    outcome, practice = _before_matching(uow, user, identity)
    uow.commit()
    if outcome is None and practice is not None:
        outcome = _match_and_link(uow, user, practice, identity)
    return NHSLoginResult(user, outcome or LinkOutcome.NOT_MATCHED, identity.proofing_level, match)


def _account_for(uow: AbstractUnitOfWork, identity: Identity) -> tuple[User, AccountMatch]:
    """Bind only what NHS login has proved: its own subject, or a P9 person's own GP record; else a new account."""
    user = uow.session.scalar(select(User).where(User.nhs_login_sub == identity.sub))
    match = AccountMatch.BY_SUB
    if user is None:
        user = _record_owner(uow, identity)
        match = AccountMatch.BY_RECORD
    if user is None:
        user, match = _new_account(uow, identity)
    elif match is AccountMatch.BY_RECORD:
        _bind(uow, user, identity)
    now = uow.now()
    user.identity_proofing_level = identity.proofing_level
    user.given_name = user.given_name or identity.given_name
    user.family_name = user.family_name or identity.family_name
    if identity.email_verified and user.email_confirmed_at is None and _same_email(user.email, identity.email):
        user.email_confirmed_at = now
    user.last_sign_in_at = now
    uow.flush()
    return user, match


def _record_owner(uow: AbstractUnitOfWork, identity: Identity) -> User | None:
    """The one patient account linked to the GP record this P9 identity proves to be the person's own.

    The record is looked up at the practice NHS login names; the NHS number and the birth date must both match
    (``may_bind_by_record``). Two accounts on one record is a muddle for the practice to sort out, not a guess.
    """
    if identity.proofing_level != P9 or not is_valid(identity.nhs_number):
        return None
    practice = practice_by_ods(uow, identity.gp_ods_code)
    if practice is None:
        return None
    rows = uow.session.execute(
        select(User, Patient)
        .join(AccountLink, AccountLink.user_id == User.id)
        .join(Patient, Patient.id == AccountLink.patient_id)
        .where(
            Patient.practice_id == practice.id,
            Patient.nhs_number == identity.nhs_number,
            User.kind == AccountKind.PATIENT.value,
        )
    ).all()
    owners = {
        user.id: user for user, record in rows if may_bind_by_record(identity, record.nhs_number, record.date_of_birth)
    }
    return next(iter(owners.values())) if len(owners) == 1 else None


def _bind(uow: AbstractUnitOfWork, user: User, identity: Identity) -> None:
    """Keep this NHS login's subject on the record owner's account; refuse when another NHS login holds it."""
    if user.nhs_login_sub is not None and user.nhs_login_sub != identity.sub:
        uow.audit(
            "sign_in.failed",
            stage="nhs_login",
            reason="record bound to another NHS login",
            subject_user_id=user.id,
        )
        uow.commit()
        raise NHSLoginBelongsElsewhere("record bound to another NHS login")
    user.nhs_login_sub = identity.sub
    uow.audit("nhs_login.bound", actor_id=user.id, actor_role="patient", subject_user_id=user.id, level=P9)


def _new_account(uow: AbstractUnitOfWork, identity: Identity) -> tuple[User, AccountMatch]:
    """A new account of this NHS login alone, with the email NHS login confirmed when no account has it yet.

    When another account already has that email, the new one gets an address of its own that can never be
    delivered (``<sub>@nhs-login.invalid``): the email column stays unique, the other account is untouched,
    and no code or link for it is ever sent here.
    """
    wanted = normalise_email(identity.email) if identity.email_verified else ""
    email, match = wanted, AccountMatch.NEW
    if wanted and find_by_email(uow, wanted) is not None:
        match = AccountMatch.NEW_EMAIL_IN_USE
    if not wanted or match is AccountMatch.NEW_EMAIL_IN_USE:
        email = f"{identity.sub}@nhs-login.invalid"
    user = User(
        kind=AccountKind.PATIENT.value,
        email=email,
        second_factor=SecondFactor.NHS_LOGIN.value,
        nhs_login_sub=identity.sub,
    )
    uow.session.add(user)
    uow.flush()
    return user, match


def _same_email(ours: str, theirs: str) -> bool:
    return bool(theirs) and normalise_email(ours) == normalise_email(theirs)


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
