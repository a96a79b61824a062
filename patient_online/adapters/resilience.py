"""Resilience for every clinical-system adapter: retries for safe reads and a circuit breaker per practice.

``ResilientClinicalSystem`` wraps any ClinicalSystem. Reads (find_patient, search_slots, list_*,
get_record) are retried with exponential backoff on ClinicalSystemUnavailable, but only while the request's
time budget lasts (``adapters/deadline.py``); writes are never retried (their idempotency keys and the outbox
deal with those). Every attempt passes a circuit breaker kept per practice ODS code: after N consecutive link
failures it opens and calls fail at once, after a cool-down it lets one probe through (half-open), and a
successful probe closes it again. A call stopped by the request's deadline says nothing about the link and is
not counted. With Redis configured (``SharedCircuitBreakers``) the breakers are shared by every worker and
node, so they open together; without Redis (or while it is down) each process keeps its own.
Timeouts belong to the HTTP adapters themselves, shortened to the time the request has left.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential
from tenacity.stop import stop_base

from patient_online.adapters import deadline
from patient_online.domain.appointments import Appointment, Slot, SlotQuery
from patient_online.domain.errors import ClinicalSystemUnavailable, DomainError
from patient_online.domain.patients import Demographics, PatientRef
from patient_online.domain.ports import ClinicalSystem, LinkState
from patient_online.domain.prescriptions import Collection, RepeatItem, RepeatRequest
from patient_online.domain.record import RecordExtract, Section

T = TypeVar("T")
Clock = Callable[[], float]
log = logging.getLogger("patient_online.adapters.resilience")


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass
class _Circuit:
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = False


class CircuitOpen(ClinicalSystemUnavailable):
    """The practice's link has failed repeatedly; calls are refused until the cool-down has passed."""


class Breakers(Protocol):
    """What the resilience layer asks of a set of circuit breakers (in-process or shared through Redis)."""

    def state(self, key: str) -> BreakerState: ...
    def before_call(self, key: str) -> None: ...
    def success(self, key: str) -> None: ...
    def failure(self, key: str) -> None: ...
    def release(self, key: str) -> None: ...
    def reset(self, key: str | None = None) -> None: ...


class CircuitBreakers:
    """Circuit breakers keyed by practice ODS code, shared by every wrapper in this process (thread-safe)."""

    def __init__(self, failure_threshold: int = 5, cool_down: float = 30.0, clock: Clock = time.monotonic) -> None:
        self.failure_threshold = failure_threshold
        self.cool_down = cool_down
        self.clock = clock
        self._circuits: dict[str, _Circuit] = {}
        self._lock = threading.Lock()

    def _circuit(self, key: str) -> _Circuit:
        return self._circuits.setdefault(key, _Circuit())

    def state(self, key: str) -> BreakerState:
        """The breaker's state now (an open breaker past its cool-down reads as half-open)."""
        with self._lock:
            circuit = self._circuit(key)
            if circuit.state is BreakerState.OPEN and self.clock() - circuit.opened_at >= self.cool_down:
                return BreakerState.HALF_OPEN
            return circuit.state

    def before_call(self, key: str) -> None:
        """Let a call through, or raise CircuitOpen; after the cool-down only one probe goes through."""
        with self._lock:
            circuit = self._circuit(key)
            if circuit.state is BreakerState.OPEN:
                if self.clock() - circuit.opened_at < self.cool_down:
                    raise CircuitOpen()
                circuit.state = BreakerState.HALF_OPEN
                circuit.probing = False
            if circuit.state is BreakerState.HALF_OPEN:
                if circuit.probing:
                    raise CircuitOpen()
                circuit.probing = True

    def success(self, key: str) -> None:
        """The link answered: close the breaker and forget earlier failures."""
        with self._lock:
            circuit = self._circuit(key)
            circuit.state, circuit.failures, circuit.probing = BreakerState.CLOSED, 0, False

    def failure(self, key: str) -> None:
        """The link failed: count it, and open the breaker at the threshold or when a probe fails."""
        with self._lock:
            circuit = self._circuit(key)
            circuit.failures += 1
            if circuit.state is BreakerState.HALF_OPEN or circuit.failures >= self.failure_threshold:
                circuit.state, circuit.opened_at, circuit.probing = BreakerState.OPEN, self.clock(), False

    def release(self, key: str) -> None:
        """A call ended without telling anything about the link: let another probe try."""
        with self._lock:
            self._circuit(key).probing = False

    def reset(self, key: str | None = None) -> None:
        """Forget one practice's breaker, or all of them."""
        with self._lock:
            if key is None:
                self._circuits.clear()
            else:
                self._circuits.pop(key, None)


