"""The GP record in a real browser: the overview, two sections, and the phone layout of test results."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

PATIENT = "patient.y02001@example.com"


def test_patient_reads_two_sections_of_their_record(page: Any) -> None:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    sign_in(page, PATIENT)
    page.wait_for_url("**/home")
    page.click("main a[href='/record']")
    page.wait_for_url("**/record")
    assert page.locator("h1").inner_text() == "Your GP health record"
    assert "Full record." in page.inner_text("main")
    screenshot(page, "record-overview-desktop")

    page.click("a:has-text('Allergies and adverse reactions')")
    assert page.locator("h1").inner_text() == "Allergies and adverse reactions"
    page.click("a.nhsuk-back-link")
    page.click("a:has-text('Test results')")
    page.wait_for_url("**/record/test-results")
    main = page.inner_text("main")
    assert "Date filed" in main and "Serum ferritin" not in main
    screenshot(page, "record-test-results-desktop")

    page.goto("/record/download")
    page.emulate_media(media="print")
    assert not page.locator("header.nhsuk-header").is_visible(), "the print stylesheet leaves out the navigation"
    assert page.locator("#section-test-results").is_visible()
    screenshot(page, "record-print-preview")
    page.emulate_media(media="screen")

    page.goto("/record/consultations")
    assert "CONFIDENTIAL-" not in page.inner_text("body") and "THIRDPARTY-" not in page.inner_text("body")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors


def test_record_overview_and_test_results_on_a_phone(phone: Any) -> None:
    sign_in(phone, PATIENT)
    phone.wait_for_url("**/home")
    phone.goto("/record")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(phone, "record-overview-phone")
    phone.goto("/record/test-results")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360, "no sideways scrolling on a phone"
    assert phone.locator(".nhsuk-table-responsive__heading:has-text('Date filed')").first.is_visible()
    screenshot(phone, "record-test-results-phone")
    phone.goto("/record/download")
    screenshot(phone, "record-printable-phone")


def test_dates_and_past_medicines_read_honestly_on_a_phone(phone: Any) -> None:
    """Full access: the consultations page says that only the notes start at the access start (earlier
    consultations are listed without them); a stopped medicine is under past medicines."""
    sign_in(phone, "patient2.y02001@example.com")
    phone.wait_for_url("**/home")
    phone.goto("/record/consultations")
    main = phone.inner_text("main")
    assert "Notes written by clinicians are shown for consultations from 31 October 2023" in main
    assert "Shown from" not in main
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(phone, "record-consultations-phone")
    phone.goto("/record/medications")
    main = phone.inner_text("main")
    assert main.index("Past medicines") < main.index("Naproxen 500mg tablets")
    screenshot(phone, "record-medications-phone")
    phone.goto("/record/test-results")
    screenshot(phone, "record-test-results-flags-phone")
