"""A parent acting for their child reads, first, whose services they are using and what they may do."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.browser


def test_the_proxy_page_leads_with_the_child_and_the_parents_cap_on_a_phone(phone: Any) -> None:
    sign_in(phone, "parent.y02001@example.com")
    phone.wait_for_url("**/home")
    phone.goto("/proxy")
    phone.locator("button:has-text('Act for')").first.click()
    phone.wait_for_url("**/home")
    phone.goto("/proxy")
    lead = phone.locator(".app-acting-for")
    assert lead.is_visible()
    words = lead.inner_text()
    assert "You are acting for" in words and "summary record" in words and "full record" not in words
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(phone, "proxy-acting-for-phone")
