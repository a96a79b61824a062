"""Who NHS login says a person is, the port the gateway asks it through, and what signing in with it led to."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Protocol

P9 = "P9"


class IdentityRefused(Exception):
    """The identity provider's answer could not be trusted; ``reason`` is for logs and audit, never personal."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IdentityProviderUnavailable(Exception):
    """NHS login could not be reached or did not answer properly (refused connection, timeout, an error status,
    a failed token request): the person can try again later or sign in with their password. ``reason`` is for
    logs and audit, never personal."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NHSLoginBelongsElsewhere(IdentityRefused):
    """The GP record this P9 identity matches is on an account already bound to a different NHS login: the
    gateway neither takes that account over nor makes a second one for the same record."""


@dataclass(frozen=True)
class Identity:
    """The checked claims of one NHS login user."""

    sub: str
    proofing_level: str
    nhs_number: str
    birthdate: str
    family_name: str
    given_name: str
    email: str
    email_verified: bool
    gp_ods_code: str


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, with the state and nonce to keep until it comes back."""

    url: str
    state: str
    nonce: str


class IdentityProvider(Protocol):
    """NHS login, as the sign-in use cases see it (an OpenID Connect client in the app)."""

    def authorization_url(self) -> tuple[str, str, str]: ...

    def redeem(self, code: str, nonce: str) -> Identity: ...


class AccountMatch(enum.StrEnum):
    """How signing in with NHS login found the gateway account. Never by email: an email address proves nothing
    about whose GP record an account holds, and NHS login below P9 has not checked who the person is."""

    BY_SUB = "by_sub"  # this NHS login was bound to the account before
    BY_RECORD = "by_record"  # P9, with the NHS number and birth date of the account's linked record: bound now
    NEW = "new"  # a new account, with the email NHS login confirmed
    NEW_EMAIL_IN_USE = "new_email_in_use"  # a new, separate account: another account already has that email


def may_bind_by_record(identity: Identity, nhs_number: str, date_of_birth: dt.date) -> bool:
    """Whether this identity is the person of a linked GP record, so it may be bound to that record's account.

    Only a P9 identity (photo ID checked by NHS login) counts, and only when both its NHS number and its
    birth date equal the record's: one matching detail is not enough.
    """
    return (
        identity.proofing_level == P9
        and bool(identity.nhs_number)
        and identity.nhs_number == nhs_number
        and _iso_date(identity.birthdate) == date_of_birth
    )


def _iso_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


class LinkOutcome(enum.StrEnum):
    """What signing in with NHS login did about the account's link to a GP record."""

    LINKED = "linked"  # P9, matched: linked and verified now
    ALREADY_LINKED = "already_linked"
    NEEDS_P9 = "needs_p9"  # P5 or lower: explain how to prove identity
    PRACTICE_NOT_ON_GATEWAY = "practice_not_on_gateway"
    NOT_MATCHED = "not_matched"
