"""Repeat prescriptions in a real browser: a patient orders two items on a phone, practice staff approve them
on the demo clinical system's screen, and the patient sees them approved; another orders a paper prescription
to collect from the surgery."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

PATIENT = "patient2.y02001@example.com"


def test_patient_orders_two_items_and_sees_them_approved(phone: Any, browser: Any, live_server: str) -> None:
    errors: list[str] = []
    phone.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    sign_in(phone, PATIENT)
    phone.wait_for_url("**/home")
    phone.goto("/prescriptions")
    assert phone.locator("h1").inner_text() == "Your repeat prescriptions"
    assert phone.locator(".app-medicine").count() >= 2
    screenshot(phone, "prescriptions-template-phone")

    phone.click("text=Order a repeat prescription")
    boxes = phone.locator("input[name=items]")
    assert boxes.count() >= 2
    names = [phone.locator(f"label[for={boxes.nth(i).get_attribute('id')}]").inner_text() for i in range(2)]
    boxes.nth(0).check()
    boxes.nth(1).check()
    phone.fill("textarea[name=note]", "I am away from the 20th, please.")
    phone.check("input[name=collection][value=pharmacy]")
    screenshot(phone, "prescriptions-order-phone")
    phone.click("button:has-text('Send request')")
    phone.wait_for_url("**/prescriptions/orders/*")
    assert "Request sent" in phone.locator("h1").inner_text()
    assert "Ready by" in phone.inner_text("body")
    screenshot(phone, "prescriptions-confirmation-phone")

    staff = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
    desk = staff.new_page()
    try:
        sign_in(desk, "reception.y02001@example.com")
        desk.wait_for_url("**/reception/**")
        desk.goto("/demo-system/Y02001/prescriptions")
        card = desk.locator(".app-queue-item", has_text=names[0]).first
        assert names[1] in card.inner_text()
        card.locator("button:has-text('Approve')").click()
        desk.wait_for_selector("text=Request approved.")
        screenshot(desk, "demo-system-prescription-queue")
    finally:
        staff.close()

    phone.goto("/prescriptions/requests")
    latest = phone.locator(".app-request").first
    assert "Approved" in latest.inner_text() and names[0] in latest.inner_text() and names[1] in latest.inner_text()
    screenshot(phone, "prescriptions-requests-phone")
    phone.goto("/prescriptions/pharmacy?q=Kingsbridge")
    screenshot(phone, "prescriptions-pharmacy-phone")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors


SURGERY_PATIENT = "patient.y02002@example.com"  # Hillview Surgery; no other browser test orders for them


def test_patient_orders_a_paper_prescription_to_collect_from_the_surgery_on_a_phone(phone: Any) -> None:
    sign_in(phone, SURGERY_PATIENT)
    phone.wait_for_url("**/home")
    phone.goto("/prescriptions/order")
    assert phone.locator("h1").inner_text() == "Order a repeat prescription"
    first = phone.locator("input[name=items]").first
    item = phone.locator(f"label[for={first.get_attribute('id')}]").inner_text()
    first.check()

    # Not choosing where to collect it is an error that says what to do.
    phone.click("button:has-text('Send request')")
    assert "Select where you want to collect your prescription" in phone.locator(".nhsuk-error-summary").inner_text()
    phone.locator("input[name=items]").first.check()
    surgery = phone.get_by_label("Collect a paper prescription from Hillview Surgery")
    surgery.check()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scrolling
    screenshot(phone, "prescriptions-order-surgery-phone")
    phone.click("button:has-text('Send request')")

    phone.wait_for_url("**/prescriptions/orders/*")
    assert "Request sent" in phone.locator("h1").inner_text()
    collect = phone.locator("#collect-from").inner_text()
    assert "Hillview Surgery (paper prescription)" in collect
    assert "a paper prescription will be ready for you at the reception desk" in phone.inner_text("body")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(phone, "prescriptions-confirmation-surgery-phone")

    phone.goto("/prescriptions/requests")
    latest = phone.locator(".app-request").first
    assert item in latest.inner_text()
    assert "Paper prescription to collect from your GP practice" in latest.inner_text()
    screenshot(phone, "prescriptions-requests-surgery-phone")
    latest.locator("a:has-text('Cancel this request')").click()
    assert phone.locator("h1").inner_text() == "Are you sure you want to cancel this request?"
    screenshot(phone, "prescriptions-cancel-phone")
    phone.click("button:has-text('Yes, cancel this request')")
    phone.wait_for_url("**/prescriptions/requests")
    assert "Cancelled" in phone.locator(".app-request").first.inner_text()

    phone.goto("/prescriptions/pharmacy")
    assert "miles from Hillview Surgery" in phone.locator(".app-pharmacy-list li").first.inner_text()
    screenshot(phone, "prescriptions-pharmacies-near-phone")
