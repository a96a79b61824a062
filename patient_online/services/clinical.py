"""The clinical system of each practice, built from the practice's adapter name and options."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

from flask import Flask, current_app

from patient_online.adapters import registry
from patient_online.adapters.registry import AdapterContext
from patient_online.adapters.resilience import CircuitBreakers, resilient
from patient_online.crypto import decrypt, encrypt
from patient_online.domain.ports import ClinicalSystem
from patient_online.extensions import db
from patient_online.models import Practice

_lock = threading.Lock()


def init_app(app: Flask) -> None:
    breakers = CircuitBreakers(
        failure_threshold=int(app.config["ADAPTER_BREAKER_FAILURES"]),
        cool_down=float(app.config["ADAPTER_BREAKER_COOL_DOWN"]),
    )
    app.extensions["clinical_systems"] = {}
    app.extensions["clinical_overrides"] = {}
    app.extensions["clinical_session_factory"] = db.new_session
    app.extensions["clinical_read_session_factory"] = db.new_read_session
    app.extensions["clinical_breakers"] = breakers
    app.extensions["clinical_wrapper"] = lambda inner, ods: resilient(inner, ods, breakers)


def override(app: Flask, practice_ods: str, system: ClinicalSystem | None) -> None:
    """Use ``system`` for one practice instead of its configured adapter (tests and fault drills)."""
    if system is None:
        app.extensions["clinical_overrides"].pop(practice_ods, None)
    else:
        app.extensions["clinical_overrides"][practice_ods] = system


def system_for(practice: Practice) -> ClinicalSystem:
    """The practice's clinical system; built once per adapter configuration and reused."""
    forced: ClinicalSystem | None = current_app.extensions["clinical_overrides"].get(practice.ods_code)
    if forced is not None:
        return forced
    cache: dict[tuple[str, str], ClinicalSystem] = current_app.extensions["clinical_systems"]
    fingerprint = hashlib.sha256(
        json.dumps([practice.adapter_name, practice.adapter_options], sort_keys=True).encode()
    ).hexdigest()
    key = (practice.ods_code, fingerprint)
    system = cache.get(key)
    if system is None:
        with _lock:
            system = cache.get(key)
            if system is None:
                system = _build(practice)
                cache[key] = system
    return system


def _build(practice: Practice) -> ClinicalSystem:
    adapter = registry.get(practice.adapter_name)
    options = {
        k: (decrypt(v) if k in adapter.secret_options else v) for k, v in (practice.adapter_options or {}).items()
    }
    context = AdapterContext(
        practice_ods=practice.ods_code,
        options=options,
        services={
            "session_factory": current_app.extensions["clinical_session_factory"],
            "read_session_factory": current_app.extensions["clinical_read_session_factory"],
            "connect_timeout": float(current_app.config["ADAPTER_CONNECT_TIMEOUT"]),
            "read_timeout": float(current_app.config["ADAPTER_READ_TIMEOUT"]),
        },
    )
    inner = adapter.factory(context)
    wrap: Any = current_app.extensions.get("clinical_wrapper")
    return wrap(inner, practice.ods_code) if wrap else inner


def store_options(
    practice: Practice, adapter_name: str, raw: dict[str, str], kept_encrypted: dict[str, str] | None = None
) -> None:
    """Validate options against the adapter's schema and keep secrets encrypted (raises OptionsInvalid).

    ``kept_encrypted`` holds secrets already stored (encrypted) that the person chose not to retype.
    """
    adapter = registry.get(adapter_name)
    kept = kept_encrypted or {}
    cleaned = adapter.validate({**raw, **{k: decrypt(v) for k, v in kept.items()}})
    practice.adapter_name = adapter_name
    practice.adapter_options = {k: (encrypt(v) if k in adapter.secret_options else v) for k, v in cleaned.items()}
