"""One time budget per request for every clinical call: timeouts shrink to the time left, retries stop when it
is spent, independent reads run at the same time, and a call stopped by the deadline is not held against the
link."""

from __future__ import annotations

import contextvars
import datetime as dt
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from patient_online.adapters import deadline
from patient_online.adapters.deadline import DeadlineExceeded
from patient_online.adapters.gpconnect import Endpoint
from patient_online.adapters.gpconnect.constants import Interaction
from patient_online.adapters.gpconnect.http import GPConnectHttp
from patient_online.adapters.resilience import (
    BreakerState,
    Bulkheads,
    CircuitBreakers,
    PracticeBusy,
    ResilientClinicalSystem,
)
from patient_online.domain.appointments import SlotQuery
from patient_online.domain.errors import ClinicalSystemUnavailable
from tests.unit.gpconnect.test_gpc_resilience import PATIENT, Flaky


@pytest.fixture(autouse=True)
def no_deadline_left_over() -> Iterator[None]:
    deadline.stop()
    yield
    deadline.stop()


def test_no_budget_means_own_timeouts() -> None:
    assert deadline.remaining() is None
    assert deadline.timeout_for(5.0) == (5.0, False)
    deadline.check()


def test_timeout_is_the_time_left_when_shorter() -> None:
    with deadline.within(1.0):
        timeout, cut = deadline.timeout_for(5.0)
        assert 0.9 < timeout <= 1.0 and cut
        assert deadline.timeout_for(0.5) == (0.5, False)


def test_an_inner_budget_never_extends_the_outer_one() -> None:
    with deadline.within(0.5), deadline.within(10):
        left = deadline.remaining()
        assert left is not None and left <= 0.5


def test_a_spent_budget_refuses_calls() -> None:
    with deadline.within(0.0), pytest.raises(DeadlineExceeded):
        deadline.timeout_for(5.0)
    assert issubclass(DeadlineExceeded, ClinicalSystemUnavailable)


def test_stop_clears_what_start_set() -> None:
    token = deadline.start(3)
    assert deadline.active()
    deadline.stop(token)
    assert not deadline.active()


def test_concurrently_runs_calls_at_the_same_time_under_the_same_deadline() -> None:
    seen: list[float | None] = []

    def slow(value: int) -> int:
        seen.append(deadline.remaining())
        time.sleep(0.3)
        return value

    with deadline.within(5):
        started = time.perf_counter()
        results = deadline.concurrently(lambda: slow(1), lambda: slow(2), lambda: slow(3))
        took = time.perf_counter() - started
    assert results == [1, 2, 3]
    assert took < 0.6, "the calls ran one after another"
    assert all(left is not None and left <= 5 for left in seen), "the deadline did not reach the threads"


def test_concurrently_raises_the_first_error() -> None:
    def broken() -> int:
        raise ClinicalSystemUnavailable()

    with pytest.raises(ClinicalSystemUnavailable):
        deadline.concurrently(lambda: 1, broken)


def test_concurrently_stops_waiting_at_the_deadline() -> None:
    release = threading.Event()
    with deadline.within(0.3):
        started = time.perf_counter()
        with pytest.raises(DeadlineExceeded):
            deadline.concurrently(lambda: release.wait(5), lambda: release.wait(5))
        assert time.perf_counter() - started < 1.0
    release.set()


def test_a_deadline_does_not_leak_to_another_context() -> None:
    with deadline.within(1):
        other = contextvars.Context()
        assert other.run(deadline.remaining) is None


