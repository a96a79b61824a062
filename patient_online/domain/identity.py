"""Who NHS login says a person is, the port the gateway asks it through, and what signing in with it led to."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

P9 = "P9"


class IdentityRefused(Exception):
    """The identity provider's answer could not be trusted; ``reason`` is for logs and audit, never personal."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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


class LinkOutcome(enum.StrEnum):
    """What signing in with NHS login did about the account's link to a GP record."""

    LINKED = "linked"  # P9, matched: linked and verified now
    ALREADY_LINKED = "already_linked"
    NEEDS_P9 = "needs_p9"  # P5 or lower: explain how to prove identity
    PRACTICE_NOT_ON_GATEWAY = "practice_not_on_gateway"
    NOT_MATCHED = "not_matched"
