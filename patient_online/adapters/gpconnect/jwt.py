"""The unsigned JWT GP Connect consumers send as a bearer token (alg "none", claims as the spec lists)."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

from .constants import JWT_LIFETIME_SECONDS, ODS_SYSTEM, SDS_ROLE_PROFILE_SYSTEM, SDS_USER_SYSTEM

REQUIRED_CLAIMS = (
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "reason_for_request",
    "requested_scope",
    "requesting_device",
    "requesting_organization",
    "requesting_practitioner",
)


# Values that identify nobody: GP Connect's audit rules forbid default user names, so none of these may be sent.
PLACEHOLDERS = frozenset({"", "UNK", "UNKNOWN", "0", "000000000000", "patient-online-gateway"})


@dataclass(frozen=True)
class Requester:
    """Who the gateway says it is in every token: the consumer system (issuer and device), its organisation and
    the user on whose behalf it asks (SDS user id and role profile id, local id, name).

    The defaults are development stand-ins (never "UNK"); a production deployment must set its own values
    (``GPCONNECT_*`` settings, read where the adapter is built)."""

    issuer: str = "https://patient-online.invalid"
    consumer_ods: str = "X99999"
    organisation_name: str = "Patient Online gateway (development)"
    practitioner_id: str = "po-dev-user-1"
    sds_user_id: str = "G13579135"
    sds_role_profile_id: str = "PT1234"
    practitioner_family: str = "Gateway"
    practitioner_given: str = "Development"
    user_system: str = "https://patient-online.invalid/Id/user"
    device_system: str = "https://patient-online.invalid/Id/device"
    device_id: str = "patient-online-gateway"
    device_model: str = "Patient Online gateway"
    version: str = "0.1.0"

    def problems(self) -> list[str]:
        """What makes this requester unfit to be named in a token (empty or placeholder values)."""
        found = []
        for name in (
            "issuer",
            "consumer_ods",
            "organisation_name",
            "practitioner_id",
            "sds_user_id",
            "sds_role_profile_id",
            "practitioner_family",
            "practitioner_given",
            "user_system",
            "device_system",
            "device_id",
            "device_model",
            "version",
        ):
            if str(getattr(self, name)).strip().upper() in PLACEHOLDERS:
                found.append(name)
        return found


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims_for(requester: Requester, audience: str, scope: str, now: float | None = None) -> dict[str, Any]:
    """The claim set GP Connect requires, valid for five minutes from ``now``; ``audience`` is the provider's
    service root URL (without the Spine Secure Proxy's prefix when sent through it)."""
    iat = int(now if now is not None else time.time())
    return {
        "iss": requester.issuer,
        "sub": requester.practitioner_id,
        "aud": audience,
        "exp": iat + JWT_LIFETIME_SECONDS,
        "iat": iat,
        "reason_for_request": "directcare",
        "requested_scope": scope,
        "requesting_device": {
            "resourceType": "Device",
            "identifier": [{"system": requester.device_system, "value": requester.device_id}],
            "model": requester.device_model,
            "version": requester.version,
        },
        "requesting_organization": {
            "resourceType": "Organization",
            "identifier": [{"system": ODS_SYSTEM, "value": requester.consumer_ods}],
            "name": requester.organisation_name,
        },
        "requesting_practitioner": {
            "resourceType": "Practitioner",
            "id": requester.practitioner_id,
            "identifier": [
                {"system": SDS_USER_SYSTEM, "value": requester.sds_user_id},
                {"system": SDS_ROLE_PROFILE_SYSTEM, "value": requester.sds_role_profile_id},
                {"system": requester.user_system, "value": requester.practitioner_id},
            ],
            "name": [{"family": requester.practitioner_family, "given": [requester.practitioner_given]}],
        },
    }


def encode_unsigned(claims: dict[str, Any]) -> str:
    """Serialise claims as an unsecured JWT (header alg none, empty signature), as GP Connect asks."""
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def build_token(requester: Requester, audience: str, scope: str, now: float | None = None) -> str:
    """A fresh bearer token for one request."""
    return encode_unsigned(claims_for(requester, audience, scope, now))


class InvalidToken(ValueError):
    """The bearer token is not a well-formed GP Connect JWT."""


def _unb64(part: str) -> dict[str, Any]:
    padded = part + "=" * (-len(part) % 4)
    try:
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidToken("token part is not base64url JSON") from exc
    if not isinstance(value, dict):
        raise InvalidToken("token part is not a JSON object")
    return value


def decode_unsigned(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of an unsigned JWT; raises InvalidToken when it is malformed."""
    parts = token.split(".")
    if len(parts) != 3 or parts[2] != "":
        raise InvalidToken("expected header.payload. with an empty signature")
    return _unb64(parts[0]), _unb64(parts[1])


def check_claims(claims: dict[str, Any], now: float | None = None) -> list[str]:
    """Every problem with a claim set, empty when it is acceptable."""
    problems = [f"missing claim {name}" for name in REQUIRED_CLAIMS if name not in claims]
    if problems:
        return problems
    current = now if now is not None else time.time()
    iat, exp = claims["iat"], claims["exp"]
    if not isinstance(iat, int) or not isinstance(exp, int):
        problems.append("iat and exp must be integers")
    else:
        if exp - iat != JWT_LIFETIME_SECONDS:
            problems.append("exp must be iat + 300")
        if exp < current:
            problems.append("token expired")
        if iat > current + 60:
            problems.append("iat in the future")
    if claims["reason_for_request"] != "directcare":
        problems.append("reason_for_request must be directcare")
    for name, kind in (
        ("requesting_device", "Device"),
        ("requesting_organization", "Organization"),
        ("requesting_practitioner", "Practitioner"),
    ):
        value = claims[name]
        if not isinstance(value, dict) or value.get("resourceType") != kind:
            problems.append(f"{name} must be a {kind} resource")
    practitioner = claims["requesting_practitioner"]
    if isinstance(practitioner, dict) and practitioner.get("id") != claims["sub"]:
        problems.append("sub must equal requesting_practitioner.id")
    return problems
