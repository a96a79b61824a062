"""Resilience for every clinical-system adapter: retries for safe reads and a circuit breaker per practice.

``ResilientClinicalSystem`` wraps any ClinicalSystem. Reads (find_patient, search_slots, list_*,
get_record) are retried with exponential backoff on ClinicalSystemUnavailable; writes are never retried
(their idempotency keys and the outbox deal with those). Every attempt passes a circuit breaker kept per
practice ODS code: after N consecutive link failures it opens and calls fail at once, after a cool-down
it lets one probe through (half-open), and a successful probe closes it again.
Timeouts belong to the HTTP adapters themselves.
"""

from __future__ import annotations

import datetime as dt
import enum
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from patient_online.domain.appointments import Appointment, Slot, SlotQuery
from patient_online.domain.errors import ClinicalSystemUnavailable, DomainError
from patient_online.domain.patients import Demographics, PatientRef
from patient_online.domain.ports import ClinicalSystem, LinkState
from patient_online.domain.prescriptions import Collection, RepeatItem, RepeatRequest
from patient_online.domain.record import RecordExtract, Section

T = TypeVar("T")
Clock = Callable[[], float]


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


def _retryable(error: BaseException) -> bool:
    return isinstance(error, ClinicalSystemUnavailable) and not isinstance(error, CircuitOpen)


class ResilientClinicalSystem:
    """Any ClinicalSystem with read retries and a per-practice circuit breaker in front of it."""

    def __init__(
        self,
        inner: ClinicalSystem,
        practice_ods: str,
        *,
        breakers: CircuitBreakers | None = None,
        attempts: int = 3,
        backoff: float = 0.2,
        max_backoff: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.practice_ods = practice_ods
        self.breakers = breakers or BREAKERS
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep

    def _guarded(self, call: Callable[[], T]) -> T:
        key = self.practice_ods
        self.breakers.before_call(key)
        try:
            result = call()
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
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff, max=self.max_backoff),
            retry=retry_if_exception(_retryable),
            sleep=self._sleep,
            reraise=True,
        )
        return cast(T, retrying(self._guarded, call))

    def _write(self, call: Callable[[], T]) -> T:
        return self._guarded(call)

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
        return self._write(lambda: self.inner.book(patient, slot_id, reason, idempotency_key))

    def cancel(self, patient: PatientRef, appointment_id: str, reason: str) -> Appointment:
        """Cancel once; a failure is reported, not retried."""
        return self._write(lambda: self.inner.cancel(patient, appointment_id, reason))

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
        """Optional ports the inner system offers (reporting figures), read through the same breaker."""
        if name.startswith("_") or name == "inner":
            raise AttributeError(name)
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute
        return lambda *args, **kwargs: self._read(lambda: attribute(*args, **kwargs))

    def link_state(self) -> LinkState:
        """The breaker's state with the inner adapter's own view; not ok while the breaker is open."""
        state = self.breakers.state(self.practice_ods)
        inner = self.inner.link_state()
        detail = f"circuit {state.value}" + (f"; {inner.detail}" if inner.detail else "")
        return LinkState(ok=state is not BreakerState.OPEN and inner.ok, detail=detail)


def resilient(inner: ClinicalSystem, practice_ods: str, breakers: CircuitBreakers | None = None) -> ClinicalSystem:
    """Wrap an adapter for a practice; the composition root calls this for every adapter it builds."""
    return ResilientClinicalSystem(inner, practice_ods, breakers=breakers)
