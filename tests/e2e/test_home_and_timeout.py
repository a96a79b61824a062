"""The home page in a real browser on a phone: finding proxy access from it, acting for someone, and the
timeout warning (WCAG 2.2.1) with a shortened idle limit so the test runs in seconds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.system.servers import gateway_env, gunicorn

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

SEEKER = "patient2.y02002@example.com"  # a patient who acts for nobody
PARENT = "parent.y02001@example.com"
NEWCOMER = "newpatient.y02002@example.com"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
IDLE_SECONDS = 15
WARNING_SECONDS = 8


def _someone_to_ask_for(database_url: str) -> tuple[str, str, str, str]:
    """NHS number and date of birth of a demo patient at Hillview Surgery with no account of their own."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as conn:
        nhs, born = conn.execute(
            text("SELECT nhs_number, date_of_birth FROM demo_patient WHERE id = 'Y02002-P009'")
        ).one()
    engine.dispose()
    year, month, day = str(born)[:10].split("-")
    return str(nhs), str(int(day)), str(int(month)), year


def _no_sideways_scrolling(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "no sideways scrolling on a phone"


def test_a_patient_finds_and_asks_for_proxy_access_from_the_home_page(phone: Any, live_database: str) -> None:
    sign_in(phone, SEEKER)
    phone.wait_for_url("**/home")
    assert phone.title().startswith(phone.locator("h1").inner_text())
    _no_sideways_scrolling(phone)
    screenshot(phone, "home-own-phone")
    phone.click("a:has-text('Manage online services for someone else')")
    phone.wait_for_url("**/proxy/request")
    assert phone.locator("h1").inner_text() == "Ask to act for someone"
    nhs, day, month, year = _someone_to_ask_for(live_database)
    phone.select_option("select[name=practice]", "Y02002")
    phone.fill("input[name=nhs_number]", nhs)
    phone.fill("input[name=date_of_birth-day]", day)
    phone.fill("input[name=date_of_birth-month]", month)
    phone.fill("input[name=date_of_birth-year]", year)
    phone.fill("input[name=relationship]", "Daughter")
    phone.check("input[value=lasting_power_of_attorney]")
    phone.click("button:has-text('Send request')")
    phone.wait_for_url("**/proxy")
    assert "Request sent" in phone.inner_text("main")


def test_a_proxy_home_page_leads_with_who_they_act_for_and_what_they_may_do(phone: Any) -> None:
    sign_in(phone, PARENT)
    phone.wait_for_url("**/home")
    phone.goto("/proxy")
    act = phone.locator("button:has-text('Act for ')").first
    child = " ".join(act.inner_text().removeprefix("Act for ").split())
    act.click()
    phone.wait_for_url("**/home")
    heading = phone.locator("h1").inner_text()
    assert heading.endswith("'s services") and phone.title().startswith(heading)
    summary = phone.locator(".app-acting-summary").inner_text()
    assert f"You are acting for {child}" in summary
    assert "see their GP record: allergies, adverse reactions and medicines" in summary  # the proxy's cap
    assert "Your online access" not in phone.inner_text("main"), "not the patient's own level"
    _no_sideways_scrolling(phone)
    screenshot(phone, "home-acting-phone")
    phone.click("button:has-text('Back to your own account')")
    phone.wait_for_url("**/home")


def test_the_unlinked_home_page_is_not_the_link_page(phone: Any) -> None:
    sign_in(phone, NEWCOMER)
    phone.wait_for_url("**/home")
    home_title = phone.title()
    assert home_title.startswith(phone.locator("h1").inner_text())
    assert phone.locator("a:has-text('Manage online services for someone else')").count() == 1
    screenshot(phone, "home-unlinked-phone")
    phone.goto("/link")
    assert phone.title() != home_title


@pytest.fixture(scope="module")
def short_server(live_server: str, live_database: str) -> Iterator[str]:
    """The same gateway and database with a 15-second idle limit, warned 8 seconds before."""
    env = gateway_env(
        live_database,
        PATIENT_ONLINE_SESSION_IDLE_MINUTES=str(IDLE_SECONDS / 60),
        PATIENT_ONLINE_SESSION_WARNING_SECONDS=str(WARNING_SECONDS),
    )
    with gunicorn(env, workers=1, threads=4) as base:
        yield base


def test_the_timeout_warning_keeps_or_ends_the_session(browser: Any, short_server: str) -> None:
    context = browser.new_context(base_url=short_server, viewport=PHONE, is_mobile=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    sign_in(page, SEEKER)
    page.wait_for_url("**/home")
    loaded = time.monotonic()
    dialog = page.locator("dialog#timeout-warning")
    dialog.wait_for(state="visible", timeout=IDLE_SECONDS * 1000)
    assert time.monotonic() - loaded < IDLE_SECONDS - WARNING_SECONDS + 2
    assert dialog.get_attribute("role") == "alertdialog" and dialog.get_attribute("aria-modal") == "true"
    assert page.evaluate("document.activeElement.closest('dialog') !== null"), "focus moved into the dialog"
    assert "You're about to be signed out" in dialog.inner_text()
    for _ in range(4):  # Tab never leaves the dialog
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.closest('dialog') !== null")
    screenshot(page, "timeout-warning-phone")
    page.click("button:has-text('Stay signed in')")
    dialog.wait_for(state="hidden")

    time.sleep(max(0.0, IDLE_SECONDS + 1 - (time.monotonic() - loaded)))  # past the first page's idle limit
    page.goto("/account")
    assert page.url.endswith("/account"), "still signed in"

    page.wait_for_url("**/signed-out", timeout=(IDLE_SECONDS + 5) * 1000)  # nobody answers this time
    assert page.locator("h1").inner_text() == "You have been signed out"
    screenshot(page, "timeout-signed-out-phone")
    page.goto("/home")
    assert "/login" in page.url
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    context.close()


def test_screens_at_desktop_width(browser: Any, live_server: str) -> None:
    context = browser.new_context(base_url=live_server, viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, PARENT)
    page.wait_for_url("**/home")
    screenshot(page, "home-own-desktop")
    page.goto("/account/activity")
    assert page.locator("h1").inner_text() == "Activity on your account"
    screenshot(page, "activity-desktop")
    context.close()
