"""A practice manager switches a service off and back on, checks the rules and reads the uptake report."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from .conftest import SCREENSHOTS, screenshot, sign_in

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
    assert "Link to your clinical system: Connected" in page.inner_text("main")
    screenshot(page, "manager-dashboard")
    page.goto("/manage/services")
    assert page.locator("main form").count() == 0  # a summary: each service changes on its own page
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 1800, f"the services summary is {height}px tall at 1280px"
    page.screenshot(path=str(SCREENSHOTS.parent / "manager-services-1280.png"), full_page=True)

    page.click("a:has-text('Change online appointments')")
    page.wait_for_url("**/manage/services/appointments")
    assert "What patients see if you switch it off" in page.inner_text("main")
    assert page.locator("main form").count() == 1
    screenshot(page, "manager-service-change")
    page.check("input[name=enabled][value=off]")
    page.fill("textarea[name=message]", MESSAGE)
    page.click("button:has-text('Save online appointments')")
    assert "There is a problem" in page.inner_text("body")
    screenshot(page, "manager-service-change-error")

    back = dt.date.today() + dt.timedelta(days=10)
    page.fill("textarea[name=off_reason]", "Clinical system upgrade")
    page.fill("input[name=expected_return-day]", str(back.day))
    page.fill("input[name=expected_return-month]", str(back.month))
    page.fill("input[name=expected_return-year]", str(back.year))
    page.click("button:has-text('Save online appointments')")
    try:
        page.wait_for_url("**/manage/services")
        body = page.inner_text("main")
        assert "below contract" in body.lower() and MESSAGE in body
        assert "History of changes" in body
        screenshot(page, "manager-services-switched-off")

        sign_in(phone, "patient.y02001@example.com")
        phone.wait_for_url("**/home")
        assert MESSAGE in phone.inner_text("body")
        screenshot(phone, "patient-home-appointments-off-phone")
    finally:
        page.goto("/manage/services/appointments")
        page.check("input[name=enabled][value=on]")
        page.fill("textarea[name=message]", "")
        page.click("button:has-text('Save online appointments')")
    page.wait_for_url("**/manage/services")
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
    report = page.inner_text("main")
    assert "Enhanced review indicated before granting access to your own health record" in report
    assert "SNOMED CT 1364731000000104" in report and "1 patients" not in report
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
