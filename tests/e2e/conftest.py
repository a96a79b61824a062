"""Browser tests: the real app under gunicorn on a seeded database, driven in Debian's Chromium.

The server runs as its own process with its own SQLite database, built with `flask db upgrade` and
`flask demo seed`, exactly as `make run` does. Playwright drives /usr/bin/chromium (never a downloaded
browser). Screenshots go to the folder in PATIENT_ONLINE_SCREENSHOTS (default: test-results/screenshots).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT
from tests.helpers import totp_now
from tests.system.servers import gateway_env, gunicorn, prepare_database

CHROMIUM = os.environ.get("PATIENT_ONLINE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(os.environ.get("PATIENT_ONLINE_SCREENSHOTS", PROJECT_ROOT / "test-results" / "screenshots"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _flask(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture(scope="session")
def live_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of the live server's database, so tests can read what a person would find in their inbox."""
    return f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'e2e.sqlite3'}"


def latest_code(database_url: str, to: str) -> str:
    """The newest 6-digit code the local notifier sent to ``to`` (as if read from the email)."""
    import re

    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as conn:
        body = conn.execute(
            text('SELECT body FROM notification WHERE "to" = :to ORDER BY id DESC LIMIT 1'), {"to": to}
        ).scalar_one()
    engine.dispose()
    found = re.search(r"\b(\d{6})\b", body)
    assert found, "no code in the message"
    return found.group(1)


@pytest.fixture(scope="session")
def live_server(live_database: str) -> Iterator[str]:
    """Base URL of a gunicorn-served gateway with the demo seeded, as `make run` would build it."""
    env = gateway_env(live_database)
    prepare_database(env)
    with gunicorn(env, workers=2, threads=4) as base:
        yield base


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is needed for browser tests: {CHROMIUM} is missing (make test installs Debian's chromium)"
        )
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, live_server: str) -> Iterator[Any]:
    """A fresh browser context (no cookies) on a desktop-sized window."""
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def phone(browser: Any, live_server: str) -> Iterator[Any]:
    """A fresh browser context the size of a small phone (360 pixels wide)."""
    context = browser.new_context(base_url=live_server, viewport={"width": 360, "height": 740}, is_mobile=True)
    tab = context.new_page()
    yield tab
    context.close()


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Any, email: str, password: str = "Demo-gateway-2026!") -> None:
    """Sign in through the real pages, typing the current authenticator code."""
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button:has-text('Continue')")
    page.fill("input[name=code]", totp_now(email))
    page.click("button:has-text('Continue')")
