"""Settings: safe defaults from config/, a settings file, then PATIENT_ONLINE_* environment variables."""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET_KEYS = {"dev-only-not-secret", "test-only-not-secret", ""}


class UnsafeSettings(RuntimeError):
    """Production settings that must be fixed before the gateway may start."""


def exit_on_unsafe(error: UnsafeSettings) -> None:
    """Stop the process with the reason as one line on stderr, not a traceback: an operator starting the
    gateway (``flask``, gunicorn) needs the setting to fix. Exit code 3 is gunicorn's "worker failed to boot",
    which stops gunicorn instead of restarting workers that can never start."""
    print(str(error), file=sys.stderr, flush=True)
    raise SystemExit(3)


def load(config: Config, overrides: Mapping[str, Any] | None = None) -> None:
    """Fill ``config`` in the documented order and refuse unsafe production settings."""
    config.from_pyfile(str(PROJECT_ROOT / "config" / "default.py"))
    settings_file = os.environ.get("PATIENT_ONLINE_SETTINGS")
    if settings_file:
        config.from_pyfile(settings_file)
    config.from_prefixed_env(prefix="PATIENT_ONLINE")
    if overrides:
        config.update(overrides)
    check_networks(config)
    if config["ENV"] == "production":
        config.setdefault("SESSION_COOKIE_SECURE", True)
        check_production(config)


def check_production(config: Mapping[str, Any]) -> None:
    """Say exactly which setting is unsafe, so an operator can fix it."""
    problems = []
    if config.get("SECRET_KEY") in DEFAULT_SECRET_KEYS or len(str(config.get("SECRET_KEY"))) < 32:
        problems.append("set PATIENT_ONLINE_SECRET_KEY to a random value of at least 32 characters")
    if config.get("DEMO_DATA_ENABLED"):
        problems.append("set PATIENT_ONLINE_DEMO_DATA_ENABLED=false: demo data is not allowed in production")
    if not config.get("SESSION_COOKIE_SECURE"):
        problems.append("set PATIENT_ONLINE_SESSION_COOKIE_SECURE=true: cookies must be sent over HTTPS only")
    if str(config.get("DATABASE_URL", "")).startswith("sqlite"):
        problems.append("set PATIENT_ONLINE_DATABASE_URL to a PostgreSQL database")
    if not config.get("ADAPTER_SECRET_KEY"):
        problems.append("set PATIENT_ONLINE_ADAPTER_SECRET_KEY (a Fernet key) to encrypt clinical-system secrets")
    problems += _protection_problems(config)
    if problems:
        raise UnsafeSettings("Refusing to start in production: " + "; ".join(problems) + ".")


def _protection_problems(config: Mapping[str, Any]) -> list[str]:
    """The protections that are on by default and must never be off in production."""
    problems = []
    if config.get("NOTIFIER") != "notify":
        problems.append(
            "set PATIENT_ONLINE_NOTIFIER=notify: the local notifier keeps security codes in a table instead of "
            "sending them"
        )
    elif not config.get("NOTIFY_API_KEY"):
        problems.append("set PATIENT_ONLINE_NOTIFY_API_KEY for GOV.UK Notify")
    storage = str(config.get("RATELIMIT_STORAGE_URI") or "")
    if not config.get("REDIS_URL") or storage.startswith("memory"):
        problems.append(
            "set PATIENT_ONLINE_REDIS_URL: without Redis each process counts rate limits on its own "
            "(PATIENT_ONLINE_RATELIMIT_STORAGE_URI must not be memory://)"
        )
    if not config.get("WTF_CSRF_ENABLED", True):
        problems.append("set PATIENT_ONLINE_WTF_CSRF_ENABLED=true: forms must carry a CSRF token")
    if not config.get("RATELIMIT_ENABLED", True):
        problems.append("set PATIENT_ONLINE_RATELIMIT_ENABLED=true: sign-in and linking must be rate limited")
    if not config.get("SESSION_COOKIE_HTTPONLY"):
        problems.append("set PATIENT_ONLINE_SESSION_COOKIE_HTTPONLY=true: scripts must not read the session cookie")
    if str(config.get("SESSION_COOKIE_SAMESITE")).capitalize() not in ("Lax", "Strict"):
        problems.append('set PATIENT_ONLINE_SESSION_COOKIE_SAMESITE="Lax" (or "Strict"), never None')
    return problems


def check_networks(config: Mapping[str, Any]) -> None:
    """TRUSTED_NETWORKS must be addresses or networks: a typo would silently trust nobody (and let a shared
    address be locked out), so it stops the start instead of failing on the first request."""
    setting = config.get("TRUSTED_NETWORKS") or ""
    parts = setting if isinstance(setting, list | tuple) else str(setting).split(",")
    for part in (str(p).strip() for p in parts):
        if part:
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise UnsafeSettings(
                    f"Refusing to start: PATIENT_ONLINE_TRUSTED_NETWORKS has {part!r}, which is not an address or "
                    "network (e.g. 203.0.113.0/24)."
                ) from None
