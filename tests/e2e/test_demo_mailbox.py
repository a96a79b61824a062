"""Someone trying the demo registers and finds their security codes in the demo mailbox, not in a database
table: the whole sign-up in a real browser, reading the codes where a person would."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import screenshot
from .demo_mailbox import register_with_the_mailbox

pytestmark = pytest.mark.browser

EMAIL = "mo.mailbox@example.com"
PASSWORD = "amber-lantern-drift-73"


def test_register_reading_the_codes_in_the_demo_mailbox(browser: Any, live_server: str) -> None:
    patient = browser.new_context(base_url=live_server, viewport={"width": 390, "height": 844}).new_page()
    mailbox = browser.new_context(base_url=live_server, viewport={"width": 360, "height": 740}).new_page()

    register_with_the_mailbox(patient, mailbox, EMAIL, PASSWORD)
    screenshot(mailbox, "demo-mailbox")
    width = mailbox.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, "the mailbox scrolls sideways on a small phone"
    assert patient.locator("a:has-text('Link your account to your GP record')").is_visible()
    assert mailbox.locator("h1").inner_text() == "Demo mailbox"
