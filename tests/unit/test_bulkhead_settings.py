"""A slow practice's share of a worker's threads: the per-practice limit and the wait for a place come from the
settings, and the production server's threads leave the other practices most of them."""

from __future__ import annotations

import runpy
import threading
import time

import pytest

from patient_online.adapters import demo  # noqa: F401 (registers the demo adapter)
from patient_online.adapters.resilience import PracticeBusy, ResilientClinicalSystem
from patient_online.models import Practice
from patient_online.services.clinical import ClinicalSystems
from patient_online.settings import PROJECT_ROOT


def _systems(max_calls: int, place_wait: float) -> ClinicalSystems:
    return ClinicalSystems.with_breakers(
        {"session_factory": object()}, failure_threshold=5, cool_down=30, max_calls=max_calls, place_wait=place_wait
    )


def test_the_limit_and_the_wait_for_a_place_are_the_settings() -> None:
    system = _systems(3, 0.05).system_for(Practice(ods_code="B81001", adapter_name="demo", adapter_options={}))
    assert isinstance(system, ResilientClinicalSystem) and system.bulkheads is not None
    assert (system.bulkheads.limit, system.bulkheads.wait) == (3, 0.05)


def test_a_call_that_finds_no_place_gives_up_after_the_short_wait() -> None:
    system = _systems(1, 0.05).system_for(Practice(ods_code="B81001", adapter_name="demo", adapter_options={}))
    assert isinstance(system, ResilientClinicalSystem) and system.bulkheads is not None
    bulkheads = system.bulkheads
    inside, done = threading.Event(), threading.Event()

    def hold() -> None:
        with bulkheads.entered("B81001"):
            inside.set()
            done.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(5)
    started = time.perf_counter()
    with pytest.raises(PracticeBusy), bulkheads.entered("B81001"):
        pass
    assert time.perf_counter() - started < 0.5
    done.set()
    holder.join(5)


def test_one_practice_may_hold_only_a_small_share_of_a_workers_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUNICORN_THREADS", raising=False)
    server = runpy.run_path(str(PROJECT_ROOT / "config" / "gunicorn.conf.py"))
    defaults = runpy.run_path(str(PROJECT_ROOT / "config" / "default.py"))
    assert server["threads"] <= 20, "each worker's database pool has 20 connections (10 + 10 overflow)"
    limit, wait = defaults["ADAPTER_MAX_CALLS_PER_PRACTICE"], defaults["ADAPTER_PLACE_WAIT_SECONDS"]
    assert 0 < limit * 3 <= server["threads"], "a slow practice would leave the others too few threads"
    assert wait <= 1.0, "a request waiting for a place holds a thread too"
