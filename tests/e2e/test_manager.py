"""A practice manager switches a service off and back on, checks the rules and reads the uptake report."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

MESSAGE = "Online booking is paused until 3 March; call 01632 960 101"


def _csp_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


def test_manager_switches_appointments_off_and_the_patient_sees_the_message(page: Any, phone: Any) -> None:
    errors = _csp_errors(page)
    sign_in(page, "manager.y02001@example.com")
    page.wait_for_url("**/manage/**")
    screenshot(page, "manager-dashboard")
    page.goto("/manage/services")
    screenshot(page, "manager-services")

    form = page.locator("section#appointments form")
    form.locator("input[name=enabled][value=off]").check()
    form.locator("textarea[name=message]").fill(MESSAGE)
    form.locator("button[type=submit]").click()
    assert "There is a problem" in page.inner_text("body")
    screenshot(page, "manager-services-error")

    back = dt.date.today() + dt.timedelta(days=10)
    form = page.locator("section#appointments form")
    form.locator("textarea[name=off_reason]").fill("Clinical system upgrade")
    form.locator("input[name=expected_return-day]").fill(str(back.day))
    form.locator("input[name=expected_return-month]").fill(str(back.month))
    form.locator("input[name=expected_return-year]").fill(str(back.year))
    form.locator("button[type=submit]").click()
    try:
        assert "below contract" in page.inner_text("body").lower()
        screenshot(page, "manager-services-switched-off")

        sign_in(phone, "patient.y02001@example.com")
        phone.wait_for_url("**/home")
        assert MESSAGE in phone.inner_text("body")
        screenshot(phone, "patient-home-appointments-off-phone")
    finally:
        page.goto("/manage/services")
        form = page.locator("section#appointments form")
        form.locator("input[name=enabled][value=on]").check()
        form.locator("textarea[name=message]").fill("")
        form.locator("button[type=submit]").click()
    assert "is on for every patient" in page.inner_text("body")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors


def test_manager_rules_report_and_phone_layout(page: Any, phone: Any) -> None:
    errors = _csp_errors(page)
    sign_in(page, "manager.y02001@example.com")
    page.wait_for_url("**/manage/**")
    page.goto("/manage/rules")
    assert page.locator("input[name=online_slot_types][value='Baby clinic']").count() == 1
    screenshot(page, "manager-rules")
    page.fill("input[name=booking_horizon_days]", "-3")
    page.click("button:has-text('Save rules')")
    assert "Booking horizon must be 1 day or more" in page.inner_text("body")
    screenshot(page, "manager-rules-error")

    page.goto("/manage/reports")
    assert page.locator("svg.app-chart__svg").count() >= 2
    screenshot(page, "manager-report")

    sign_in(phone, "manager.y02001@example.com")
    phone.wait_for_url("**/manage/**")
    phone.goto("/manage/services")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the services page scrolls sideways on a phone ({width}px)"
    screenshot(phone, "manager-services-phone")
    phone.goto("/manage/reports")
    screenshot(phone, "manager-report-phone")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors


def test_reception_sees_a_patients_access(page: Any) -> None:
    sign_in(page, "reception.y02001@example.com")
    page.wait_for_url("**/reception/**")
    page.goto("/reception/patients/1/access")
    assert "Online access" in page.inner_text("body")
    screenshot(page, "reception-patient-access")
