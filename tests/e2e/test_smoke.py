"""Smoke test in a real browser: the home page, an error page, and a patient signing in."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.browser


def test_home_and_error_pages_look_like_an_nhs_service(page: Any) -> None:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto("/")
    assert page.title().startswith("Use your GP services online")
    assert page.locator("header.nhsuk-header").is_visible()
    assert page.locator("a.nhsuk-skip-link").count() == 1
    assert page.evaluate("document.body.classList.contains('nhsuk-frontend-supported')")
    screenshot(page, "home")
    page.goto("/no-such-page")
    assert page.locator("h1").inner_text() == "Page not found"
    screenshot(page, "error-404")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors


def test_patient_signs_in_with_authenticator_code(page: Any) -> None:
    sign_in(page, "patient.y02001@example.com")
    page.wait_for_url("**/home")
    assert "Riverside Medical Centre" in page.inner_text("body")
    screenshot(page, "patient-home")
