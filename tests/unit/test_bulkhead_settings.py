"""A slow practice's share of a worker's threads: the per-practice limit and the wait for a place come from the
settings, and the production server's threads leave the other practices most of them."""

from __future__ import annotations

import runpy
import threading
import time

import pytest

from patient_online.adapters import (
    deadline,
    demo,  # noqa: F401 (registers the demo adapter)
)
from patient_online.adapters.resilience import Bulkheads, PracticeBusy, ResilientClinicalSystem
from patient_online.models import Practice
from patient_online.services.clinical import ClinicalSystems
from patient_online.settings import PROJECT_ROOT


def _systems(max_calls: int, place_wait: float, slow_call: float) -> ClinicalSystems:
    return ClinicalSystems.with_breakers(
        {"session_factory": object()},
        failure_threshold=5,
        cool_down=30,
        max_calls=max_calls,
        place_wait=place_wait,
        slow_call=slow_call,
    )


def test_the_limit_and_the_wait_for_a_place_are_the_settings() -> None:
    system = _systems(3, 0.05, 1.5).system_for(Practice(ods_code="B81001", adapter_name="demo", adapter_options={}))
    assert isinstance(system, ResilientClinicalSystem) and system.bulkheads is not None
    assert (system.bulkheads.limit, system.bulkheads.wait, system.bulkheads.slow) == (3, 0.05, 1.5)


def test_a_call_that_finds_no_place_gives_up_once_the_practices_calls_are_slow() -> None:
    """The call holding the only place has run longer than a quick call would (0.1 s here)."""
    system = _systems(1, 0.05, 0.1).system_for(Practice(ods_code="B81001", adapter_name="demo", adapter_options={}))
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


def _hold(bulkheads: Bulkheads, seconds: float) -> threading.Thread:
    """A call that holds one of B81001's places for ``seconds`` (started and inside before this returns)."""
    inside = threading.Event()

    def hold() -> None:
        with bulkheads.entered("B81001"):
            inside.set()
            time.sleep(seconds)

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(5)
    return holder


def test_a_busy_practice_whose_calls_are_quick_keeps_each_patient_waiting_their_turn() -> None:
    """A healthy link at a busy practice: the place frees within a fraction of a second, so the call waits for
    it (within the page's deadline) rather than telling the patient the practice is slow."""
    bulkheads = Bulkheads(limit=1, wait=0.05, slow=2.0)
    holder = _hold(bulkheads, 0.3)
    started = time.perf_counter()
    with deadline.within(8), bulkheads.entered("B81001"):
        waited = time.perf_counter() - started
    assert 0.2 < waited < 1.5
    holder.join(5)


def test_once_a_call_has_run_for_the_slow_time_the_others_stop_waiting() -> None:
    """The link turned slow: nobody waits past the moment the call holding the place has run ``slow`` seconds."""
    bulkheads = Bulkheads(limit=1, wait=0.05, slow=0.3)
    holder = _hold(bulkheads, 2.0)
    started = time.perf_counter()
    with deadline.within(8), pytest.raises(PracticeBusy), bulkheads.entered("B81001"):
        pass
    assert time.perf_counter() - started < 1.0
    holder.join(5)


def test_after_slow_calls_a_call_waits_only_the_short_wait_until_calls_are_quick_again() -> None:
    bulkheads = Bulkheads(limit=1, wait=0.05, slow=0.2)
    _hold(bulkheads, 0.3).join(5)  # one call took 0.3 s: the practice's calls are slow
    holder = _hold(bulkheads, 1.0)
    started = time.perf_counter()
    with deadline.within(8), pytest.raises(PracticeBusy), bulkheads.entered("B81001"):
        pass
    assert time.perf_counter() - started < 0.2, "gave up after the short wait, not the slow time"
    holder.join(5)
    for _ in range(5):  # quick calls again: the practice's average falls back under the slow time
        with bulkheads.entered("B81001"):
            pass
    holder = _hold(bulkheads, 0.15)
    with deadline.within(8), bulkheads.entered("B81001"):
        pass
    holder.join(5)


def test_without_a_deadline_a_call_waits_at_most_the_slow_time() -> None:
    bulkheads = Bulkheads(limit=1, wait=0.05, slow=0.3)
    holder = _hold(bulkheads, 2.0)
    started = time.perf_counter()
    with pytest.raises(PracticeBusy), bulkheads.entered("B81001"):
        pass
    assert time.perf_counter() - started < 1.0
    holder.join(5)


def test_calls_waiting_for_a_place_get_it_in_the_order_they_asked() -> None:
    """First come, first served: a call that has waited longest is never passed over by later ones."""
    bulkheads = Bulkheads(limit=1, wait=0.05, slow=5.0)
    holder = _hold(bulkheads, 0.3)
    order: list[str] = []

    def call(name: str) -> None:
        with bulkheads.entered("B81001"):
            order.append(name)
            time.sleep(0.05)

    callers = []
    for name in ("first", "second", "third", "fourth"):
        callers.append(threading.Thread(target=call, args=(name,)))
        callers[-1].start()
        time.sleep(0.03)
    for t in [holder, *callers]:
        t.join(5)
    assert order == ["first", "second", "third", "fourth"]