BREAKERS = CircuitBreakers()

# Each script works on one practice's hash (state, failures, opened_at: wall-clock seconds, as every node
# shares them) and its probe key, which expires so that a worker that dies mid-probe cannot hold it for ever.
_BEFORE_CALL = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'open' then
  local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
  if tonumber(ARGV[1]) - opened < tonumber(ARGV[2]) then return 0 end
  redis.call('HSET', KEYS[1], 'state', 'half-open')
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('DEL', KEYS[2])
  state = 'half-open'
end
if state == 'half-open' then
  if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[3]) then return 1 end
  return 0
end
return 1
"""
_FAILURE = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'half-open' or failures >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', ARGV[1])
  redis.call('DEL', KEYS[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return failures
"""
_SUCCESS = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0)
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
redis.call('DEL', KEYS[2])
return 1
"""


class SharedCircuitBreakers:
    """Circuit breakers kept in Redis, so every worker process and node sees the same failures and opens
    (and closes) together. While Redis cannot be reached, each process falls back to its own in-process
    breakers (logged once per outage) and tries Redis again after ``retry_after`` seconds: Redis being down
    never stops a page."""

    def __init__(
        self,
        redis_url: str,
        failure_threshold: int = 5,
        cool_down: float = 30.0,
        *,
        prefix: str = "po:breaker:",
        probe_seconds: float = 30.0,
        retry_after: float = 5.0,
        clock: Clock = time.time,
        client: Any = None,
    ) -> None:
        import redis

        self.failure_threshold = failure_threshold
        self.cool_down = cool_down
        self.prefix = prefix
        self.probe_ms = max(1, int(probe_seconds * 1000))
        self.keep_seconds = max(3600, int(cool_down * 10))
        self.retry_after = retry_after
        self.clock = clock
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._redis = client or redis.Redis.from_url(
            redis_url, socket_timeout=0.25, socket_connect_timeout=0.25, health_check_interval=30
        )
        self._scripts = {
            "before_call": self._redis.register_script(_BEFORE_CALL),
            "failure": self._redis.register_script(_FAILURE),
            "success": self._redis.register_script(_SUCCESS),
        }
        self.local = CircuitBreakers(failure_threshold, cool_down, clock=time.monotonic)
        self._down_until = 0.0
        self._lock = threading.Lock()

    def _keys(self, key: str) -> list[str]:
        return [f"{self.prefix}{key}", f"{self.prefix}{key}:probe"]

    def _shared(self, work: Callable[[], T], fallback: Callable[[], T]) -> T:
        """Ask Redis, or the local breakers while Redis is known to be down."""
        if time.monotonic() < self._down_until:
            return fallback()
        try:
            result = work()
        except self._errors as exc:
            with self._lock:
                first = self._down_until == 0.0
                self._down_until = time.monotonic() + self.retry_after
            if first:
                log.warning("circuit breakers: Redis unreachable (%s); using this process's own", type(exc).__name__)
            return fallback()
        if self._down_until:
            with self._lock:
                if self._down_until:
                    self._down_until = 0.0
                    log.warning("circuit breakers: Redis reachable again; breakers shared again")
        return result

    def state(self, key: str) -> BreakerState:
        """The breaker's state now (an open breaker past its cool-down reads as half-open)."""

        def shared() -> BreakerState:
            state, opened = self._redis.hmget(self._keys(key)[0], ["state", "opened_at"])
            found = BreakerState((state or b"closed").decode())
            if found is BreakerState.OPEN and self.clock() - float(opened or 0) >= self.cool_down:
                return BreakerState.HALF_OPEN
            return found

        return self._shared(shared, lambda: self.local.state(key))

    def before_call(self, key: str) -> None:
        """Let a call through, or raise CircuitOpen; after the cool-down one probe in all processes."""
        args = [repr(self.clock()), repr(self.cool_down), self.probe_ms, self.keep_seconds]

        def shared() -> bool:
            return bool(self._scripts["before_call"](keys=self._keys(key), args=args))

        def local() -> bool:
            self.local.before_call(key)
            return True

        if not self._shared(shared, local):
            raise CircuitOpen()

    def success(self, key: str) -> None:
        """The link answered: close the breaker everywhere."""
        self._shared(lambda: self._scripts["success"](keys=self._keys(key), args=[self.keep_seconds]), lambda: None)
        self.local.success(key)

    def failure(self, key: str) -> None:
        """The link failed: count it for every process; open at the threshold or when a probe fails."""
        args = [repr(self.clock()), self.failure_threshold, self.keep_seconds]
        self._shared(lambda: self._scripts["failure"](keys=self._keys(key), args=args), lambda: self.local.failure(key))

    def release(self, key: str) -> None:
        """A call ended without telling anything about the link: let another probe try."""
        self._shared(lambda: self._redis.delete(self._keys(key)[1]), lambda: self.local.release(key))

    def reset(self, key: str | None = None) -> None:
        """Forget one practice's breaker, or all of them."""

        def shared() -> None:
            if key is not None:
                self._redis.delete(*self._keys(key))
            else:
                found = list(self._redis.scan_iter(match=f"{self.prefix}*", count=500))
                if found:
                    self._redis.delete(*found)

        self._shared(shared, lambda: None)
        self.local.reset(key)


