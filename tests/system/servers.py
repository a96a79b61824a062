"""Run the gateway as production does, in separate processes: migrate, seed, serve with gunicorn.

Shared by the browser tests and the system tests (slow links, several nodes).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.conftest import PROJECT_ROOT
from tests.helpers import totp_now

DEMO_PASSWORD = "Demo-gateway-2026!"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gateway_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PATIENT_ONLINE_DATABASE_URL": database_url,
        "PATIENT_ONLINE_SECRET_KEY": "system-test-only-not-secret",
        "PATIENT_ONLINE_ENV": "development",
        **extra,
    }


def flask(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `flask --app app ARGS` as an operator would; raises with its output when it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise AssertionError(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def prepare_database(env: dict[str, str]) -> None:
    flask(env, "db", "upgrade")
    flask(env, "demo", "seed")


def use_gpconnect(env: dict[str, str], ods: str, base_url: str, *extra: str) -> None:
    """Point a practice at the GP Connect provider simulator, as an administrator would."""
    from tools.gpconnect_simulator import PROVIDER_ASID, PROVIDER_ODS

    options = [
        f"base_url={base_url}",
        f"provider_asid={PROVIDER_ASID}",
        "consumer_asid=200000000359",
        f"provider_ods={PROVIDER_ODS}",
        *extra,
    ]
    flask(env, "practice", "set-adapter", ods, "gpconnect", *[a for o in options for a in ("--option", o)])


@contextmanager
def gunicorn(env: dict[str, str], workers: int = 2, threads: int = 4, port: int | None = None) -> Iterator[str]:
    """Serve the app with gunicorn (threaded workers); yields the base URL; stops it afterwards."""
    port = port or free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--worker-class",
            "gthread",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "app:app",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError("the gateway did not start under gunicorn within 60 seconds")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def signed_in_client(base: str, email: str, password: str = DEMO_PASSWORD, **kwargs: Any) -> httpx.Client:
    """An HTTP client signed in as the demo account, through the real forms (CSRF token and TOTP code)."""
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=30, **kwargs)
    submit(client, "/login", {"email": email, "password": password})
    response = submit(client, "/login/code", {"code": totp_now(email)})
    assert response.status_code == 302, f"sign-in failed for {email}"
    return client


def submit(client: httpx.Client, url: str, data: dict[str, str], page: str | None = None) -> httpx.Response:
    """POST a form with the CSRF token read from its page, as a browser does."""
    found = CSRF_RE.search(client.get(page or url).text)
    assert found, f"no CSRF token on {page or url}"
    return client.post(url, data={**data, "csrf_token": found.group(1)})
