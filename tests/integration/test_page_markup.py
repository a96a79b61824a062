"""Page markup every person relies on (issue 21): the title says "Error: " when a page shows errors, error summary
links land on a real field (the first radio, the day of a date), the header logo is named by what it shows, and
the printable record has its print button. The browser test (tests/e2e/test_accessibility.py) runs axe-core over
the whole site; these check the same rules in seconds, on both databases."""

from __future__ import annotations

import re
from typing import Any

from tests.helpers import sign_in

PATIENT = "patient.y02001@example.com"


def _title(page: str) -> str:
    found = re.search(r"<title>(.*?)</title>", page, re.S)
    assert found, "no title"
    return found.group(1).strip()


def _summary_targets(page: str) -> list[str]:
    summary = page.split("nhsuk-error-summary__list", 1)[1].split("</ul>", 1)[0]
    return re.findall(r'href="#([^"]+)"', summary)


def _is_field(page: str, element_id: str) -> bool:
    return re.search(rf'<(input|select|textarea)\b[^>]*\bid="{re.escape(element_id)}"', page) is not None


def test_a_page_with_errors_says_error_in_its_title_and_links_to_each_field(client: Any) -> None:
    sign_in(client, PATIENT)
    page = client.submit("/proxy/request", {}).get_data(as_text=True)

    assert _title(page).startswith("Error: "), _title(page)
    targets = _summary_targets(page)
    assert "basis-1" in targets and "date_of_birth-day" in targets, targets  # not the wrappers #basis, #date_of_birth
    assert all(_is_field(page, target) for target in targets), targets


def test_a_page_without_errors_has_a_plain_title(client: Any) -> None:
    sign_in(client, PATIENT)
    page = client.get("/proxy/request").get_data(as_text=True)

    assert not _title(page).startswith("Error"), _title(page)


def test_the_sign_in_error_title_and_summary(client: Any) -> None:
    page = client.submit("/login", {}).get_data(as_text=True)

    assert _title(page).startswith("Error: Sign in")
    assert all(_is_field(page, target) for target in _summary_targets(page))


def test_the_header_logo_link_is_named_by_what_it_shows(client: Any) -> None:
    sign_in(client, PATIENT)
    page = client.get("/account").get_data(as_text=True)

    logo = re.search(r'<a class="nhsuk-header__service-logo"[^>]*>', page)
    assert logo and "aria-label" not in logo.group(0), "an aria-label would hide the practice name it shows"
    assert "Riverside Medical Centre" in page.split('class="nhsuk-header__service-logo"', 1)[1].split("</a>", 1)[0]
    assert re.search(r'<a class="nhsuk-back-link" href="/home">', page), "the account page has a back link"


def test_the_printable_record_has_a_print_button_and_a_matching_title(client: Any) -> None:
    sign_in(client, PATIENT)
    page = client.get("/record/download").get_data(as_text=True)

    assert re.search(r"<button[^>]*data-app-print", page), "a print button for app.js"
    h1 = re.search(r"<h1>(.*?)</h1>", page).group(1)  # type: ignore[union-attr]
    assert _title(page).startswith(h1 + " – ")
    assert re.search(r'<a class="nhsuk-back-link app-no-print" href="/record">', page)
