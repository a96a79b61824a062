"""Test helpers: a client that submits forms with their CSRF token, and demo sign-in."""

from __future__ import annotations

import datetime
import re
import time
import weakref
from functools import lru_cache
from typing import Any

import pyotp

from patient_online.adapters.demo.seed import DEMO_PASSWORD, _totp_secret

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class FormClient:
    """Wraps Flask's test client; ``submit`` reads the CSRF token from the page first, as a browser would."""

    def __init__(self, client: Any) -> None:
        self.raw = client

    def get(self, url: str, **kw: Any) -> Any:
        return self.raw.get(url, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.raw.post(url, **kw)

    def csrf_token(self, page_url: str) -> str:
        page = self.raw.get(page_url)
        found = CSRF_RE.search(page.get_data(as_text=True))
        assert found, f"no CSRF token on {page_url} (status {page.status_code})"
        return found.group(1)

    def submit(self, url: str, data: dict[str, Any] | None = None, page: str | None = None, **kw: Any) -> Any:
        """POST ``data`` to ``url`` with the CSRF token from ``page`` (default: the same URL)."""
        token = self.csrf_token(page or url)
        return self.raw.post(url, data={**(data or {}), "csrf_token": token}, **kw)


@lru_cache(maxsize=1)
def _accounts() -> tuple[dict[str, Any], ...]:
    from patient_online.adapters.demo import seed as seed_module

    return tuple(
        {"email": email, "password": DEMO_PASSWORD, "totp_secret": _totp_secret(email)}
        for email in _demo_emails(seed_module)
    )


def _demo_emails(seed_module: Any) -> list[str]:
    emails = ["admin@example.com"]
    for spec in seed_module.PRACTICES:
        tag = spec.ods.lower()
        emails += [
            f"{p}.{tag}@example.com" for p in ("patient", "patient2", "parent", "newpatient", "reception", "manager")
        ]
    return emails


def demo_accounts() -> list[dict[str, Any]]:
    return [dict(a) for a in _accounts()]


# The time step of the last code handed out per account, per app (integration tests roll the database back with
# each test's app) or for the whole run (the browser and multi-process tests share one server's database).
_STEPS_BY_APP: weakref.WeakKeyDictionary[Any, dict[str, int]] = weakref.WeakKeyDictionary()
_STEPS: dict[str, int] = {}


def totp_now(email: str, app: Any = None) -> str:
    """An authenticator code for the demo account that has not been used yet: the gateway accepts each time
    step's code once, so signing the same account in again within 30 seconds takes the next step's code
    (accepted a step early), or waits for one."""
    used = _STEPS if app is None else _STEPS_BY_APP.setdefault(app, {})
    totp = pyotp.TOTP(_totp_secret(email))
    while True:
        now = totp.timecode(datetime.datetime.now(datetime.UTC))
        step = max(now, used.get(email, now - 1) + 1)
        if step <= now + 1:
            used[email] = step
            return totp.generate_otp(step)
        time.sleep(1)


def sign_in(client: FormClient, email: str, password: str = DEMO_PASSWORD) -> Any:
    """Password then TOTP, exactly as a person does; returns the final response."""
    first = client.submit("/login", {"email": email, "password": password})
    assert first.status_code == 302, f"password step failed for {email}: {first.status_code}"
    second = client.submit("/login/code", {"code": totp_now(email, client.raw.application)})
    assert second.status_code == 302, f"code step failed for {email}: {second.status_code}"
    return second
