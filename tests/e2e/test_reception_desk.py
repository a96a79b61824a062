"""Reception at the desk in a real browser: find Grace Thompson (registered, not yet online) by surname and date
of birth, check her identity with documents, issue a linkage letter (a second one only after confirming the
first stops working), and see it on the reception home."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PROJECT_ROOT

from .conftest import sign_in

pytestmark = pytest.mark.browser

RESULTS = PROJECT_ROOT / "test-results"


def grace(database_url: str) -> dict[str, Any]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        row = (
            conn.execute(
                text(
                    "SELECT nhs_number, date_of_birth, address FROM demo_patient WHERE practice_ods = 'Y02001' "
                    "AND given_name = 'Grace' AND family_name = 'Thompson'"
                )
            )
            .mappings()
            .one()
        )
    engine.dispose()
    return dict(row)


def shot(page: Any, name: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def issue_letter(page: Any, replacing: bool) -> None:
    page.click("a:has-text('Issue a linkage letter')")
    page.check("input[name=check-method][value=documents]")
    page.check("input[name=check-documents][value=passport]")
    page.check("input[name=check-documents][value=utility_bill]")
    page.fill("textarea[name=check-notes]", "Passport and gas bill seen at the desk")
    if replacing:
        assert "This replaces an earlier letter" in page.inner_text("main")
        page.click("button:has-text('Record the check and issue the letter')")
        assert "Confirm that the earlier letter will stop working" in page.inner_text("main")
        page.check("input[name=check-replace]")
    page.click("button:has-text('Record the check and issue the letter')")
    assert page.locator(".app-secret").inner_text().strip()


def test_reception_finds_grace_and_issues_her_a_letter(page: Any, live_database: str) -> None:
    person = grace(live_database)
    born = person["date_of_birth"]
    year, month, day = (int(part) for part in str(born).split("-"))
    sign_in(page, "reception.y02001@example.com")
    page.wait_for_url("**/reception/**")

    page.goto("/reception/patients")
    page.fill("input[name=q]", "thompson")
    page.fill("input[name=born-day]", str(day))
    page.fill("input[name=born-month]", str(month))
    page.fill("input[name=born-year]", str(year))
    page.click("main button:has-text('Search')")
    results = page.inner_text("main table")
    assert "Grace Thompson" in results and "Not using online services" in results and "Female" in results
    page.locator("main table").get_by_text("Grace Thompson").first.click()
    page.wait_for_url("**/reception/patients/*")
    main = page.inner_text("main")
    assert "Check who you are speaking to" in main and person["address"] in main
    shot(page, "reception-patient-1280")

    issue_letter(page, replacing=False)
    page.goto("/reception/")
    page.get_by_role("link", name="Grace Thompson").first.click()
    issue_letter(page, replacing=True)

    page.goto("/reception/")
    letters = page.inner_text("#letters + ul")
    assert "Grace Thompson" in letters
    assert "Not connected" not in page.inner_text("main") and "circuit" not in page.inner_text("main")
    shot(page, "reception-home-1280")
