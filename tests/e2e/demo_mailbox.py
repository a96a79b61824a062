"""The demo mailbox (/demo-system/messages) read as a person trying the demo reads it, and signing up with the
codes found there: shared by the browser journeys that start with a new account."""

from __future__ import annotations

import re
from typing import Any


def newest_message(mailbox: Any, to: str, subject: str) -> Any:
    """The newest message on the mailbox page, which must be to ``to`` and about ``subject``."""
    mailbox.goto("/demo-system/messages")
    first = mailbox.locator("li.nhsuk-card").first
    text = first.inner_text()
    assert to in text and subject in text, f"the newest message is not to {to} about {subject!r}: {text[:300]}"
    return first


def code_from_mailbox(mailbox: Any, to: str, subject: str) -> str:
    """The newest message's security code, as a person reads it on the mailbox page."""
    shown = newest_message(mailbox, to, subject).locator(".app-code").inner_text()
    assert re.fullmatch(r"\d{3} \d{3}", shown), shown  # easy to read: two groups of three
    return str(shown).replace(" ", "")


def register_with_the_mailbox(patient: Any, mailbox: Any, email: str, password: str) -> None:
    """Create an account and set it up with security codes by email, reading each code in the demo mailbox;
    ends on the new account's home page."""
    patient.goto("/register")
    patient.fill("input[name=email]", email)
    patient.fill("input[name=password]", password)
    patient.click("button:has-text('Create account')")
    patient.fill("input[name=code]", code_from_mailbox(mailbox, email, "Confirm"))
    patient.click("button:has-text('Confirm email address')")
    patient.click("button:has-text('Send me codes by email')")
    patient.fill("input[name=code]", code_from_mailbox(mailbox, email, "code"))
    patient.click("button:has-text('Continue')")
