"""Earlier appointments in a real browser, on the demo as `make run` builds it: someone registers, reading their
codes in the demo mailbox, and is linked to their GP record by reception; they book a nurse appointment and ask
for an earlier time from its page; another patient cancels an earlier one; the worker (`flask waitlist run`)
offers the freed time by email; the first patient opens the link in the mailbox, accepts, and their appointment
moves to the earlier time.

An offer goes to the earliest free time that suits the patient, so the test makes the freed time the earliest
one: the other patient books the first two free nurse times, and the newcomer the next one. The practice manager
lets patients cancel up to an hour before (as a practice may), so that each of these times, however near, can be
cancelled online; the rule is put back at the end. The first of the other patient's times only keeps any time
near the booking window's edge from being offered instead (a time drifts out of the window as the minutes pass).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import create_engine, text

from patient_online.services.appointments.common import when
from patient_online.web.filters import uk_date, uk_datetime, uk_day, uk_time
from tests.system.servers import flask, gateway_env

from .conftest import screenshot, sign_in
from .demo_mailbox import newest_message, register_with_the_mailbox

pytestmark = pytest.mark.browser

EMAIL = "zara.earlier@example.com"
PASSWORD = "heron-quarry-lamp-48"
NEWCOMER = "Y02001-P012"  # an adult of the demo practice with no online account (no other browser test uses her)
OTHER_PATIENT = "patient.y02001@example.com"  # holds no future appointments in the demo data
TYPE = "Nurse appointment"  # one nurse at a time: two free times are at least 15 minutes apart


def demo_person(database_url: str, patient_id: str) -> dict[str, Any]:
    """What the person knows about themselves, to ask their practice to link their account."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        row = (
            conn.execute(
                text(
                    "SELECT nhs_number, given_name, family_name, date_of_birth, postcode FROM demo_patient "
                    "WHERE id = :id"
                ),
                {"id": patient_id},
            )
            .mappings()
            .one()
        )
    engine.dispose()
    return dict(row)


def ask_to_be_linked(patient: Any, person: dict[str, Any]) -> None:
    patient.click("a:has-text('Link your account to your GP record')")
    year, month, day = str(person["date_of_birth"]).split("-")
    patient.select_option("select[name=request-practice]", "Y02001")
    patient.fill("input[name=request-nhs_number]", person["nhs_number"])
    patient.fill("input[name=request-given_name]", person["given_name"])
    patient.fill("input[name=request-family_name]", person["family_name"])
    patient.fill("input[name=request-date_of_birth-day]", day)
    patient.fill("input[name=request-date_of_birth-month]", month)
    patient.fill("input[name=request-date_of_birth-year]", year)
    patient.fill("input[name=request-postcode]", person["postcode"])
    patient.click("button:has-text('Send request to my practice')")
    assert "Request sent to your GP practice" in patient.inner_text("h1")


def approve_the_link(reception: Any, family_name: str) -> None:
    sign_in(reception, "reception.y02001@example.com")
    reception.click("a:has-text('Identity checks')")
    reception.click(f"a:has-text('Check'):has-text('{family_name}')")
    reception.check("input[value=documents]")
    reception.check("input[name=approve-documents][value=passport]")
    reception.check("input[name=approve-documents][value=utility_bill]")
    reception.click("button:has-text('Approve and link')")
    assert "is verified and linked" in reception.inner_text("main")


def _start(href: str) -> dt.datetime:
    return dt.datetime.fromisoformat(parse_qs(urlsplit(href).query)["at"][0])


def book_first_time_after(page: Any, after: dt.datetime | None, reason: str) -> dt.datetime:
    """Book the first free nurse time later than ``after``, through the day and time pages; returns its start.

    Times are told apart by the start in their links: a page may still show a time booked a moment ago (the
    pages may reuse a search for a few seconds; booking always checks the time again)."""
    page.goto("/appointments/book")
    page.click(f"a.app-choice:has-text('{TYPE}')")
    page.wait_for_url("**/appointments/book/days*")
    days = [str(a.get_attribute("href")) for a in page.locator("a.app-choice--day").all()]
    assert days, f"no days with {TYPE} times: {page.inner_text('main')[:400]}"
    for day in days:
        page.goto(day)
        times = [str(a.get_attribute("href")) for a in page.locator("a.app-time").all()]
        chosen = next((href for href in times if after is None or _start(href) > after), None)
        if chosen is not None:
            break
    else:
        raise AssertionError(f"no {TYPE} time after {after} in the first days with times")
    page.click(f"a.app-time[href='{chosen}']")
    assert page.locator("h1").inner_text() == "Book this appointment"
    page.fill("textarea[name=reason]", reason)
    page.click("button:has-text('Book appointment')")
    page.wait_for_url("**/booked*")
    return _start(chosen)


