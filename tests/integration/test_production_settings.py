"""Production refuses to start with a protection switched off, saying which setting to fix in one line (no
traceback), whether started by `flask` or by gunicorn (which loads app.py the same way)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.conftest import PROJECT_ROOT

SAFE = {
    "PATIENT_ONLINE_ENV": "production",
    "PATIENT_ONLINE_SECRET_KEY": "s" * 48,
    "PATIENT_ONLINE_DEMO_DATA_ENABLED": "false",
    "PATIENT_ONLINE_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "PATIENT_ONLINE_ADAPTER_SECRET_KEY": Fernet.generate_key().decode(),
    "PATIENT_ONLINE_NOTIFIER": "notify",
    "PATIENT_ONLINE_NOTIFY_API_KEY": "test-key",
    "PATIENT_ONLINE_REDIS_URL": "redis://127.0.0.1:6379/15",
    "PATIENT_ONLINE_SESSION_COOKIE_SECURE": "true",
}


def environment(**changes: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATIENT_ONLINE_")}
    env.update(SAFE)
    for name, value in changes.items():
        env[f"PATIENT_ONLINE_{name}"] = value
    return env


def flask_routes(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "routes"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_safe_production_settings_start() -> None:
    started = flask_routes(environment())
    assert started.returncode == 0, started.stderr
    assert "/link" in started.stdout


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("NOTIFIER", "outbox"),
        ("REDIS_URL", ""),
        ("RATELIMIT_STORAGE_URI", "memory://"),
        ("WTF_CSRF_ENABLED", "false"),
        ("RATELIMIT_ENABLED", "false"),
        ("SESSION_COOKIE_HTTPONLY", "false"),
        ("SESSION_COOKIE_SECURE", "false"),
        ("SESSION_COOKIE_SAMESITE", "None"),
        ("SESSION_COOKIE_SAMESITE", "null"),
        ("NOTIFY_API_KEY", ""),
        ("TRUSTED_NETWORKS", "front desk"),
    ],
)
def test_an_unsafe_setting_stops_the_start_with_one_line_naming_it(setting: str, value: str) -> None:
    refused = flask_routes(environment(**{setting: value}))
    assert refused.returncode != 0
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, refused.stderr
    assert lines[0].startswith("Refusing to start") and f"PATIENT_ONLINE_{setting}" in lines[0]
    assert "Traceback" not in refused.stderr + refused.stdout


def test_gunicorn_stops_with_the_same_line(tmp_path: Path) -> None:
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "config/gunicorn.conf.py",
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "1",
            "app:app",
        ],
        cwd=PROJECT_ROOT,
        env=environment(NOTIFIER="outbox"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0
    output = refused.stderr + refused.stdout
    assert "Traceback" not in output
    assert [line for line in output.splitlines() if "Refusing to start" in line] == [
        next(line for line in output.splitlines() if line.startswith("Refusing to start"))
    ]
    assert "PATIENT_ONLINE_NOTIFIER=notify" in output
