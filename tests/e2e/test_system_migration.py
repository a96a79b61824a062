"""A practice changes clinical system, in a real browser: a patient with an appointment booked before the
change sees why they cannot book or order while changes are paused, then, after the cut-over, sees their
appointment from the new system and orders a repeat prescription without linking their account again.

The steps are run as the practice's IT service would run them: `flask practice migrate ...` commands. The
change is rolled back at the end, so the practice is as it was for any test that follows."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.system.servers import flask, gateway_env

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

ODS = "Y02002"
PATIENT = "patient.y02002@example.com"  # matched in the demo's second copy (its mismatches are other patients)


def _local(at: dt.datetime) -> str:
    return at.astimezone(ZoneInfo("Europe/London")).strftime("%Y-%m-%dT%H:%M")


def _book_one(page: Any) -> None:
    page.click("a:has-text('Book an appointment')")
    page.wait_for_url("**/appointments/book")
    page.click("a:has-text('See every time a week at a time')")
    page.wait_for_url("**/appointments/slots")
    page.click("a[rel=next]")
    page.wait_for_load_state()
    page.locator("details[open] a.app-time").first.click()
    page.fill("textarea[name=reason]", "Check-up before the system change")
    page.click("button:has-text('Book appointment')")
    page.wait_for_url("**/booked")


def test_a_patient_keeps_their_appointment_and_orders_after_the_system_change(
    phone: Any, browser: Any, live_server: str, live_database: str
) -> None:
    env = gateway_env(live_database)
    sign_in(phone, PATIENT)
    phone.wait_for_url("**/home")
    phone.goto("/appointments")
    if phone.locator(".app-appointment").count() == 0:
        _book_one(phone)
        phone.goto("/appointments")
    heading = phone.locator(".app-appointment h3").first
    when = heading.inner_text()
    assert "2~" not in (heading.locator("a").get_attribute("href") or "")

    now = dt.datetime.now(dt.UTC)
    window = ["--start", _local(now - dt.timedelta(minutes=1)), "--end", _local(now + dt.timedelta(days=2))]
    flask(env, "practice", "migrate", ODS, "--plan", "demo", "--option", "copy=2", *window)
    flask(env, "practice", "migrate", ODS, "--freeze")
    try:
        phone.goto("/appointments")
        paused = phone.locator(".app-read-only").inner_text()
        assert "Hillview Surgery is changing its clinical system until" in paused
        assert "You can still see your appointments and GP record online" in paused
        assert phone.locator(".app-appointment h3").first.inner_text() == when  # still read from the old system
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360
        screenshot(phone, "system-change-paused-phone")
        phone.goto("/prescriptions/order")
        assert "changing its clinical system" in phone.inner_text("main")

        flask(env, "practice", "migrate", ODS, "--demo-copy")  # the practice's data, as the new system holds it
        report = flask(env, "practice", "migrate", ODS, "--cut-over").stdout
        assert "Matched in the new system" in report

        phone.goto("/appointments")
        assert phone.locator(".app-read-only").count() == 0
        moved = phone.locator(".app-appointment h3", has_text=when).first
        assert "2~" in (moved.locator("a").get_attribute("href") or "")  # the new system's appointment id
        screenshot(phone, "system-change-after-phone")

        phone.goto("/prescriptions/order")
        assert phone.locator("h1").inner_text() == "Order a repeat prescription"
        phone.locator("input[name=items]:not([disabled])").first.check()
        pharmacy = phone.locator("input[name=collection][value=pharmacy]")
        if pharmacy.count():
            pharmacy.check()
        phone.click("button:has-text('Send request')")
        phone.wait_for_url("**/prescriptions/orders/*")
        assert "Request sent" in phone.locator("h1").inner_text()
        screenshot(phone, "system-change-ordered-phone")

        staff = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
        desk = staff.new_page()
        try:
            sign_in(desk, f"reception.{ODS.lower()}@example.com")
            desk.wait_for_url("**/reception/**")
            desk.goto("/reception/system-change")
            assert desk.locator("h1").inner_text() == "Checking details after the system change"
            assert "No patient with this NHS number at the new system" in desk.inner_text("main")
            assert "A booking made just before the change" not in desk.inner_text("main")  # recorded at once
            screenshot(desk, "system-change-reception")
            desk.context.clear_cookies()
            sign_in(desk, "admin@example.com")
            desk.goto(f"/admin/practices/{ODS}/migration")
            assert "Reception checking details" in desk.inner_text("main")
            screenshot(desk, "system-change-admin")
        finally:
            staff.close()
    finally:
        flask(env, "practice", "migrate", ODS, "--rollback")