def cancel(page: Any, start: dt.datetime, reason: str) -> None:
    """Cancel the appointment at ``start`` from the list of appointments."""
    page.goto("/appointments")
    card = page.locator(".app-appointment", has_text=f"{uk_day(start)} at {uk_time(start)}")
    card.locator("a:has-text('Cancel')").click()
    assert page.locator("h1").inner_text() == "Are you sure you want to cancel this appointment?"
    page.fill("textarea[name=reason]", reason)
    page.click("button:has-text('Cancel appointment')")
    page.wait_for_url("**/appointments")
    assert "has been cancelled" in page.inner_text("main")


def tidy_up(other: Any, patient: Any) -> None:
    """Cancel whatever the other patient still holds, and take the newcomer off the list."""
    other.goto("/appointments")
    for _ in range(3):
        left = other.locator(".app-appointment a:has-text('Cancel')")
        if left.count() == 0:
            break
        left.first.click()
        other.click("button:has-text('Cancel appointment')")
        other.wait_for_url("**/appointments")
    patient.goto("/appointments/earlier")
    if patient.locator("button:has-text('Leave the list')").count():
        patient.click("button:has-text('Leave the list')")


def offer_round(database_url: str, service_url: str) -> int:
    """One round of the worker, as `flask waitlist run` (the outbox worker does the same on every tick) makes it
    against the server's database; the number of offers it made."""
    done = flask(gateway_env(database_url, PATIENT_ONLINE_SERVICE_URL=service_url), "waitlist", "run")
    found = re.search(r"offered (\d+)", done.stdout)
    assert found, done.stdout
    return int(found.group(1))


@contextmanager
def cancelling_up_to_an_hour_before(manager: Any) -> Iterator[None]:
    """The demo practice lets patients cancel online up to an hour before, then its own rule again."""
    sign_in(manager, "manager.y02001@example.com")
    manager.wait_for_url("**/manage/**")
    manager.goto("/manage/rules")
    assert manager.locator("input[name=waitlist_enabled][value=yes]").is_checked(), "the demo has the list on"
    assert manager.locator("input[name=cancellation_allowed][value=yes]").is_checked()
    before = manager.input_value("input[name=cancellation_cutoff_hours]")
    manager.fill("input[name=cancellation_cutoff_hours]", "1")
    manager.click("button:has-text('Save rules')")
    assert "There is a problem" not in manager.inner_text("main")
    try:
        yield
    finally:
        manager.goto("/manage/rules")
        manager.fill("input[name=cancellation_cutoff_hours]", before)
        manager.click("button:has-text('Save rules')")
        assert "There is a problem" not in manager.inner_text("main")


