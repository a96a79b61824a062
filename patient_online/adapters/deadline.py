"""One time budget for everything a request (or an outbox job) asks of clinical systems.

A patient must never wait on a slow practice link longer than the page budget, however many calls the page
makes and however often each is retried. The composition root starts a deadline when a web request begins
(``start``/``stop``) and the outbox starts one per job (``within``); every clinical call then takes its
timeouts from what is left (``timeout_for``), retries stop when no time is left, and a call made after the
deadline fails at once with ``DeadlineExceeded``: the patient gets the "your practice's system is slow or
unavailable" page instead of a hang.

The deadline lives in a context variable, so threads started with ``concurrently`` share it, and threads of
a server's pool never inherit another request's deadline once ``stop`` has run.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

from patient_online.domain.errors import ClinicalSystemUnavailable

Clock = Callable[[], float]

# The least time worth starting a call with: below this the call could not plausibly be answered.
MINIMUM_CALL_SECONDS = 0.05

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("clinical_deadline", default=None)
_length: contextvars.ContextVar[float] = contextvars.ContextVar("clinical_budget", default=0.0)
_clock: Clock = time.monotonic


class DeadlineExceeded(ClinicalSystemUnavailable):
    """The request's time for clinical systems has run out: nothing more is asked of them."""


def now() -> float:
    return _clock()


def start(seconds: float) -> contextvars.Token[float | None]:
    """Begin a budget of ``seconds`` from now (never later than a budget already running); keep the token."""
    if _deadline.get() is None:
        _length.set(seconds)
    return _deadline.set(_earliest(now() + seconds))


def budget_seconds() -> float:
    """How long the running budget was when it began (0 when none runs)."""
    return _length.get() if active() else 0.0


def spent_on_link(waited: float) -> bool:
    """Whether a call stopped by the deadline had waited long enough to count against the link: half the whole
    budget. A link that cannot answer in that long is failing for patients, while a call that only had the
    last moments of a page's time says nothing about it."""
    return waited >= budget_seconds() / 2


def stop(token: contextvars.Token[float | None] | None = None) -> None:
    """End the budget started with ``token`` (or any budget of this context)."""
    if token is not None:
        try:
            _deadline.reset(token)
            return
        except ValueError:  # made in another context: fall through and clear this one's
            pass
    _deadline.set(None)


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Run the block under a budget of ``seconds`` (inside a running budget, the earlier end wins)."""
    token = start(seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def _earliest(candidate: float) -> float:
    current = _deadline.get()
    return candidate if current is None else min(current, candidate)


def active() -> bool:
    """Whether a budget is running in this context."""
    return _deadline.get() is not None


def remaining() -> float | None:
    """Seconds left of the budget (0 when spent), or None when no budget is running."""
    at = _deadline.get()
    return None if at is None else max(0.0, at - now())


def check() -> None:
    """Raise DeadlineExceeded when the budget is (all but) spent."""
    left = remaining()
    if left is not None and left < MINIMUM_CALL_SECONDS:
        raise DeadlineExceeded()


def timeout_for(own: float) -> tuple[float, bool]:
    """The timeout a call may use: its own, or the time left when that is shorter (then ``True``: cut short).

    Raises DeadlineExceeded when too little time is left to start the call."""
    check()
    left = remaining()
    if left is not None and left < own:
        return left, True
    return own, False


def concurrently(*calls: Callable[[], Any], max_workers: int = 8) -> list[Any]:
    """Run independent zero-argument calls (clinical reads) at the same time, each in a copy of this context
    (so under the same deadline); their results in order. The first error is raised once the others ended or
    the deadline passed; past the deadline, DeadlineExceeded is raised without waiting for the stragglers
    (their own timeouts end them shortly after)."""
    if not calls:
        return []
    if len(calls) == 1:
        return [calls[0]()]
    pool = ThreadPoolExecutor(max_workers=min(max_workers, len(calls)), thread_name_prefix="clinical")
    try:
        futures: list[Future[Any]] = [pool.submit(contextvars.copy_context().run, call) for call in calls]
        done, pending = wait(futures, timeout=remaining(), return_when=FIRST_EXCEPTION)
        failed = [f for f in futures if f in done and f.exception() is not None]
        if failed:
            error = failed[0].exception()
            assert error is not None
            raise error
        if pending:
            raise DeadlineExceeded()
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
