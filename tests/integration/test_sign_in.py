"""Signing in: password, then a second factor, for every audience; sessions end when they should."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize(
    ("email", "landing"),
    [
        ("patient.y02001@example.com", "/home"),
        ("reception.y02001@example.com", "/reception/"),
        ("manager.y02001@example.com", "/manage/"),
        ("admin@example.com", "/admin/practices"),
    ],
)
def test_each_audience_signs_in_and_lands_on_its_pages(client: Any, sign_in: Any, email: str, landing: str) -> None:
    response = sign_in(email)
    assert response.headers["Location"].endswith(landing)
    assert client.get(landing).status_code == 200


def test_a_page_between_refreshes_sends_no_new_session_cookie(client: Any, sign_in: Any) -> None:
    sign_in("patient.y02001@example.com")
    client.get("/home")
    assert "Set-Cookie" not in client.get("/home").headers  # the idle clock was noted under a minute ago
