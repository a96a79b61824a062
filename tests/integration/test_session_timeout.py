"""The timeout warning's server side (WCAG 2.2.1): every signed-in page explains the idle limit and carries the
warning's settings; "Stay signed in" counts as activity; a warning left unanswered ends the session."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

PATIENT = "patient.y02001@example.com"
STAFF = "reception.y02001@example.com"


@pytest.fixture
def settings() -> dict[str, Any]:
    return {"SESSION_IDLE_MINUTES": 0.05, "SESSION_WARNING_SECONDS": 2}  # 3 seconds, warned 2 seconds before


def _warning(page: str) -> dict[str, str]:
    found = re.search(r'<div class="app-timeout" data-module="app-timeout-warning"([^>]*)>', page)
    assert found, "no timeout warning on the page"
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', found.group(1)))


def test_signed_in_pages_explain_the_limit_and_carry_the_warning(client: Any, sign_in: Any) -> None:
    assert "app-timeout" not in client.get("/login").get_data(as_text=True), "nobody signed in: no warning"
    sign_in(PATIENT)
    page = client.get("/home").get_data(as_text=True)
    assert "For your security, we sign you out after 3 seconds without activity." in page
    warning = _warning(page)
    assert 0 < int(warning["seconds-left"]) <= 3 and warning["warning-seconds"] == "2"
    assert warning["keep-alive-url"] == "/session/stay-signed-in"
    assert 'role="alertdialog" aria-modal="true"' in page and "Stay signed in" in page
    assert 'aria-live="assertive"' in page


def test_staff_pages_carry_the_warning_too(client: Any, sign_in: Any) -> None:
    sign_in(STAFF)
    assert _warning(client.get("/reception/").get_data(as_text=True))


def test_stay_signed_in_keeps_the_session_past_the_limit(client: Any, sign_in: Any) -> None:
    sign_in(PATIENT)
    token = client.csrf_token("/home")
    refused = client.post("/session/stay-signed-in")
    assert refused.status_code == 400, "CSRF-protected"
    for _ in range(3):  # 6 seconds in all with no page, only "Stay signed in" every 2 seconds
        time.sleep(2)
        stay = client.post("/session/stay-signed-in", headers={"X-CSRFToken": token})
        assert stay.status_code == 200 and stay.get_json() == {"signed_in": True, "seconds_left": 3}
    assert client.get("/home").status_code == 200


def test_stay_signed_in_after_the_limit_says_the_session_has_ended(client: Any, sign_in: Any) -> None:
    sign_in(PATIENT)
    token = client.csrf_token("/home")
    time.sleep(3.5)
    late = client.post("/session/stay-signed-in", headers={"X-CSRFToken": token})
    assert late.status_code == 401 and late.get_json() == {"signed_in": False}
    assert client.get("/home").status_code == 302


def test_an_unanswered_warning_signs_out_and_says_so(client: Any, sign_in: Any) -> None:
    sign_in(PATIENT)
    ended = client.submit("/session/timed-out", page="/home")
    assert ended.status_code == 302 and ended.headers["Location"] == "/signed-out"
    page = client.get("/signed-out").get_data(as_text=True)
    assert "<title>You have been signed out" in page and "<h1>You have been signed out</h1>" in page
    assert "did not do anything for 3 seconds" in page
    assert client.get("/home").status_code == 302, "really signed out"
