"""The app shell: security headers, error pages, health endpoints, settings, migrations, demo seed."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from sqlalchemy import func, select

from patient_online import create_app
from patient_online.models import Practice
from patient_online.settings import UnsafeSettings


def test_home_page_is_nhs_styled_and_secure(client: Any) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "nhsuk-header" in html and "Skip to main content" in html and "nhsuk-footer" in html
    assert "<script>" not in html and "onclick" not in html  # no inline script anywhere
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # only in production


def test_the_skip_link_and_footer_are_rendered_once_and_reused(client: Any, app: Any) -> None:
    first = client.get("/").get_data(as_text=True)
    parts = dict(app.extensions["fixed_parts"])
    assert set(parts) == {"skip_link", "footer"}
    later = client.get("/help").get_data(as_text=True)
    assert app.extensions["fixed_parts"] == parts and all(
        app.extensions["fixed_parts"][n] is p for n, p in parts.items()
    )
    for html in (first, later):
        assert 'href="#maincontent"' in html and 'href="/accessibility"' in html and html.count("nhsuk-footer") > 1


def test_session_cookie_flags(client: Any) -> None:
    response = client.get("/login")
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [("/no-such-page", 404, "Page not found"), ("/reception/", 302, ""), ("/admin/practices", 302, "")],
)
def test_error_pages(client: Any, path: str, status: int, words: str) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert words in response.get_data(as_text=True)


def test_expired_csrf_token_has_its_own_page(client: Any) -> None:
    response = client.post("/login", data={"email": "a@example.com", "password": "x", "csrf_token": "stale"})
    assert response.status_code == 400
    assert "open for too long" in response.get_data(as_text=True)


def test_healthz_and_readyz(client: Any, session: Any) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    body = ready.get_json()
    assert body["database"] == "ok"
    assert set(body["practices"]) == {"Y02001", "Y02002"}
    assert all(p["link"] == "up" for p in body["practices"].values())


def test_request_logs_are_json_without_personal_data(client: Any) -> None:
    from patient_online.logging_setup import JsonFormatter

    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(JsonFormatter().format(record))

    logger = logging.getLogger("patient_online")
    handler = Capture()
    logger.addHandler(handler)
    try:
        client.get("/login?next=/record&q=9990010005+Smith")
    finally:
        logger.removeHandler(handler)
    assert len(lines) == 1, "one log line per request"
    data = json.loads(lines[0])
    assert data["request_id"] and data["path"] == "/login" and data["status"] == 200
    assert "9990010005" not in lines[0] and "Smith" not in lines[0]


@pytest.mark.parametrize(
    ("overrides", "fix"),
    [
        ({"SECRET_KEY": "dev-only-not-secret"}, "PATIENT_ONLINE_SECRET_KEY"),
        ({"DEMO_DATA_ENABLED": True}, "PATIENT_ONLINE_DEMO_DATA_ENABLED"),
        ({"SESSION_COOKIE_SECURE": False}, "PATIENT_ONLINE_SESSION_COOKIE_SECURE"),
    ],
)
def test_production_refuses_unsafe_settings(overrides: dict[str, Any], fix: str) -> None:
    safe = {
        "ENV": "production",
        "SECRET_KEY": "x" * 40,
        "DEMO_DATA_ENABLED": False,
        "SESSION_COOKIE_SECURE": True,
        "DATABASE_URL": "postgresql+psycopg://u@127.0.0.1/x",
        "ADAPTER_SECRET_KEY": "k" * 44,
        "NOTIFIER": "notify",
        "NOTIFY_API_KEY": "test-key",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
    }
    create_app(safe)  # a safe configuration starts
    with pytest.raises(UnsafeSettings, match=fix):
        create_app({**safe, **overrides})


def test_production_sends_hsts_and_secure_cookies(seeded_engine: Any) -> None:
    app = create_app(
        {
            "ENV": "production",
            "SECRET_KEY": "x" * 40,
            "DEMO_DATA_ENABLED": False,
            "SESSION_COOKIE_SECURE": True,
            "DATABASE_ENGINE": seeded_engine,
            "DATABASE_URL": "postgresql+psycopg://u@127.0.0.1/x",
            "ADAPTER_SECRET_KEY": "k" * 44,
            "NOTIFIER": "notify",
            "NOTIFY_API_KEY": "test-key",
            "REDIS_URL": "redis://127.0.0.1:6379/15",
        }
    )
    response = app.test_client().get("/login")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Secure" in response.headers.get("Set-Cookie", "")


def test_environment_variables_override_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATIENT_ONLINE_SESSION_IDLE_MINUTES", "7")
    app = create_app({"SECRET_KEY": "test-only-not-secret"})
    assert app.config["SESSION_IDLE_MINUTES"] == 7


def test_demo_seed_is_repeatable(app_ctx: Any, session: Any) -> None:
    from patient_online.adapters.demo.models import DemoPatient, DemoSlot
    from patient_online.adapters.demo.seed import seed

    before = [session.scalar(select(func.count()).select_from(t)) for t in (Practice, DemoPatient, DemoSlot)]
    accounts = seed(session)
    after = [session.scalar(select(func.count()).select_from(t)) for t in (Practice, DemoPatient, DemoSlot)]
    assert before == after
    roles = {a["role"] for a in accounts}
    assert roles == {"patient", "receptionist", "practice_manager", "system_admin"}
    assert any(a.get("acts_for") for a in accounts)


def test_client_address_comes_from_the_trusted_proxy_only(seeded_engine: Any, connection: Any) -> None:
    from tests.helpers import FormClient

    settings = {"SECRET_KEY": "test-only-not-secret", "DATABASE_ENGINE": seeded_engine}
    behind = FormClient(create_app({**settings, "TRUSTED_PROXIES": 1}).test_client())
    for n in range(10):  # a different account each time: the per-address limit, not the per-account wait
        behind.submit(
            "/login",
            {"email": f"x{n}@example.com", "password": "wrong-password"},
            headers={"X-Forwarded-For": "203.0.113.7"},
        )
    blocked = behind.submit(
        "/login", {"email": "y@example.com", "password": "wrong"}, headers={"X-Forwarded-For": "203.0.113.7"}
    )
    other = behind.submit(
        "/login", {"email": "y@example.com", "password": "wrong"}, headers={"X-Forwarded-For": "203.0.113.8"}
    )
    assert blocked.status_code == 429 and other.status_code == 200