class PracticeBusy(ClinicalSystemUnavailable):
    """This process already has as many calls waiting on the practice's system as it allows: a slow practice
    must not take every thread, or every other practice's patients would wait behind it."""


class _Places:
    """One practice's places in this process, given in the order calls asked for them, and how its calls have
    been going."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.turn = threading.Condition()  # guards everything below
        self.in_use = 0
        self.line: deque[object] = deque()  # calls waiting, first come first served
        self.started: dict[int, float] = {}  # each call in progress (by a token) -> when it began
        self.typical = 0.0  # a moving average of how long its calls take
        self.next_token = 0

    def moving(self, at: float, slow: float) -> bool:
        """Whether its calls are finishing quickly: none in progress for ``slow`` seconds, and recent ones quick.
        Called with ``turn`` held."""
        oldest = min(self.started.values(), default=at)
        return self.typical < slow and at - oldest < slow

    def take(self, give_up: Callable[[float], bool]) -> int:
        """Wait in line for a place (``give_up`` is asked each time the wait is looked at); a token for ``give``."""
        me = object()
        with self.turn:
            self.line.append(me)
            try:
                while self.line[0] is not me or self.in_use >= self.limit:
                    if give_up(time.monotonic()):
                        raise PracticeBusy()
                    self.turn.wait(_LOOK_AGAIN)
                self.in_use += 1
                self.next_token += 1
                self.started[self.next_token] = time.monotonic()
                return self.next_token
            finally:
                self.line.remove(me)
                self.turn.notify_all()  # the next in line may go now

    def give(self, token: int) -> None:
        """Give the place back, noting how long the call took."""
        with self.turn:
            took = time.monotonic() - self.started.pop(token)
            self.typical = took if not self.typical else 0.7 * self.typical + 0.3 * took
            self.in_use -= 1
            self.turn.notify_all()


class Bulkheads:
    """At most ``limit`` calls at once to each practice's system from this process, given in turn.

    A call that finds every place taken waits in line while the practice's calls are finishing quickly (a
    busy practice on a healthy link: its places free every fraction of a second), up to the request's deadline
    or, without one, ``slow`` seconds. Once its calls are slow (one has been running ``slow`` seconds, or they
    have been taking that long), a call waits at most ``wait`` seconds, then fails with PracticeBusy: a request
    waiting for a place holds a thread, and a slow practice must not take them all.
    """

    def __init__(self, limit: int = 4, wait: float = 1.0, slow: float = 2.0) -> None:
        self.limit = limit
        self.wait = wait
        self.slow = slow
        self._places: dict[str, _Places] = {}
        self._lock = threading.Lock()

    def _of(self, key: str) -> _Places:
        with self._lock:
            places = self._places.get(key)
            if places is None:
                places = self._places[key] = _Places(self.limit)
            return places

    @contextmanager
    def entered(self, key: str) -> Iterator[None]:
        """Hold one of the practice's places for the block."""
        if self.limit <= 0:
            yield
            return
        places = self._of(key)
        began = time.monotonic()
        limit = deadline.remaining()

        def give_up(at: float) -> bool:
            waited = at - began
            if (limit if limit is not None else self.slow) - waited <= 0:
                return True  # out of time
            return waited >= self.wait and not places.moving(at, self.slow)

        token = places.take(give_up)
        try:
            yield
        finally:
            places.give(token)


