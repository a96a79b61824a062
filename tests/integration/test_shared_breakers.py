"""With Redis configured, a practice's circuit breaker is shared by every worker and node: failures seen by any
of them count together, so they all open (and close) together; Redis being down never stops a call."""

from __future__ import annotations

import logging
import multiprocessing
import uuid

import pytest
import redis

from patient_online.adapters.resilience import (
    BreakerState,
    CircuitBreakers,
    CircuitOpen,
    SharedCircuitBreakers,
    breakers_for,
)
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.redis


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def prefix(redis_url: str) -> str:
    return f"test:breaker:{uuid.uuid4().hex[:8]}:"


def pair(url: str, prefix: str, clock: Clock, threshold: int = 4) -> tuple[SharedCircuitBreakers, ...]:
    return tuple(SharedCircuitBreakers(url, threshold, 30, prefix=prefix, clock=clock) for _ in range(2))


def test_failures_in_two_workers_open_both(redis_url: str, prefix: str) -> None:
    clock = Clock()
    first, second = pair(redis_url, prefix, clock)
    for breakers in (first, second, first):
        breakers.before_call("Y1")
        breakers.failure("Y1")
    assert first.state("Y1") is second.state("Y1") is BreakerState.CLOSED
    second.before_call("Y1")
    second.failure("Y1")  # the fourth failure, counted across both
    for breakers in (first, second):
        assert breakers.state("Y1") is BreakerState.OPEN
        with pytest.raises(CircuitOpen):
            breakers.before_call("Y1")
    assert first.state("Y2") is BreakerState.CLOSED  # per practice


def test_one_probe_across_workers_and_a_success_closes_both(redis_url: str, prefix: str) -> None:
    clock = Clock()
    first, second = pair(redis_url, prefix, clock, threshold=1)
    first.before_call("Y1")
    first.failure("Y1")
    clock.now += 31
    assert second.state("Y1") is BreakerState.HALF_OPEN
    first.before_call("Y1")  # the probe
    with pytest.raises(CircuitOpen):
        second.before_call("Y1")  # only one probe, whichever worker asks
    first.success("Y1")
    assert second.state("Y1") is BreakerState.CLOSED
    second.before_call("Y1")


def test_a_failed_probe_opens_again_and_a_released_probe_lets_another_try(redis_url: str, prefix: str) -> None:
    clock = Clock()
    first, second = pair(redis_url, prefix, clock, threshold=1)
    first.before_call("Y1")
    first.failure("Y1")
    clock.now += 31
    first.before_call("Y1")
    first.release("Y1")  # ended without a verdict (e.g. the request's deadline)
    second.before_call("Y1")
    second.failure("Y1")
    assert first.state("Y1") is BreakerState.OPEN


def test_a_success_resets_the_count(redis_url: str, prefix: str) -> None:
    clock = Clock()
    first, second = pair(redis_url, prefix, clock, threshold=2)
    first.failure("Y1")
    second.success("Y1")
    first.failure("Y1")
    assert second.state("Y1") is BreakerState.CLOSED
    first.reset()
    assert not redis.Redis.from_url(redis_url).keys(f"{prefix}*")


def _fail_in_process(url: str, prefix: str, times: int) -> None:
    breakers = SharedCircuitBreakers(url, 6, 30, prefix=prefix)
    for _ in range(times):
        breakers.failure("Y9")


def test_two_processes_count_together(redis_url: str, prefix: str) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_fail_in_process, args=(redis_url, prefix, 3)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    here = SharedCircuitBreakers(redis_url, 6, 30, prefix=prefix)
    assert here.state("Y9") is BreakerState.OPEN


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_redis_down_falls_back_to_this_process_and_says_so_once() -> None:
    unreachable = "redis://127.0.0.1:1/0"
    breakers = SharedCircuitBreakers(unreachable, 2, 30, retry_after=60)
    kept = Kept()
    logger = logging.getLogger("patient_online.adapters.resilience")
    logger.addHandler(kept)
    try:
        breakers.before_call("Y1")
        breakers.failure("Y1")
        breakers.before_call("Y1")
        breakers.failure("Y1")
        assert breakers.state("Y1") is BreakerState.OPEN  # the local breaker still works
        with pytest.raises(CircuitOpen):
            breakers.before_call("Y1")
    finally:
        logger.removeHandler(kept)
    assert len([m for m in kept.messages if "Redis unreachable" in m]) == 1


def test_without_redis_each_process_keeps_its_own() -> None:
    assert isinstance(breakers_for("", 5, 30), CircuitBreakers)
    assert isinstance(breakers_for(REDIS_URL, 5, 30), SharedCircuitBreakers)
