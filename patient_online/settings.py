"""Settings: safe defaults from config/, a settings file, then PATIENT_ONLINE_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET_KEYS = {"dev-only-not-secret", "test-only-not-secret", ""}


class UnsafeSettings(RuntimeError):
    """Production settings that must be fixed before the gateway may start."""


def load(config: Config, overrides: Mapping[str, Any] | None = None) -> None:
    """Fill ``config`` in the documented order and refuse unsafe production settings."""
    config.from_pyfile(str(PROJECT_ROOT / "config" / "default.py"))
    settings_file = os.environ.get("PATIENT_ONLINE_SETTINGS")
    if settings_file:
        config.from_pyfile(settings_file)
    config.from_prefixed_env(prefix="PATIENT_ONLINE")
    if overrides:
        config.update(overrides)
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
    if problems:
        raise UnsafeSettings("Refusing to start in production: " + "; ".join(problems) + ".")