# How often a call waiting for a place looks again at how the practice's calls are going.
_LOOK_AGAIN = 0.05


def breakers_for(redis_url: str, failure_threshold: int, cool_down: float) -> Breakers:
    """Shared breakers when Redis is configured, this process's own otherwise."""
    if redis_url:
        return SharedCircuitBreakers(redis_url, failure_threshold, cool_down)
    return CircuitBreakers(failure_threshold, cool_down)


def _retryable(error: BaseException) -> bool:
    return isinstance(error, ClinicalSystemUnavailable) and not isinstance(
        error, CircuitOpen | PracticeBusy | deadline.DeadlineExceeded
    )


class _OutOfTime(stop_base):
    """Stop retrying when the wait before the next try would leave no time of the deadline to make it."""

    def __init__(self, waiting: Callable[[RetryCallState], float]) -> None:
        self.waiting = waiting

    def __call__(self, state: RetryCallState) -> bool:
        left = deadline.remaining()
        return left is not None and left < self.waiting(state) + deadline.MINIMUM_CALL_SECONDS


# Optional port methods that change something at the practice: never retried (a retry could do it twice).
_OPTIONAL_WRITES = frozenset({"amend"})
# Those that change a patient's appointments (their first argument is the patient).
_APPOINTMENT_WRITES = frozenset({"amend"})


