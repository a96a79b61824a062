"""Sessions end after a period of inactivity (the limit is shortened here to about a second)."""

from __future__ import annotations

import time
from typing import Any

import pytest


@pytest.fixture
def settings() -> dict[str, Any]:
    return {"SESSION_IDLE_MINUTES": 0.02}  # 1.2 seconds


def test_sessions_end_after_inactivity(client: Any, sign_in: Any) -> None:
    sign_in("patient.y02001@example.com")
    assert client.get("/home").status_code == 200
    time.sleep(1.5)
    response = client.get("/home")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_sessions_in_use_stay_signed_in_past_the_idle_limit(client: Any, sign_in: Any) -> None:
    sign_in("patient.y02001@example.com")
    for _ in range(5):  # 2.5 s in all, never more than 0.5 s without a page
        time.sleep(0.5)
        assert client.get("/home").status_code == 200
