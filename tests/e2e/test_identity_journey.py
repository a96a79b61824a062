"""A patient registers, asks to be linked, a receptionist checks their identity, and the patient signs in
again to find their practice's services: the whole identity journey in a real browser."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, text

from .conftest import latest_code, screenshot, sign_in

pytestmark = pytest.mark.browser

EMAIL = "jo.browser@example.com"
PASSWORD = "violet-harbour-sketch-19"


def newcomer_record(database_url: str) -> dict[str, Any]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        row = (
            conn.execute(
                text(
                    "SELECT nhs_number, given_name, family_name, date_of_birth, postcode FROM demo_patient "
                    "WHERE id = 'Y02001-P020'"
                )
            )
            .mappings()
            .one()
        )
    engine.dispose()
    return dict(row)


def test_register_request_link_approve_and_use_services(browser: Any, live_server: str, live_database: str) -> None:
    person = newcomer_record(live_database)
    patient = browser.new_context(base_url=live_server, viewport={"width": 390, "height": 844}).new_page()

    patient.goto("/register")
    patient.fill("input[name=email]", EMAIL)
    patient.fill("input[name=password]", PASSWORD)
    patient.click("button:has-text('Create account')")
    patient.fill("input[name=code]", latest_code(live_database, EMAIL))
    patient.click("button:has-text('Confirm email address')")
    screenshot(patient, "identity-setup")
    patient.click("button:has-text('Send me codes by email')")
    patient.fill("input[name=code]", latest_code(live_database, EMAIL))
    patient.click("button:has-text('Continue')")
    patient.click("a:has-text('Link your account to your GP record')")

    born = str(person["date_of_birth"])
    year, month, day = born.split("-")
    patient.select_option("select[name=request-practice]", "Y02001")
    patient.fill("input[name=request-nhs_number]", person["nhs_number"])
    patient.fill("input[name=request-given_name]", person["given_name"])
    patient.fill("input[name=request-family_name]", person["family_name"])
    patient.fill("input[name=request-date_of_birth-day]", day)
    patient.fill("input[name=request-date_of_birth-month]", month)
    patient.fill("input[name=request-date_of_birth-year]", year)
    patient.fill("input[name=request-postcode]", person["postcode"])
    screenshot(patient, "identity-link-form")
    patient.click("button:has-text('Send request to my practice')")
    assert "Request sent to your GP practice" in patient.inner_text("h1")
    patient.click("button:has-text('Sign out')")

    reception = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900}).new_page()
    sign_in(reception, "reception.y02001@example.com")
    reception.click("a:has-text('Identity checks')")
    reception.click(f"a:has-text('Check'):has-text('{person['family_name']}')")
    screenshot(reception, "identity-reception-check")
    reception.check("input[value=documents]")
    reception.check("input[name=approve-documents][value=passport]")
    reception.check("input[name=approve-documents][value=utility_bill]")
    reception.click("button:has-text('Approve and link')")
    assert "is verified and linked" in reception.inner_text("main")

    patient.goto("/login")
    patient.fill("input[name=email]", EMAIL)
    patient.fill("input[name=password]", PASSWORD)
    patient.click("button:has-text('Continue')")
    patient.fill("input[name=code]", latest_code(live_database, EMAIL))
    patient.click("button:has-text('Continue')")
    assert f"Hello {person['given_name']}" in patient.inner_text("h1")
    assert "Riverside Medical Centre" in patient.inner_text("main")
    screenshot(patient, "identity-linked-home")
