"""The circuit breaker's state machine (fake clock) and which calls are retried."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest

from patient_online.adapters.resilience import BreakerState, CircuitBreakers, CircuitOpen, ResilientClinicalSystem
from patient_online.domain.appointments import Appointment, Slot, SlotQuery
from patient_online.domain.errors import ClinicalSystemUnavailable, PatientNotFound
from patient_online.domain.patients import Demographics, PatientRef
from patient_online.domain.ports import ClinicalSystem, LinkState
from patient_online.domain.prescriptions import RepeatItem, RepeatRequest
from patient_online.domain.record import RecordExtract, Section

PATIENT = PatientRef("A1", "9990000018", "1")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Flaky:
    """A ClinicalSystem whose every call fails while ``failing`` is set; counts calls by name."""

    name = "flaky"

    def __init__(self) -> None:
        self.failing = True
        self.error: Exception = ClinicalSystemUnavailable()
        self.calls: dict[str, int] = {}

    def _call(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.failing:
            raise self.error

    def find_patient(self, nhs_number: str) -> Demographics | None:
        self._call("find_patient")
        return None

    def search_slots(self, query: SlotQuery) -> list[Slot]:
        self._call("search_slots")
        return []

    def book(self, patient: PatientRef, slot_id: str, reason: str, idempotency_key: str) -> Appointment:
        self._call("book")
        raise AssertionError("not reached in these tests")

    def cancel(self, patient: PatientRef, appointment_id: str, reason: str) -> Appointment:
        self._call("cancel")
        raise AssertionError("not reached in these tests")

    def list_appointments(self, patient: PatientRef, since: dt.datetime) -> list[Appointment]:
        self._call("list_appointments")
        return []

    def list_repeat_template(self, patient: PatientRef) -> list[RepeatItem]:
        self._call("list_repeat_template")
        return []

    def request_repeats(
        self,
        patient: PatientRef,
        item_ids: Sequence[str],
        note: str,
        pharmacy_ods: str,
        idempotency_key: str,
        **where_and_when: object,  # collection, requested_at
    ) -> RepeatRequest:
        self._call("request_repeats")
        raise AssertionError("not reached in these tests")

    def cancel_request(self, patient: PatientRef, request_id: str) -> RepeatRequest:
        self._call("cancel_request")
        raise AssertionError("not reached in these tests")

    def amend(self, patient: PatientRef, appointment_id: str, reason: str) -> Appointment:
        self._call("amend")
        raise AssertionError("not reached in these tests")

    def list_requests(self, patient: PatientRef) -> list[RepeatRequest]:
        self._call("list_requests")
        return []

    def get_record(self, patient: PatientRef, sections: frozenset[Section]) -> RecordExtract:
        self._call("get_record")
        return RecordExtract()

    def link_state(self) -> LinkState:
        return LinkState(ok=True, detail="fake")


def make(threshold: int = 5, attempts: int = 3) -> tuple[ResilientClinicalSystem, Flaky, FakeClock, list[float]]:
    clock = FakeClock()
    inner = Flaky()
    sleeps: list[float] = []
    breakers = CircuitBreakers(failure_threshold=threshold, cool_down=30, clock=clock)
    wrapped = ResilientClinicalSystem(inner, "A1", breakers=breakers, attempts=attempts, sleep=sleeps.append)
    return wrapped, inner, clock, sleeps


def test_it_is_a_clinical_system() -> None:
    wrapped: ClinicalSystem = make()[0]
    assert wrapped.name == "flaky"


READS = {
    "find_patient": lambda s: s.find_patient("9990000018"),
    "search_slots": lambda s: s.search_slots(SlotQuery(dt.datetime.now(dt.UTC), dt.datetime.now(dt.UTC))),
    "list_appointments": lambda s: s.list_appointments(PATIENT, dt.datetime.now(dt.UTC)),
    "list_repeat_template": lambda s: s.list_repeat_template(PATIENT),
    "list_requests": lambda s: s.list_requests(PATIENT),
    "get_record": lambda s: s.get_record(PATIENT, frozenset({Section.ALLERGIES})),
}
WRITES = {
    "book": lambda s: s.book(PATIENT, "1", "reason", "key"),
    "cancel": lambda s: s.cancel(PATIENT, "1", "reason"),
    "request_repeats": lambda s: s.request_repeats(PATIENT, ["a"], "", "", "key"),
    "cancel_request": lambda s: s.cancel_request(PATIENT, "r"),
    "amend": lambda s: s.amend(PATIENT, "1", "new reason"),  # an optional port, still a write
}


@pytest.mark.parametrize("name", sorted(READS))
def test_reads_are_retried_with_backoff(name: str) -> None:
    wrapped, inner, _clock, sleeps = make(threshold=10)
    with pytest.raises(ClinicalSystemUnavailable):
        READS[name](wrapped)
    assert inner.calls[name] == 3
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0]


@pytest.mark.parametrize("name", sorted(WRITES))
def test_writes_are_never_retried(name: str) -> None:
    wrapped, inner, _clock, sleeps = make(threshold=10)
    with pytest.raises(ClinicalSystemUnavailable):
        WRITES[name](wrapped)
    assert inner.calls[name] == 1 and sleeps == []


def test_domain_errors_are_not_retried_and_count_as_a_working_link() -> None:
    wrapped, inner, _clock, _sleeps = make(threshold=2)
    inner.error = PatientNotFound()
    for _ in range(3):
        with pytest.raises(PatientNotFound):
            wrapped.get_record(PATIENT, frozenset({Section.ALLERGIES}))
    assert inner.calls["get_record"] == 3
    assert wrapped.breakers.state("A1") is BreakerState.CLOSED


def test_a_read_that_recovers_succeeds() -> None:
    wrapped, inner, _clock, _sleeps = make()

    def recover(name: str) -> None:
        inner.calls[name] = inner.calls.get(name, 0) + 1
        inner.failing = inner.calls[name] < 2
        if inner.failing:
            raise ClinicalSystemUnavailable()

    inner._call = recover  # type: ignore[method-assign]
    assert wrapped.find_patient("9990000018") is None
    assert inner.calls["find_patient"] == 2


def test_breaker_opens_half_opens_and_closes() -> None:
    wrapped, inner, clock, _sleeps = make(threshold=5, attempts=1)
    for _ in range(4):
        with pytest.raises(ClinicalSystemUnavailable):
            wrapped.book(PATIENT, "1", "", "k")
    assert wrapped.breakers.state("A1") is BreakerState.CLOSED
    with pytest.raises(ClinicalSystemUnavailable):
        wrapped.book(PATIENT, "1", "", "k")
    assert wrapped.breakers.state("A1") is BreakerState.OPEN
    assert wrapped.link_state() == LinkState(ok=False, detail="circuit open; fake")

    calls = inner.calls["book"]
    with pytest.raises(CircuitOpen):
        wrapped.find_patient("9990000018")
    assert "find_patient" not in inner.calls and inner.calls["book"] == calls  # refused without calling

    clock.now += 29
    with pytest.raises(CircuitOpen):
        wrapped.find_patient("9990000018")
    clock.now += 1
    assert wrapped.breakers.state("A1") is BreakerState.HALF_OPEN
    assert wrapped.link_state().ok is True

    # a failed probe opens it again for another cool-down
    with pytest.raises(ClinicalSystemUnavailable):
        wrapped.find_patient("9990000018")
    assert inner.calls["find_patient"] == 1
    assert wrapped.breakers.state("A1") is BreakerState.OPEN

    clock.now += 30
    inner.failing = False
    assert wrapped.find_patient("9990000018") is None
    assert wrapped.breakers.state("A1") is BreakerState.CLOSED
    assert wrapped.link_state().detail.startswith("circuit closed")


def test_only_one_probe_while_half_open() -> None:
    clock = FakeClock()
    breakers = CircuitBreakers(failure_threshold=1, cool_down=30, clock=clock)
    breakers.failure("A1")
    clock.now += 30
    breakers.before_call("A1")  # the probe
    with pytest.raises(CircuitOpen):
        breakers.before_call("A1")
    breakers.success("A1")
    breakers.before_call("A1")


def test_breakers_are_per_practice() -> None:
    clock = FakeClock()
    breakers = CircuitBreakers(failure_threshold=1, cool_down=30, clock=clock)
    breakers.failure("A1")
    assert breakers.state("A1") is BreakerState.OPEN
    assert breakers.state("B2") is BreakerState.CLOSED
    breakers.before_call("B2")
    breakers.reset()
    assert breakers.state("A1") is BreakerState.CLOSED