class ResilientClinicalSystem:
    """Any ClinicalSystem with read retries and a per-practice circuit breaker in front of it."""

    def __init__(
        self,
        inner: ClinicalSystem,
        practice_ods: str,
        *,
        breakers: Breakers | None = None,
        attempts: int = 3,
        backoff: float = 0.2,
        max_backoff: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        budget: float | None = None,
        bulkheads: Bulkheads | None = None,
        changed: Callable[[PatientRef], None] | None = None,
    ) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.practice_ods = practice_ods
        self.breakers = breakers or BREAKERS
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self.budget = budget
        self.bulkheads = bulkheads
        self.changed = changed

    @contextmanager
    def _budget(self) -> Iterator[None]:
        """Calls made outside any request or job budget (commands, tests) get one of their own."""
        if self.budget is None or deadline.active():
            yield
        else:
            with deadline.within(self.budget):
                yield

    def _guarded(self, call: Callable[[], T]) -> T:
        key = self.practice_ods
        deadline.check()  # no time left: fail before taking a probe or counting anything
        with self.bulkheads.entered(key) if self.bulkheads else contextlib.nullcontext():
            return self._through_breaker(key, call)

    def _through_breaker(self, key: str, call: Callable[[], T]) -> T:
        self.breakers.before_call(key)
        try:
            result = call()
        except deadline.DeadlineExceeded:
            self.breakers.release(key)  # stopped by the request's deadline: nothing learnt about the link
            raise
        except ClinicalSystemUnavailable:
            self.breakers.failure(key)
            raise
        except DomainError:
            self.breakers.success(key)  # the system answered: the link works
            raise
        except BaseException:
            self.breakers.release(key)
            raise
        self.breakers.success(key)
        return result

    def _read(self, call: Callable[[], T]) -> T:
        waiting = wait_exponential(multiplier=self.backoff, max=self.max_backoff)

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts) | _OutOfTime(waiting),
            wait=waiting,
            retry=retry_if_exception(_retryable),
            sleep=self._sleep,
            reraise=True,
        )
        with self._budget():
            return cast(T, retrying(self._guarded, call))

    def _write(self, call: Callable[[], T]) -> T:
        with self._budget():
            return self._guarded(call)

    def _change(self, patient: PatientRef, call: Callable[[], T]) -> T:
        """A write to the patient's appointments: whatever remembers them is told, even when the call failed
        (it may have gone through all the same)."""
        try:
            return self._write(call)
        finally:
            if self.changed is not None:
                self.changed(patient)

    # reads
    def find_patient(self, nhs_number: str) -> Demographics | None:
        """The patient, retried on a flaky link."""
        return self._read(lambda: self.inner.find_patient(nhs_number))

    def search_slots(self, query: SlotQuery) -> list[Slot]:
        """Free slots, retried on a flaky link."""
        return self._read(lambda: self.inner.search_slots(query))

    def list_appointments(self, patient: PatientRef, since: dt.datetime) -> list[Appointment]:
        """The patient's appointments, retried on a flaky link."""
        return self._read(lambda: self.inner.list_appointments(patient, since))

    def list_repeat_template(self, patient: PatientRef) -> list[RepeatItem]:
        """The repeat template, retried on a flaky link."""
        return self._read(lambda: self.inner.list_repeat_template(patient))

    def list_requests(self, patient: PatientRef) -> list[RepeatRequest]:
        """The repeat requests, retried on a flaky link."""
        return self._read(lambda: self.inner.list_requests(patient))

    def get_record(self, patient: PatientRef, sections: frozenset[Section]) -> RecordExtract:
        """The record extract, retried on a flaky link."""
        return self._read(lambda: self.inner.get_record(patient, sections))

    # writes: never retried here
    def book(self, patient: PatientRef, slot_id: str, reason: str, idempotency_key: str) -> Appointment:
        """Book once; a failure is reported, not retried."""
        return self._change(patient, lambda: self.inner.book(patient, slot_id, reason, idempotency_key))

    def cancel(self, patient: PatientRef, appointment_id: str, reason: str) -> Appointment:
        """Cancel once; a failure is reported, not retried."""
        return self._change(patient, lambda: self.inner.cancel(patient, appointment_id, reason))

    def request_repeats(
        self,
        patient: PatientRef,
        item_ids: Sequence[str],
        note: str,
        pharmacy_ods: str,
        idempotency_key: str,
        *,
        collection: Collection = Collection.PHARMACY,
        requested_at: dt.datetime | None = None,
    ) -> RepeatRequest:
        """Request once; a failure is reported, not retried."""
        return self._write(
            lambda: self.inner.request_repeats(
                patient,
                item_ids,
                note,
                pharmacy_ods,
                idempotency_key,
                collection=collection,
                requested_at=requested_at,
            )
        )

    def cancel_request(self, patient: PatientRef, request_id: str) -> RepeatRequest:
        """Cancel once; a failure is reported, not retried."""
        return self._write(lambda: self.inner.cancel_request(patient, request_id))

    def __getattr__(self, name: str) -> object:
        """Optional ports the inner system offers, through the same breaker: reads (reporting figures, patient
        search) retried within the budget, writes (amending an appointment) tried once."""
        if name.startswith("_") or name == "inner":
            raise AttributeError(name)
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute
        if name in _APPOINTMENT_WRITES:
            return lambda patient, *args, **kwargs: self._change(patient, lambda: attribute(patient, *args, **kwargs))
        through = self._write if name in _OPTIONAL_WRITES else self._read
        return lambda *args, **kwargs: through(lambda: attribute(*args, **kwargs))

    def link_state(self) -> LinkState:
        """The breaker's state with the inner adapter's own view; not ok while the breaker is open."""
        state = self.breakers.state(self.practice_ods)
        inner = self.inner.link_state()
        detail = f"circuit {state.value}" + (f"; {inner.detail}" if inner.detail else "")
        return LinkState(ok=state is not BreakerState.OPEN and inner.ok, detail=detail)


def resilient(
    inner: ClinicalSystem,
    practice_ods: str,
    breakers: Breakers | None = None,
    budget: float | None = None,
    bulkheads: Bulkheads | None = None,
    changed: Callable[[PatientRef], None] | None = None,
) -> ClinicalSystem:
    """Wrap an adapter for a practice; the composition root calls this for every adapter it builds. ``changed``
    is told of every booking, cancellation and amendment made for a patient (see appointment_memory)."""
    return ResilientClinicalSystem(
        inner, practice_ods, breakers=breakers, budget=budget, bulkheads=bulkheads, changed=changed
    )
