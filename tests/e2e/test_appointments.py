"""Appointments in a real browser: book, change and cancel, on a desktop and on a 360-pixel phone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.browser


def _watch_console(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


def _pick_a_later_time(page: Any) -> str:
    """On a slots page, go to later dates (beyond the cancellation cutoff) and choose the first time."""
    page.click("a[rel=next]")
    page.wait_for_load_state()
    first = page.locator("details[open] a.app-time").first
    time_text = first.locator(".app-time__time").inner_text()
    first.click()
    return str(time_text)


def test_book_change_and_cancel_an_appointment(page: Any, tmp_path: Path) -> None:
    errors = _watch_console(page)
    sign_in(page, "patient2.y02001@example.com")
    page.wait_for_url("**/home")
    page.goto("/appointments")  # the home page's wording is tested with the home page
    page.wait_for_url("**/appointments")
    assert page.locator("h1").inner_text() == "Your appointments"

    page.click("a:has-text('Book an appointment')")
    page.wait_for_url("**/appointments/book")
    page.click("a:has-text('See every time a week at a time')")  # the week page, for a wide screen
    page.wait_for_url("**/appointments/slots")
    assert page.locator("h1").inner_text() == "Book an appointment"
    assert page.locator("details[open] a.app-time").count() > 0
    screenshot(page, "appointments-slots-desktop")

    booked_time = _pick_a_later_time(page)
    assert page.locator("h1").inner_text() == "Book this appointment"
    page.fill("textarea[name=reason]", "Painful left knee after a fall")
    # The character count updates from its own script after the input event: wait for it rather than race it.
    page.locator(".nhsuk-character-count", has_text="You have 70 characters remaining").wait_for(timeout=10_000)
    page.click("button:has-text('Book appointment')")
    page.wait_for_url("**/booked")
    assert page.locator("h1").inner_text() == "Appointment booked"
    assert booked_time in page.inner_text(".nhsuk-panel")
    screenshot(page, "appointments-confirmation-desktop")

    with page.expect_download() as download:
        page.click("a:has-text('Add to calendar')")
    calendar = tmp_path / "appointment.ics"
    download.value.save_as(calendar)
    text = calendar.read_text()
    assert "TZID=Europe/London" in text and "BEGIN:VTIMEZONE" in text and "12 Mill Lane" in text

    page.click("a:has-text('See all your appointments')")
    page.wait_for_url("**/appointments")
    assert "Painful left knee" in page.inner_text("main")
    page.click(".app-appointment a:has-text('Change')")
    assert page.locator("h1").inner_text() == "Choose a new time"
    assert "stays booked until your new time is booked" in page.inner_text("main")
    _pick_a_later_time(page)
    assert page.locator("h1").inner_text() == "Check your new time"
    assert page.input_value("textarea[name=reason]") == "Painful left knee after a fall"
    page.click("button:has-text('Change appointment')")
    page.wait_for_url("**/booked?changed=1")
    assert page.locator("h1").inner_text() == "Appointment changed"

    page.goto("/appointments")
    assert page.locator(".app-appointment").count() == 1
    page.click(".app-appointment a:has-text('Cancel')")
    assert page.locator("h1").inner_text() == "Are you sure you want to cancel this appointment?"
    page.fill("textarea[name=reason]", "Knee is better")
    page.click("button:has-text('Cancel appointment')")
    page.wait_for_url("**/appointments")
    assert "has been cancelled" in page.inner_text("main")
    assert "You have no upcoming appointments" in page.inner_text("main")
    assert page.locator("strong:has-text('Cancelled')").count() >= 2

    page.goto("/appointments/slots?type=Blood+test&how=video")
    assert page.locator("h1").inner_text() == "No appointments available"
    assert "01632 960 101" in page.inner_text("main")
    screenshot(page, "appointments-no-slots-desktop")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors


def test_booking_on_a_phone(phone: Any) -> None:
    errors = _watch_console(phone)
    sign_in(phone, "patient2.y02002@example.com")
    phone.wait_for_url("**/home")
    phone.goto("/appointments/slots")
    assert phone.locator("h1").inner_text() == "Book an appointment"
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360, "nothing scrolls sideways on a phone"
    screenshot(phone, "appointments-slots-phone")

    _pick_a_later_time(phone)
    phone.fill("textarea[name=reason]", "Repeat blood pressure check")
    phone.click("button:has-text('Book appointment')")
    phone.wait_for_url("**/booked")
    assert phone.locator("h1").inner_text() == "Appointment booked"
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(phone, "appointments-confirmation-phone")

    phone.goto("/appointments/slots?type=Blood+test&how=video")
    assert phone.locator("h1").inner_text() == "No appointments available"
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(phone, "appointments-no-slots-phone")

    phone.goto("/appointments")
    phone.click(".app-appointment a:has-text('Cancel')")
    phone.click("button:has-text('Cancel appointment')")
    phone.wait_for_url("**/appointments")
    assert "You have no upcoming appointments" in phone.inner_text("main")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
