"""A slow or broken provider: timeouts, 5xx and dropped connections, retries and the circuit breaker over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from patient_online.adapters.gpconnect import GPConnectClinicalSystem
from patient_online.adapters.resilience import BreakerState, CircuitBreakers, CircuitOpen, ResilientClinicalSystem
from patient_online.domain.errors import ClinicalSystemUnavailable
from tools.gpconnect_simulator import ALICE, SimulatorServer

Maker = Callable[..., GPConnectClinicalSystem]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_slow_provider_times_out_quickly(sim: SimulatorServer, make_gpc: Maker) -> None:
    system = make_gpc(read_timeout=0.3)
    sim.state.configure(delay=1.0)
    started = time.monotonic()
    with pytest.raises(ClinicalSystemUnavailable):
        system.find_patient(ALICE)
    assert time.monotonic() - started < 0.9
    assert system.link_state().ok is False
    sim.state.configure(delay=0)
    assert system.find_patient(ALICE) is not None
    assert system.link_state().ok is True
    # The abandoned request is still sleeping in the simulator: let it finish here, or it would be counted
    # (or take a configured failure) in whichever test runs next.
    deadline = time.monotonic() + 5
    while len(sim.state.seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    system.close()


@pytest.mark.parametrize("failure", ["500", "502", "drop"])
def test_server_errors_and_dropped_connections_are_unavailable(
    sim: SimulatorServer, make_gpc: Maker, failure: str
) -> None:
    system = make_gpc()
    sim.state.configure(fail=failure)
    with pytest.raises(ClinicalSystemUnavailable):
        system.find_patient(ALICE)
    system.close()


def test_control_endpoint(sim: SimulatorServer, make_gpc: Maker) -> None:
    reply = httpx.post(sim.base_url + "/_control", json={"delay": 0.01, "fail": "502", "fail_count": 1}, timeout=5)
    assert reply.json()["fail"] == "502"
    system = make_gpc()
    with pytest.raises(ClinicalSystemUnavailable):
        system.find_patient(ALICE)
    assert system.find_patient(ALICE) is not None  # failed once only
    httpx.post(sim.base_url + "/_control", json={"reset": True}, timeout=5)
    assert sim.state.delay == 0
    system.close()


def test_reads_retry_through_a_brief_failure(sim: SimulatorServer, make_gpc: Maker) -> None:
    inner = make_gpc()
    breakers = CircuitBreakers(failure_threshold=5, cool_down=30, clock=FakeClock())
    system = ResilientClinicalSystem(inner, "A20047", breakers=breakers, sleep=lambda _s: None)
    sim.state.configure(fail="502", fail_count=2)
    assert system.find_patient(ALICE) is not None
    assert len(sim.state.seen) == 1  # two failures were answered before routing, the third got through
    inner.close()


def test_breaker_opens_after_repeated_failures_and_closes_after_a_good_probe(
    sim: SimulatorServer, make_gpc: Maker
) -> None:
    inner = make_gpc(read_timeout=0.3)
    clock = FakeClock()
    breakers = CircuitBreakers(failure_threshold=3, cool_down=30, clock=clock)
    system = ResilientClinicalSystem(inner, "A20047", breakers=breakers, attempts=1, sleep=lambda _s: None)

    sim.state.configure(fail="502")
    for _ in range(3):
        with pytest.raises(ClinicalSystemUnavailable):
            system.find_patient(ALICE)
    assert breakers.state("A20047") is BreakerState.OPEN
    assert system.link_state().ok is False and "open" in system.link_state().detail

    sim.state.configure(fail=None)
    before = len(sim.state.seen)
    started = time.monotonic()
    with pytest.raises(CircuitOpen):
        system.find_patient(ALICE)
    assert time.monotonic() - started < 0.1 and len(sim.state.seen) == before  # refused without calling

    clock.now += 30
    assert breakers.state("A20047") is BreakerState.HALF_OPEN
    assert system.find_patient(ALICE) is not None  # the probe
    assert breakers.state("A20047") is BreakerState.CLOSED
    assert system.link_state().ok is True
    inner.close()
