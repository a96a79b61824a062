"""The clinical system of each practice, built from the practice's adapter name and options."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from patient_online.adapters import deadline, registry
from patient_online.adapters.registry import AdapterContext
from patient_online.adapters.resilience import Bulkheads, breakers_for, resilient
from patient_online.crypto import decrypt, encrypt
from patient_online.domain.patients import PatientRef
from patient_online.domain.ports import ClinicalSystem, LinkState
from patient_online.models import Practice

Wrapper = Callable[[ClinicalSystem, str], ClinicalSystem]


class ClinicalSystems:
    """Every practice's clinical system, built once per adapter configuration and reused (thread-safe).

    ``services`` are what adapters may need from the app (session factories, timeouts); ``wrap`` puts each
    system behind the resilience layer (timeouts, retries, a circuit breaker per practice).
    """

    def __init__(self, services: Mapping[str, Any], wrap: Wrapper | None = None) -> None:
        self._services = dict(services)
        self._wrap = wrap
        self._built: dict[tuple[str, str], ClinicalSystem] = {}
        self._overrides: dict[str, ClinicalSystem] = {}
        self._lock = threading.Lock()

    @classmethod
    def with_breakers(
        cls,
        services: Mapping[str, Any],
        *,
        failure_threshold: int,
        cool_down: float,
        redis_url: str = "",
        budget: float | None = None,
        max_calls: int = 0,
        place_wait: float = 1.0,
        slow_call: float = 2.0,
        changed: Callable[[PatientRef], None] | None = None,
    ) -> ClinicalSystems:
        """Systems behind circuit breakers (shared through Redis when ``redis_url`` is set); a call made outside
        any request's or job's deadline gets ``budget`` seconds of its own; with ``max_calls`` a practice's
        system is called at most that many times at once from this process (a bulkhead): a call waits its turn
        while the practice's calls finish within ``slow_call`` seconds, and at most ``place_wait`` seconds once
        they do not (see Bulkheads); ``changed`` is told of every change made to a patient's appointments."""
        breakers = breakers_for(redis_url, failure_threshold, cool_down)
        bulkheads = Bulkheads(max_calls, place_wait, slow_call) if max_calls > 0 else None
        return cls(services, lambda inner, ods: resilient(inner, ods, breakers, budget, bulkheads, changed))

    def override(self, practice_ods: str, system: ClinicalSystem | None) -> None:
        """Use ``system`` for one practice instead of its configured adapter (tests and fault drills)."""
        if system is None:
            self._overrides.pop(practice_ods, None)
        else:
            self._overrides[practice_ods] = system

    def overridden(self, practice_ods: str) -> bool:
        return practice_ods in self._overrides

    def service(self, name: str) -> Any:
        """One of the app's parts handed to adapters (e.g. ``session_factory``)."""
        return self._services[name]

    def concurrently(self, practice: Practice, *calls: Callable[[], Any]) -> list[Any]:
        """Independent reads of the practice's system: at the same time, under the request's one deadline, when
        its adapter waits on a network link; one after another otherwise (and for a system put in by a test)."""
        if practice.ods_code in self._overrides or not registry.get(practice.adapter_name).parallel_reads:
            return [call() for call in calls]
        return deadline.concurrently(*calls)

    def system_for(self, practice: Practice) -> ClinicalSystem:
        """The practice's clinical system."""
        forced = self._overrides.get(practice.ods_code)
        if forced is not None:
            return forced
        fingerprint = hashlib.sha256(
            json.dumps([practice.adapter_name, practice.adapter_options], sort_keys=True).encode()
        ).hexdigest()
        key = (practice.ods_code, fingerprint)
        system = self._built.get(key)
        if system is None:
            with self._lock:
                system = self._built.get(key)
                if system is None:
                    system = self._build(practice)
                    self._built[key] = system
        return system

    def link_state(self, practice: Practice) -> LinkState:
        """What is known of the practice's link without calling it (the circuit breaker's view)."""
        return self.system_for(practice).link_state()

    def _build(self, practice: Practice) -> ClinicalSystem:
        adapter = registry.get(practice.adapter_name)
        options = {
            k: (decrypt(v) if k in adapter.secret_options else v) for k, v in (practice.adapter_options or {}).items()
        }
        context = AdapterContext(practice_ods=practice.ods_code, options=options, services=dict(self._services))
        inner = adapter.factory(context)
        return self._wrap(inner, practice.ods_code) if self._wrap else inner


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