# The resilience layer -------------------------------------------------------------------------------------------
class Hanging(Flaky):
    """Every call takes ``delay`` seconds, then fails as a timed-out link does."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def _call(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        time.sleep(min(self.delay, deadline.remaining() or self.delay))
        if deadline.remaining() == 0:
            raise DeadlineExceeded()
        raise ClinicalSystemUnavailable()


QUERY = SlotQuery(start=dt.datetime(2026, 1, 5, 8), end=dt.datetime(2026, 1, 6))


def test_retries_stop_when_the_budget_is_spent() -> None:
    inner = Hanging(delay=0.3)
    breakers = CircuitBreakers(failure_threshold=10)
    wrapped = ResilientClinicalSystem(inner, "A1", breakers=breakers, attempts=5, backoff=0.01)
    with deadline.within(0.5):
        started = time.perf_counter()
        with pytest.raises(ClinicalSystemUnavailable):
            wrapped.search_slots(QUERY)
        took = time.perf_counter() - started
    assert took < 0.7
    assert inner.calls["search_slots"] == 2  # the second try ran into the deadline; no third


def test_a_call_after_the_deadline_is_not_made_and_not_counted() -> None:
    inner = Flaky()
    breakers = CircuitBreakers(failure_threshold=1)
    wrapped = ResilientClinicalSystem(inner, "A1", breakers=breakers)
    with deadline.within(0.0), pytest.raises(DeadlineExceeded):
        wrapped.search_slots(QUERY)
    assert inner.calls == {}
    assert breakers.state("A1") is BreakerState.CLOSED


def test_a_call_stopped_by_the_deadline_does_not_open_the_breaker() -> None:
    inner = Flaky()
    inner.error = DeadlineExceeded()
    breakers = CircuitBreakers(failure_threshold=1)
    wrapped = ResilientClinicalSystem(inner, "A1", breakers=breakers)
    with pytest.raises(DeadlineExceeded):
        wrapped.find_patient("9990000018")
    assert inner.calls["find_patient"] == 1, "a deadline is not retried"
    assert breakers.state("A1") is BreakerState.CLOSED


def test_a_call_outside_any_request_gets_a_budget_of_its_own() -> None:
    inner = Hanging(delay=0.3)
    wrapped = ResilientClinicalSystem(
        inner, "A1", breakers=CircuitBreakers(failure_threshold=10), attempts=5, backoff=0.01, budget=0.4
    )
    started = time.perf_counter()
    with pytest.raises(ClinicalSystemUnavailable):
        wrapped.list_requests(PATIENT)
    assert time.perf_counter() - started < 0.6
    assert not deadline.active()


# The HTTP layer --------------------------------------------------------------------------------------------------
def _endpoint(read_timeout: float = 5.0) -> Endpoint:
    return Endpoint(
        base_url="http://provider.invalid/fhir",
        provider_asid="918999198738",
        consumer_asid="200000000359",
        provider_ods="A11111",
        consumer_ods="B22222",
        read_timeout=read_timeout,
    )


def _recording_transport(seen: list[dict[str, float | None]]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.extensions["timeout"]))
        return httpx.Response(200, json={"resourceType": "Bundle"})

    return httpx.MockTransport(handler)


def test_each_http_call_waits_at_most_the_time_left() -> None:
    seen: list[dict[str, float | None]] = []
    http = GPConnectHttp(_endpoint(read_timeout=5.0), transport=_recording_transport(seen))
    http.call("GET", "/Slot", Interaction.SEARCH_SLOTS)
    with deadline.within(1.5):
        http.call("GET", "/Slot", Interaction.SEARCH_SLOTS)
    assert seen[0]["read"] == 5.0
    read, connect = seen[1]["read"], seen[1]["connect"]
    assert read is not None and 1.3 < read <= 1.5
    assert connect is not None and connect <= read


def test_an_http_call_cut_short_by_the_deadline_is_not_a_link_failure() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    http = GPConnectHttp(_endpoint(read_timeout=5.0), transport=httpx.MockTransport(handler))
    with deadline.within(1.0), pytest.raises(DeadlineExceeded):
        http.call("GET", "/Slot", Interaction.SEARCH_SLOTS)
    assert http.last_failure is None
    with pytest.raises(ClinicalSystemUnavailable) as raised:
        http.call("GET", "/Slot", Interaction.SEARCH_SLOTS)
    assert not isinstance(raised.value, DeadlineExceeded)
    assert http.last_failure is not None


def test_a_link_silent_for_half_the_budget_counts_as_failing() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        time.sleep(0.6)
        raise httpx.ReadTimeout("slow", request=request)

    http = GPConnectHttp(_endpoint(read_timeout=5.0), transport=httpx.MockTransport(handler))
    with deadline.within(1.0), pytest.raises(ClinicalSystemUnavailable) as raised:
        http.call("GET", "/Slot", Interaction.SEARCH_SLOTS)
    assert not isinstance(raised.value, DeadlineExceeded)
    assert http.last_failure is not None


# Bulkheads: a slow practice cannot take every thread -----------------------------------------------------------
class Waiting(Flaky):
    """Every call waits until released."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.release = threading.Event()

    def _call(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        self.release.wait(5)


def test_a_practice_gets_at_most_its_places_and_others_are_untouched() -> None:
    bulkheads = Bulkheads(limit=2, wait=0.1, slow=0.2)  # calls running 0.2 s: this practice is slow
    breakers = CircuitBreakers(failure_threshold=1)
    slow_inner = Waiting()
    slow = ResilientClinicalSystem(slow_inner, "SLOW", breakers=breakers, bulkheads=bulkheads)
    other = ResilientClinicalSystem(Waiting(), "OTHER", breakers=breakers, bulkheads=bulkheads)
    holders = [threading.Thread(target=slow.search_slots, args=(QUERY,)) for _ in range(2)]
    for t in holders:
        t.start()
    while slow_inner.calls.get("search_slots", 0) < 2:
        time.sleep(0.01)
    started = time.perf_counter()
    with pytest.raises(PracticeBusy):
        slow.search_slots(QUERY)
    assert time.perf_counter() - started < 0.5
    assert slow_inner.calls["search_slots"] == 2, "a busy practice is not retried"
    assert breakers.state("SLOW") is BreakerState.CLOSED, "being busy here says nothing about the link"
    other.inner.release.set()  # type: ignore[attr-defined]
    assert other.search_slots(QUERY) == []  # another practice still has its places
    slow_inner.release.set()
    for t in holders:
        t.join(5)
    assert slow.search_slots(QUERY) == []  # places given back
