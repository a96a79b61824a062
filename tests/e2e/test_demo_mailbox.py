"""Someone trying the demo registers and finds their security codes in the demo mailbox, not in a database
table: the whole sign-up in a real browser, reading the codes where a person would."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import screenshot

pytestmark = pytest.mark.browser

EMAIL = "mo.mailbox@example.com"
PASSWORD = "amber-lantern-drift-73"


def code_from_mailbox(mailbox: Any, subject: str) -> str:
    """The newest message's security code, as a person reads it on the mailbox page."""
    mailbox.goto("/demo-system/messages")
    first = mailbox.locator("li.nhsuk-card").first
    assert EMAIL in first.inner_text() and subject in first.inner_text()
    shown = first.locator(".app-code").inner_text()
    assert re.fullmatch(r"\d{3} \d{3}", shown), shown  # easy to read: two groups of three
    return shown.replace(" ", "")


def test_register_reading_the_codes_in_the_demo_mailbox(browser: Any, live_server: str) -> None:
    patient = browser.new_context(base_url=live_server, viewport={"width": 390, "height": 844}).new_page()
    mailbox = browser.new_context(base_url=live_server, viewport={"width": 360, "height": 740}).new_page()

    patient.goto("/register")
    patient.fill("input[name=email]", EMAIL)
    patient.fill("input[name=password]", PASSWORD)
    patient.click("button:has-text('Create account')")
    patient.fill("input[name=code]", code_from_mailbox(mailbox, "Confirm"))
    screenshot(mailbox, "demo-mailbox")
    width = mailbox.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, "the mailbox scrolls sideways on a small phone"
    patient.click("button:has-text('Confirm email address')")
    patient.click("button:has-text('Send me codes by email')")
    patient.fill("input[name=code]", code_from_mailbox(mailbox, "code"))
    patient.click("button:has-text('Continue')")
    assert patient.locator("a:has-text('Link your account to your GP record')").is_visible()
    assert mailbox.locator("h1").inner_text() == "Demo mailbox"
