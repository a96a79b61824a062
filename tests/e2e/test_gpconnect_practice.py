"""A practice switched to GP Connect (the local provider simulator) is used by a patient in the browser:
reception issues a linkage letter for a patient found in the provider, the patient links, sees their
appointments with clinician and place, books one from the provider's slots, changes its reason, cancels it,
and reads their vaccinations and an allergy list the practice's system sent empty, with its reason."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.system.servers import gateway_env, gunicorn, prepare_database, use_gpconnect
from tools.gpconnect_simulator import ALICE, start_simulator

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def gpconnect_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    folder: Path = tmp_path_factory.mktemp("gpc")
    env = gateway_env(f"sqlite:///{folder / 'gpc.sqlite3'}")
    prepare_database(env)
    simulator_url, simulator = start_simulator()
    try:
        use_gpconnect(env, "Y02002", simulator_url)
        with gunicorn(env, workers=1, threads=8) as base:
            yield base, simulator
    finally:
        simulator.stop()


def test_patient_uses_a_gp_connect_practice(browser: Any, gpconnect_gateway: tuple[str, Any]) -> None:
    base, simulator = gpconnect_gateway
    manager = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900}).new_page()
    sign_in(manager, "manager.y02002@example.com")
    manager.goto("/manage/rules")  # the types offered come from the new clinical system's appointment book
    manager.check("input[value='General GP Appointment']")
    manager.check("input[value='Nurse Appointment']")
    manager.check("input[name=cancellation_allowed][value=yes]")  # changes online up to an hour before
    manager.fill("input[name=cancellation_cutoff_hours]", "1")
    manager.locator("button:has-text('Save')").first.click()
    assert "There is a problem" not in manager.inner_text("main")

    staff = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900}).new_page()
    sign_in(staff, "reception.y02002@example.com")
    staff.goto(f"/reception/patients?q={ALICE}")
    staff.click("table a")
    staff.click("a:has-text('Issue a linkage letter')")
    staff.check("input[name=check-method][value=documents]")
    staff.check("input[name=check-documents][value=passport]")
    staff.check("input[name=check-documents][value=utility_bill]")
    staff.click("button:has-text('Record the check and issue the letter')")
    letter = staff.inner_text("main")
    account_id = re.search(r"Account ID\s+(\S+)", letter).group(1)
    key = staff.inner_text(".app-secret")

    patient = browser.new_context(base_url=base, viewport={"width": 390, "height": 844}).new_page()
    sign_in(patient, "newpatient.y02002@example.com")
    patient.goto("/link")
    patient.fill("input[name=letter-ods_code]", "Y02002")
    patient.fill("input[name=letter-account_id]", account_id)
    patient.fill("input[name=letter-linkage_key]", key)
    patient.click("button:has-text('Link with my letter')")
    screenshot(patient, "gpconnect-after-link")
    assert "Hello" in patient.inner_text("h1"), patient.inner_text("main")[:600] + f" {account_id} {key}"

    before = simulator.state.snapshot()["appointments"]
    patient.goto("/appointments/slots")
    screenshot(patient, "gpconnect-slots-phone")
    patient.locator("a[href^='/appointments/slots/']").first.click()
    patient.fill("textarea[name=reason]", "Follow-up on my blood pressure")
    patient.click("button:has-text('Book')")
    assert "booked" in patient.inner_text("h1").lower()
    screenshot(patient, "gpconnect-booked-phone")
    assert simulator.state.snapshot()["appointments"] == before + 1, "the booking reached the GP Connect provider"

    # The list names the clinician and the place, as the provider's Practitioner and Location resources say.
    patient.goto("/appointments")
    card = patient.locator(".app-appointment").first
    with_whom = card.locator(".app-with").inner_text()
    assert "Dr" in with_whom and "Not known yet" not in with_whom, with_whom
    assert card.locator(".app-where").inner_text().strip() not in ("Where:", "Where: "), card.inner_text()
    screenshot(patient, "gpconnect-appointments-phone")

    # Change the reason: the form, a check of old and new, then the confirmation.
    card.locator("a:has-text('Change the reason')").click()
    assert patient.inner_text("h1") == "Change the reason for your appointment"
    patient.fill("textarea[name=reason]", "Blood pressure and a repeat of my tablets")
    patient.click("button:has-text('Continue')")
    assert patient.inner_text("h1") == "Check the new reason"
    assert "Follow-up on my blood pressure" in patient.inner_text("main")
    screenshot(patient, "gpconnect-amend-check-phone")
    patient.click("button:has-text('Change the reason')")
    main = patient.inner_text("main")
    assert "has been changed" in main and "Blood pressure and a repeat of my tablets" in main, main[:600]
    screenshot(patient, "gpconnect-amended-phone")

    # Cancel it.
    patient.click("a:has-text('Cancel appointment')")
    patient.click("button:has-text('Cancel appointment')")
    assert "has been cancelled" in patient.inner_text("main")
    patient.goto("/appointments")
    assert "Cancelled" in patient.inner_text("main")

    # The record: vaccinations, and an allergy list the provider sends empty with its reason.
    alice = simulator.state.patients[ALICE]
    simulator.state.patients[ALICE] = replace(alice, record=tuple(e for e in alice.record if e.kind != "allergy"))
    try:
        patient.goto("/record")
        assert "record" in patient.inner_text("h1").lower()
        patient.goto("/record/immunisations")
        vaccinations = patient.inner_text("main")
        assert "Influenza vaccine" in vaccinations and "Given" in vaccinations, vaccinations[:600]
        assert "Shingles vaccine" in vaccinations and "Not given" in vaccinations, vaccinations[:600]
        assert "Patient declined" in vaccinations and "UNK" not in vaccinations
        screenshot(patient, "gpconnect-record-immunisations-phone")
        patient.goto("/record/allergies")
        allergies = patient.inner_text("main")
        assert "Nothing to show: nothing has been recorded." in allergies, allergies[:600]
        assert "There are no allergies" not in allergies
        screenshot(patient, "gpconnect-record-allergies-phone")
    finally:
        simulator.state.patients[ALICE] = alice
