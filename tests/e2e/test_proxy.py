"""Proxy access in a real browser: a parent books for their child; someone asks, reception checks; the phone layout."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

PARENT = "parent.y02001@example.com"
PATIENT = "patient.y02001@example.com"
RECEPTION = "reception.y02001@example.com"


def test_a_parent_books_an_appointment_for_their_child(page: Any) -> None:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    sign_in(page, PARENT)
    page.wait_for_url("**/home")
    page.goto("/proxy")
    assert page.locator("h1").inner_text() == "Acting for someone else"
    screenshot(page, "proxy-people-desktop")
    act = page.locator("button:has-text('Act for ')").first
    child = act.inner_text().removeprefix("Act for ").strip()
    act.click()
    page.wait_for_url("**/home")
    banner = page.locator(".app-acting-banner").inner_text()
    assert "You are acting for" in banner and child.split()[0] in banner
    assert page.locator("h1").inner_text().endswith("'s services")
    screenshot(page, "proxy-acting-home-desktop")

    page.click("main a:has-text('Appointments')")
    page.wait_for_url("**/appointments")
    assert "You are acting for" in page.locator(".app-acting-banner").inner_text()
    page.click("a:has-text('Book an appointment')")
    page.wait_for_url("**/appointments/book")
    page.click("a.app-choice:has-text('Any type')")
    page.wait_for_url("**/appointments/book/days*")
    page.locator("a.app-choice--day").first.click()
    page.wait_for_url("**/appointments/book/times*")
    page.locator("a.app-slot").first.click()
    assert page.locator("h1").inner_text() == "Book this appointment"
    assert "You are booking for" in page.inner_text("main")
    page.fill("textarea[name=reason]", "Earache for a week")
    screenshot(page, "proxy-booking-for-child-desktop")
    page.click("button:has-text('Book appointment')")
    page.wait_for_selector("h1:has-text('Appointment booked')")
    assert "You are acting for" in page.locator(".app-acting-banner").inner_text()
    screenshot(page, "proxy-booked-for-child-desktop")

    page.goto("/proxy")
    page.click("button:has-text('Back to your own account')")
    page.wait_for_url("**/home")
    assert page.locator(".app-acting-banner").count() == 0
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors


def _demo_person(database_url: str, clinical_id: str) -> tuple[str, str]:
    """NHS number and date of birth (YYYY-MM-DD) of a demo patient, as a relative would know them."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT nhs_number, date_of_birth FROM demo_patient WHERE id = :id"), {"id": clinical_id}
        ).one()
    engine.dispose()
    return str(row[0]), str(row[1])


def test_someone_asks_and_reception_checks_the_request(
    page: Any, browser: Any, live_server: str, live_database: str
) -> None:
    nhs_number, born = _demo_person(live_database, "Y02001-P004")  # an older patient, no account of their own
    year, month, day = born.split("-")
    sign_in(page, PATIENT)
    page.wait_for_url("**/home")
    page.goto("/proxy/request")
    page.click("button:has-text('Send request')")
    assert page.locator(".nhsuk-error-summary").is_visible()
    screenshot(page, "proxy-request-errors-desktop")
    page.select_option("select[name=practice]", "Y02001")
    page.fill("input[name=nhs_number]", nhs_number)
    page.fill("input[name=relationship]", "Son")
    page.check("input[value=lasting_power_of_attorney]")
    page.fill("input[name=date_of_birth-day]", str(int(day)))
    page.fill("input[name=date_of_birth-month]", str(int(month)))
    page.fill("input[name=date_of_birth-year]", year)
    page.click("button:has-text('Send request')")
    page.wait_for_url("**/proxy")
    assert "Request sent" in page.inner_text("main")

    staff = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
    desk = staff.new_page()
    sign_in(desk, RECEPTION)
    desk.wait_for_url("**/reception/**")
    desk.goto("/reception/proxies")
    assert desk.locator("h1").inner_text().startswith("Proxy access")
    screenshot(desk, "proxy-reception-queue-desktop")
    desk.locator("a:has-text('Check')").first.click()
    assert "Verified: their own record" in desk.inner_text("main")
    screenshot(desk, "proxy-reception-review-desktop")
    desk.fill("textarea[name=approve-evidence]", "Registered lasting power of attorney for health and welfare")
    desk.check("input[name=approve-safeguarding_checked]")
    desk.fill("textarea[name=approve-safeguarding_notes]", "Spoke to the patient alone; no concerns")
    desk.check("input[name=approve-can_appointments]")
    desk.check("input[name=approve-record_level][value=summary]")
    desk.click("button:has-text('Approve')")
    desk.wait_for_url("**/reception/proxies")
    assert "Approved." in desk.inner_text("main")
    staff.close()

    page.goto("/proxy")
    assert page.locator("button:has-text('Act for ')").count() == 1
    screenshot(page, "proxy-after-approval-desktop")


def test_the_proxy_page_on_a_phone(phone: Any) -> None:
    sign_in(phone, PARENT)
    phone.wait_for_url("**/home")
    phone.goto("/proxy")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360, "no sideways scrolling on a phone"
    screenshot(phone, "proxy-people-phone")
    phone.locator("button:has-text('Act for ')").first.click()
    phone.wait_for_url("**/home")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(phone, "proxy-acting-home-phone")
    phone.goto("/proxy/request")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(phone, "proxy-request-phone")