def test_an_offer_from_the_list_moves_the_appointment_earlier(
    browser: Any, live_server: str, live_database: str
) -> None:
    person = demo_person(live_database, NEWCOMER)
    phone = {"viewport": {"width": 360, "height": 740}, "is_mobile": True}
    desk = {"viewport": {"width": 1280, "height": 900}}
    patient = browser.new_context(base_url=live_server, **phone).new_page()
    mailbox = browser.new_context(base_url=live_server, **phone).new_page()
    other = browser.new_context(base_url=live_server, **phone).new_page()
    reception = browser.new_context(base_url=live_server, **desk).new_page()
    manager = browser.new_context(base_url=live_server, **desk).new_page()

    register_with_the_mailbox(patient, mailbox, EMAIL, PASSWORD)
    ask_to_be_linked(patient, person)
    approve_the_link(reception, person["family_name"])
    patient.goto("/home")
    assert f"Hello {person['given_name']}" in patient.inner_text("h1")

    with cancelling_up_to_an_hour_before(manager):
        sign_in(other, OTHER_PATIENT)
        other.wait_for_url("**/home")
        try:
            guard = book_first_time_after(other, None, "Dressing change")
            freed = book_first_time_after(other, guard, "Ear syringing")
            later = book_first_time_after(patient, freed, "Blood pressure check")
            assert freed < later

            patient.goto("/appointments")
            patient.click(f".app-appointment a:has-text('{uk_day(later)} at {uk_time(later)}')")
            patient.click("a:has-text('Ask for an earlier time')")
            patient.wait_for_url("**/appointments/earlier?replacing=*")
            assert patient.locator("h1").inner_text() == "Ask for an earlier appointment"
            assert uk_datetime(later) in patient.inner_text("main")
            patient.get_by_label("Type of appointment").select_option(TYPE)
            days = patient.locator("fieldset", has_text="Which days can you come?").locator("input[name=weekdays]")
            parts = patient.locator("fieldset", has_text="What times can you come?").locator("input[name=parts]")
            assert days.count() == 7 and parts.count() == 3
            for box in [*days.all(), *parts.all()]:
                box.check()
            furthest = patient.locator("select[name=weeks] option").last.get_attribute("value")
            patient.get_by_label("How far ahead can you come?").select_option(furthest)
            patient.click("button:has-text('Put me on the list')")
            patient.wait_for_url("**/appointments/earlier")
            assert "You are on the list for an earlier appointment" in patient.inner_text(".app-flash--success")
            main = patient.inner_text("main")
            assert "You are on the list" in main and f"{TYPE}, any day, any time of day" in main
            assert patient.locator("button:has-text('Leave the list')").count() == 1

            assert offer_round(live_database, live_server) == 0, "a time was offered before anyone cancelled"
            cancel(other, freed, "Feeling better")
            assert offer_round(live_database, live_server) == 1

            message = newest_message(mailbox, EMAIL, "An earlier GP appointment is free")
            words = message.inner_text()
            assert when(freed) in words and "We are holding it for you until" in words
            assert f"If you accept, your appointment on {when(later)} will be cancelled." in words
            link = re.search(re.escape(live_server) + r"/appointments/offers/\d+", words)
            assert link, f"no link to the offer in the email: {words}"
            screenshot(mailbox, "earlier-offer-mailbox-phone")
            assert mailbox.evaluate("document.documentElement.scrollWidth") <= 360

            patient.goto("/appointments")  # without the email, the list says so too
            held = patient.inner_text(".app-earlier")
            assert "An earlier appointment is being held for you" in held and uk_datetime(freed) in held
            offer_path = urlsplit(link.group(0)).path
            assert patient.locator("a:has-text('See the earlier appointment')").get_attribute("href") == offer_path

            patient.goto(link.group(0))  # the link in the email
            assert patient.locator("h1").inner_text() == "An earlier appointment is free"
            main = patient.inner_text("main")
            assert uk_day(freed) in main and uk_time(freed) in main and "We are holding it for you until" in main
            assert f"If you accept, your appointment on {uk_datetime(later)} will be cancelled." in main
            screenshot(patient, "earlier-offer-phone")
            assert patient.evaluate("document.documentElement.scrollWidth") <= 360, "the offer scrolls sideways"
            patient.get_by_label("Why do you need this appointment?").fill("Blood pressure check")
            patient.click("button:has-text('Accept this appointment')")
            patient.wait_for_url("**/booked*")
            flash = patient.inner_text(".app-flash--success")
            assert "Your earlier appointment is booked" in flash and f"{uk_datetime(later)} is cancelled" in flash

            patient.goto("/appointments")
            upcoming = patient.locator(".app-appointment")
            assert upcoming.count() == 1
            assert f"{uk_day(freed)} at {uk_time(freed)}" in upcoming.first.inner_text()
            past = patient.locator("table tr", has_text=f"{uk_date(later)}, {uk_time(later)}")
            assert "Cancelled" in past.inner_text()

            cancel(other, guard, "Not needed now")  # the other patient is left as the demo made them

            manager.goto("/manage/reports")
            filled = manager.locator("tr", has_text="Slots filled by earlier-appointment offers").locator("td").first
            assert filled.inner_text().split()[-1] == "1"
        finally:
            with suppress(Exception):  # after a failure: nothing held or booked that another test would trip on
                tidy_up(other, patient)
