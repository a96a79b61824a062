"""Sessions end after a period of inactivity (the limit is shortened here to about a second)."""

from __future__ import annotations

import time
from typing import Any

import pytest


@pytest.fixture
def settings() -> dict[str, Any]:
    return {"SESSION_IDLE_MINUTES": 0.02}  # about a second


def test_sessions_end_after_inactivity(client: Any, sign_in: Any) -> None:
    sign_in("patient.y02001@example.com")
    assert client.get("/home").status_code == 200
    time.sleep(1.5)
    response = client.get("/home")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
