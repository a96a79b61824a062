"""Booking on a small phone (360 by 640 pixels), phone first: a type, then a day, then a time, then confirm.

The first bookable time must be on the first screen of the time step, the times in time order, a day a few Tab
presses from the top, and every step must work without JavaScript. Screenshots of each step are written to
test-results/booking/ (kept out of the repository) for people to look at.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT

from .conftest import sign_in

pytestmark = pytest.mark.browser

PHONE_SCREEN = {"width": 360, "height": 640}
SHOTS = PROJECT_ROOT / "test-results" / "booking"
ACCOUNT = "parent.y02002@example.com"  # acting for themselves; no other browser test books for them
MOST_TABS_TO_A_DAY = 12


@pytest.fixture
def small_phone(browser: Any, live_server: str) -> Iterator[Any]:
    context = browser.new_context(base_url=live_server, viewport=PHONE_SCREEN, is_mobile=True)
    yield context.new_page()
    context.close()


@pytest.fixture
def phone_without_script(browser: Any, live_server: str) -> Iterator[Any]:
    context = browser.new_context(
        base_url=live_server, viewport=PHONE_SCREEN, is_mobile=True, java_script_enabled=False
    )
    yield context.new_page()
    context.close()


def _shot(page: Any, name: str) -> Path:
    """The first screen as the patient sees it, and the whole page."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    page.screenshot(path=str(SHOTS / f"{name}-whole-page.png"), full_page=True)
    return SHOTS / f"{name}.png"


def _on_first_screen(page: Any, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not shown"
    return bool(box["y"] >= 0 and box["y"] + box["height"] <= PHONE_SCREEN["height"])


def _minutes(label: str) -> int:
    moment = dt.datetime.strptime(label.strip().upper(), "%I:%M%p")
    return moment.hour * 60 + moment.minute


def _tabs_to_reach(page: Any, selector: str, most: int) -> int:
    """How many Tab presses from the top of the page first focus an element matching ``selector``."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    for presses in range(1, most + 1):
        page.keyboard.press("Tab")
        if page.evaluate(f"!!document.activeElement && document.activeElement.matches({selector!r})"):
            return presses
    raise AssertionError(f"{selector} not reached in {most} Tab presses")


def _choose_a_time(page: Any, shots: bool) -> str:
    """From the appointments page: any type, the first day, the first time. Returns the time chosen."""
    page.goto("/appointments")
    page.click("a:has-text('Book an appointment')")
    page.wait_for_url("**/appointments/book")
    assert page.locator("h1").inner_text() == "Choose a type of appointment"
    assert _on_first_screen(page, "a.app-choice:has-text('Any type')")
    assert page.locator("a.app-choice").count() <= 6, "the type step is short"
    if shots:
        _shot(page, "1-type")

    page.click("a.app-choice:has-text('Any type')")
    page.wait_for_url("**/appointments/book/days*")
    assert page.locator("h1").inner_text() == "Choose a day"
    assert page.locator("details.app-change-filters:not([open])").count() == 1, "filters wait behind a details"
    assert 1 <= page.locator("a.app-choice--day").count() <= 10
    assert _on_first_screen(page, "a.app-choice--day")
    if shots:
        assert _tabs_to_reach(page, "a.app-choice--day", MOST_TABS_TO_A_DAY) <= MOST_TABS_TO_A_DAY
        _shot(page, "2-day")

    page.locator("a.app-choice--day").first.click()
    page.wait_for_url("**/appointments/book/times*")
    assert page.locator("h1").inner_text().startswith("Choose a time on ")
    assert _on_first_screen(page, "a.app-time"), "the first bookable time is on the first screen"
    shown = [_minutes(t) for t in page.locator(".app-time__time").all_inner_texts()]
    assert shown and shown == sorted(shown), "times in time order"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_SCREEN["width"]
    if shots:
        _shot(page, "3-time")
    first = page.locator("a.app-time").first
    chosen = str(first.locator(".app-time__time").inner_text())
    first.click()
    page.wait_for_url("**/appointments/slots/*")
    assert page.locator("h1").inner_text() == "Book this appointment"
    return chosen


def test_book_the_first_available_time_of_any_type_on_a_small_phone(small_phone: Any) -> None:
    page = small_phone
    sign_in(page, ACCOUNT)
    page.wait_for_url("**/home")
    chosen = _choose_a_time(page, shots=True)
    page.fill("textarea[name=reason]", "Cough for three weeks")
    _shot(page, "4-confirm")
    page.click("button:has-text('Book appointment')")
    page.wait_for_url("**/booked")
    assert page.locator("h1").inner_text() == "Appointment booked"
    assert chosen in page.inner_text(".nhsuk-panel")
    _shot(page, "5-booked")

    page.goto("/appointments")  # the first time is too soon to cancel online: it stays booked
    assert page.locator(".app-appointment").count() == 1
    assert "Cough for three weeks" in page.inner_text(".app-appointment")


def test_every_booking_step_works_without_javascript(phone_without_script: Any) -> None:
    page = phone_without_script
    sign_in(page, ACCOUNT)
    page.wait_for_url("**/home")
    _choose_a_time(page, shots=False)
    page.goto("/appointments/book/days")
    page.click("details.app-change-filters summary")  # a details element opens without script
    page.select_option("select[name=how]", "telephone")
    page.click("button:has-text('Show days')")
    page.wait_for_url("**/appointments/book/days?*how=telephone*")
    page.locator("a.app-choice--day").first.click()
    page.wait_for_url("**/appointments/book/times?*how=telephone*")
    page.locator(".app-time__how").first.wait_for()
    modes = page.locator(".app-time__how").all_inner_texts()
    assert modes and all(m.startswith("Telephone") for m in modes)
