"""Download your data and the account closure page in a real browser on a small phone: the ZIP arrives with its
readable summary, and the pages fit 360 pixels without scrolling sideways."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

PATIENT = "patient2.y02002@example.com"


def _fits(page: Any) -> bool:
    return bool(page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"))


def test_a_patient_downloads_their_data_on_a_phone(phone: Any) -> None:
    sign_in(phone, PATIENT)
    phone.goto("/account")
    phone.click("a:has-text('Download your data')")
    assert phone.locator("h1").inner_text() == "Download your data"
    assert _fits(phone)
    screenshot(phone, "my-data-phone")
    with phone.expect_download() as arrival:
        phone.click("button:has-text('Download your data')")
    download = arrival.value
    assert download.suggested_filename.startswith("my-gp-online-data-") and download.suggested_filename.endswith(".zip")
    with open(download.path(), "rb") as handle, zipfile.ZipFile(io.BytesIO(handle.read())) as archive:
        names = set(archive.namelist())
        summary = archive.read("summary.html").decode()
    assert {"summary.html", "data.json"} <= names
    assert PATIENT in summary


def test_the_close_account_page_says_what_happens_and_fits_a_phone(phone: Any) -> None:
    sign_in(phone, PATIENT)
    phone.goto("/account")
    phone.click("a:has-text('close your online account')")
    assert phone.locator("h1").inner_text() == "Close your online account"
    assert phone.locator("text=You cannot undo this").is_visible()
    assert _fits(phone)
    screenshot(phone, "close-account-phone")
    phone.click("a:has-text('Keep my account')")
    assert phone.locator("h1").inner_text() == "Your account"


def test_the_statements_fit_a_phone(phone: Any) -> None:
    for url, name in (("/privacy", "privacy"), ("/cookies", "cookies"), ("/accessibility", "accessibility")):
        phone.goto(url)
        assert _fits(phone), url
        screenshot(phone, f"statement-{name}-phone")
