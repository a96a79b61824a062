"""How hard sign-in attempts are limited, so that guessing is slow but nobody can lock an owner out.

Three layers, none of which a stranger can turn against an account's owner:

- per address (``RATELIMIT_SIGN_IN``, ``RATELIMIT_CODE``): one address cannot try many accounts. Addresses
  in ``TRUSTED_NETWORKS`` (a practice's front desk, a care home: many people behind one address) get the
  higher ``..._TRUSTED`` limits;
- per address and account (``RATELIMIT_SIGN_IN_ACCOUNT``, stacked limits such as "3 per minute; 6 per 10
  minutes; 10 per hour"): the wait grows with each failure, but only for that address;
- per account, from anywhere (``SIGN_IN_GUARD_AFTER`` failures): no lock. The account is *guarded* instead:
  the password step stops saying whether the password was right, and only the right password with the right
  security code signs in. A guesser learns nothing; the owner, with both, always gets in. A successful
  sign-in or password reset ends the guard.

The counts live in the rate limiter's storage (Redis when configured, shared by every node).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from flask import current_app, g, request
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse
from werkzeug.wrappers import Response

from patient_online.crypto import token_hash
from patient_online.extensions import limiter

GUARD = "sign-in-guard"


@lru_cache(maxsize=32)
def _networks(setting: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in setting.split(",") if part.strip())


def trusted_address() -> bool:
    """True when the request comes from a network listed in ``TRUSTED_NETWORKS`` (comma-separated CIDRs)."""
    setting = current_app.config.get("TRUSTED_NETWORKS", "")
    if isinstance(setting, list | tuple):
        setting = ",".join(setting)
    try:
        address = ipaddress.ip_address(get_remote_address())
    except ValueError:
        return False
    return any(address in network for network in _networks(str(setting)))


def address_limit(setting: str) -> str:
    """The limit per address: ``setting``, or ``setting + "_TRUSTED"`` for a trusted shared address."""
    if trusted_address():
        return str(current_app.config.get(setting + "_TRUSTED", current_app.config[setting]))
    return str(current_app.config[setting])


def _account(email: str) -> str:
    # Keyed hash: the limiter's storage never holds an email address.
    return token_hash(email.strip().lower())


def account_address_key() -> str:
    """The limiter key for one account (the email typed) from one address."""
    return f"account:{_account(request.form.get('email', ''))}:{get_remote_address()}"


def link_actor_key() -> str:
    """The limiter key for linking attempts by one signed-in person: a staff member's own account when staff act
    (never the address they share with the whole front desk), else the patient's account."""
    user = g.get("user")
    if user is None:
        return f"link-address:{get_remote_address()}"
    return f"link-staff:{user.id}" if getattr(user, "kind", "") == "staff" else f"link:{user.id}"


def link_target_key() -> str:
    """The limiter key for attempts on one record from one address: the NHS number asked for (a request) or the
    letter's practice and Account ID, hashed, so that people behind a shared address (a front desk, a care home)
    each have their own count, while one record tried again and again from one address is slowed down."""
    form = request.form
    if "request-nhs_number" in form:
        target = "nhs:" + "".join(ch for ch in form.get("request-nhs_number", "") if ch.isdigit())
    else:
        ods = form.get("letter-ods_code", "").strip().upper()
        target = f"letter:{ods}:{form.get('letter-account_id', '').strip().upper()}"
    return f"link-target:{token_hash(target)}:{get_remote_address()}"


def failed(response: Response) -> bool:
    """Whether an attempt counts against the limits: a page shown again (a refusal), or an attempt the view
    marked (a guarded attempt answers the same, right or wrong, so each one counts)."""
    return response.status_code == 200 or bool(g.get("attempt_counts"))


def count_attempt() -> None:
    g.attempt_counts = True


def _guard_item() -> RateLimitItem:
    return parse(str(current_app.config["SIGN_IN_GUARD_AFTER"]))


def _guard_key() -> str:
    return str(current_app.config.get("RATELIMIT_KEY_PREFIX", ""))


def guarded(email: str) -> bool:
    """True when the account (any address typed, with or without an account) has had too many failures lately."""
    if not limiter.enabled or not email:
        return False
    return not limiter.limiter.test(_guard_item(), _guard_key(), GUARD, _account(email))


def note_failure(email: str) -> None:
    if limiter.enabled and email:
        limiter.limiter.hit(_guard_item(), _guard_key(), GUARD, _account(email))


def clear(email: str) -> None:
    """The owner proved who they are (signed in, or reset the password): the guard ends."""
    if limiter.enabled and email:
        limiter.limiter.clear(_guard_item(), _guard_key(), GUARD, _account(email))
