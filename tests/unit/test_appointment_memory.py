"""The finding pages' short memory of each patient's own appointments: kept per patient and never served for
anyone else, forgotten when the gateway changes the patient's bookings, gone when it expires, and never used by
booking, cancelling or rescheduling, which read afresh."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from typing import Any, cast

import pytest

from patient_online.adapters.resilience import CircuitBreakers, resilient
from patient_online.domain.appointments import (
    Appointment,
    AppointmentStatus,
    BookingFailed,
    Clinician,
    DeliveryMode,
    Slot,
)
from patient_online.domain.errors import ClinicalSystemUnavailable
from patient_online.domain.patients import PatientRef
from patient_online.services import appointments as service
from patient_online.services.access import Acting
from patient_online.services.appointment_memory import PatientAppointmentMemory, RedisChanges
from patient_online.services.slot_cache import SlotSearchCache
from tests.fakes import FakeClinicalSystem, FakeClinicalSystems, FakeUnitOfWork
from tests.unit.conftest import acting, patient

GP = Clinician("C1", "Dr Ada Byron", "GP")
START = dt.datetime(2026, 3, 5, 9, 0, tzinfo=dt.UTC)
ALEX = PatientRef("B81001", "9000000001", "P1")
SAM = PatientRef("B81001", "9000000002", "P2")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _appointment(aid: str) -> Appointment:
    slot = Slot(f"S-{aid}", START, START + dt.timedelta(minutes=10), "Routine", GP, DeliveryMode.FACE_TO_FACE, "")
    return Appointment(aid, slot, AppointmentStatus.BOOKED)


class Reads:
    """A patient's appointments as the practice's system would give them, counting the reads."""

    def __init__(self, *ids: str) -> None:
        self.appointments = [_appointment(i) for i in ids]
        self.count = 0

    def __call__(self) -> list[Appointment]:
        self.count += 1
        return list(self.appointments)


# The memory ---------------------------------------------------------------------------------------------------
def test_a_patients_appointments_are_kept_for_them_until_they_expire() -> None:
    clock, reads = Clock(), Reads("A1")
    memory = PatientAppointmentMemory(30, clock=clock)
    assert [a.id for a in memory.appointments(ALEX, reads)] == ["A1"]
    clock.now += 29.9
    assert [a.id for a in memory.appointments(ALEX, reads)] == ["A1"]
    assert reads.count == 1
    clock.now += 0.2
    memory.appointments(ALEX, reads)
    assert reads.count == 2


def test_one_patients_appointments_are_never_served_for_another() -> None:
    memory = PatientAppointmentMemory(30, clock=Clock())
    alex, sam = Reads("A1"), Reads("S1")
    memory.appointments(ALEX, alex)
    assert [a.id for a in memory.appointments(SAM, sam)] == ["S1"]
    same_id_elsewhere = PatientRef("Y02001", ALEX.nhs_number, ALEX.clinical_id)
    assert memory.appointments(same_id_elsewhere, Reads()) == []
    assert (alex.count, sam.count) == (1, 1)


def test_forgetting_a_patient_reads_theirs_again_and_keeps_the_others() -> None:
    memory = PatientAppointmentMemory(30, clock=Clock())
    alex, sam = Reads("A1"), Reads("S1")
    memory.appointments(ALEX, alex)
    memory.appointments(SAM, sam)
    alex.appointments.append(_appointment("A2"))
    memory.forget(ALEX)
    assert [a.id for a in memory.appointments(ALEX, alex)] == ["A1", "A2"]
    memory.appointments(SAM, sam)
    assert (alex.count, sam.count) == (2, 1)


def test_a_read_under_way_when_the_patients_appointments_change_is_not_kept() -> None:
    memory = PatientAppointmentMemory(30, clock=Clock())
    reads = Reads("A1")

    def read_then_changed_meanwhile() -> list[Appointment]:
        found = reads()
        memory.forget(ALEX)  # another thread booked for the patient while this read was on its way back
        return found

    memory.appointments(ALEX, read_then_changed_meanwhile)
    memory.appointments(ALEX, reads)
    assert reads.count == 2
    memory.appointments(ALEX, reads)
    assert reads.count == 2


def test_a_read_older_than_the_changes_still_known_is_not_kept() -> None:
    memory = PatientAppointmentMemory(30, max_entries=2, clock=Clock())
    reads = Reads("A1")

    def read_while_many_changed() -> list[Appointment]:
        found = reads()
        memory.forget(ALEX)  # forgotten by the bound below: only the last two changes are known
        for n in range(3):
            memory.forget(PatientRef("B81001", f"90000001{n:02d}", f"Q{n}"))
        return found

    memory.appointments(ALEX, read_while_many_changed)
    memory.appointments(ALEX, reads)
    assert reads.count == 2


def test_nothing_is_held_after_expiry_and_never_more_than_the_bound() -> None:
    clock = Clock()
    memory = PatientAppointmentMemory(30, max_entries=2, clock=clock)
    for n in range(3):
        memory.appointments(PatientRef("B81001", f"900000000{n}", f"P{n}"), Reads("A1"))
    assert len(memory) == 2
    clock.now += 30
    assert len(memory) == 0


def test_zero_seconds_keeps_nothing() -> None:
    memory = PatientAppointmentMemory(0)
    reads = Reads("A1")
    memory.appointments(ALEX, reads)
    memory.appointments(ALEX, reads)
    memory.forget(ALEX)
    assert reads.count == 2 and len(memory) == 0


def test_patients_read_at_once_each_get_their_own() -> None:
    memory = PatientAppointmentMemory(30)
    refs = [PatientRef("B81001", f"90000000{n:02d}", f"P{n}") for n in range(20)]
    seen: dict[PatientRef, list[str]] = {}

    def look(ref: PatientRef) -> None:
        for _ in range(50):
            seen[ref] = [a.id for a in memory.appointments(ref, lambda: [_appointment(ref.clinical_id)])]

    threads = [threading.Thread(target=look, args=(r,)) for r in refs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(seen[r] == [r.clinical_id] for r in refs)


class SharedChanges:
    """Patients' numbers of changes as Redis would keep them for every process; ``down`` as if it were gone."""

    def __init__(self) -> None:
        self.numbers: dict[PatientRef, int] = {}
        self.down = False

    def number(self, who: PatientRef) -> str | None:
        return None if self.down else str(self.numbers.get(who, 0))

    def count(self, who: PatientRef) -> None:
        if not self.down:
            self.numbers[who] = self.numbers.get(who, 0) + 1


def test_a_change_made_by_another_process_is_seen_at_once() -> None:
    shared = SharedChanges()
    here, there = PatientAppointmentMemory(30, changes=shared), PatientAppointmentMemory(30, changes=shared)
    reads = Reads("A1")
    here.appointments(ALEX, reads)
    here.appointments(ALEX, reads)
    assert reads.count == 1
    there.forget(ALEX)  # another worker booked for the patient
    here.appointments(ALEX, reads)
    assert reads.count == 2
    there.forget(SAM)
    here.appointments(ALEX, reads)
    assert reads.count == 2


def test_nothing_is_kept_while_the_shared_numbers_cannot_be_read() -> None:
    shared = SharedChanges()
    memory = PatientAppointmentMemory(30, changes=shared)
    reads = Reads("A1")
    shared.down = True
    memory.appointments(ALEX, reads)
    memory.appointments(ALEX, reads)
    assert reads.count == 2 and len(memory) == 0


def test_the_redis_key_holds_no_personal_reference() -> None:
    class Client:
        def __init__(self) -> None:
            self.keys: list[str] = []

        def get(self, key: str) -> bytes | None:
            self.keys.append(key)
            return b"3"

    client = Client()
    changes = RedisChanges("redis://unused", 30, "one deployment's secret", client=client)
    assert changes.number(ALEX) == "3"
    assert ALEX.nhs_number not in client.keys[0] and ALEX.clinical_id not in client.keys[0]
    plain = hashlib.sha256(f"{ALEX.practice_ods}|{ALEX.nhs_number}|{ALEX.clinical_id}".encode()).hexdigest()[:32]
    assert plain not in client.keys[0], "a plain hash of an NHS number can be reversed by trying them all"
    RedisChanges("redis://unused", 30, "another deployment's secret", client=client).number(ALEX)
    assert client.keys[1] != client.keys[0]


def test_while_redis_is_down_it_is_not_asked_on_every_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each try costs a page the connection timeout: after a failure, Redis is asked again only a while later."""
    import redis

    from patient_online.services import appointment_memory

    class Client:
        def __init__(self) -> None:
            self.asked, self.up = 0, False

        def get(self, key: str) -> bytes | None:
            self.asked += 1
            if not self.up:
                raise redis.ConnectionError("refused")
            return b"2"

    monkeypatch.setattr(appointment_memory, "RETRY_REDIS_AFTER", 0.2)
    client = Client()
    changes = RedisChanges("redis://unused", 30, "secret", client=client)
    assert [changes.number(ALEX) for _ in range(3)] == [None, None, None]
    assert client.asked == 1
    client.up = True
    time.sleep(0.25)
    assert changes.number(ALEX) == "2" and client.asked == 2


def test_the_slot_search_memory_keeps_none_unless_given_one() -> None:
    memory = PatientAppointmentMemory(30)
    assert SlotSearchCache(10, appointments=memory).appointments is memory
    assert SlotSearchCache(10).appointments.seconds == 0


# With the use cases --------------------------------------------------------------------------------------------
def _remembering(uow: FakeUnitOfWork) -> None:
    """The memory as the app wires it: told of every change by the resilience layer around the system."""
    memory = PatientAppointmentMemory(30)
    uow.slot_cache = SlotSearchCache(0, appointments=memory)
    uow.clinical_systems = FakeClinicalSystems(
        cast(FakeClinicalSystem, resilient(uow.system, "ANY", CircuitBreakers(), changed=memory.forget))
    )


def _free(uow: FakeUnitOfWork, sid: str, hours: float) -> Slot:
    start = uow.now() + dt.timedelta(hours=hours)
    slot = Slot(sid, start, start + dt.timedelta(minutes=10), "Routine", GP, DeliveryMode.FACE_TO_FACE, "Surgery")
    uow.system.slots[sid] = slot
    return slot


def _reads(uow: FakeUnitOfWork) -> int:
    return uow.system.calls.count("list_appointments")


def _book(uow: FakeUnitOfWork, who: Acting, sid: str, hours: float = 26) -> Appointment:
    slot = _free(uow, sid, hours)
    return service.book_appointment(uow, who, sid, "Sore knee", f"key-{sid}", slot.start)


def test_the_finding_pages_read_the_patients_appointments_once_then_from_memory(uow: FakeUnitOfWork) -> None:
    _remembering(uow)
    who = acting(uow)
    _book(uow, who, "mine")
    _free(uow, "free", 30)
    before = _reads(uow)
    first = service.find_slots(uow, who, service.SlotFilter())
    service.find_days(uow, who, service.SlotFilter())
    service.start_booking(uow, who)
    assert _reads(uow) == before + 1
    assert first.upcoming_count == 1
    assert "mine" not in {s.id for d in first.days for s in d.slots}


def test_booking_cancelling_and_rescheduling_read_afresh_and_the_patient_is_forgotten(uow: FakeUnitOfWork) -> None:
    _remembering(uow)
    who = acting(uow)
    service.find_slots(uow, who, service.SlotFilter())
    reads = _reads(uow)
    booked = _book(uow, who, "s1")
    assert _reads(uow) > reads  # booking read the patient's appointments itself
    assert service.find_slots(uow, who, service.SlotFilter()).upcoming_count == 1

    new = _free(uow, "s2", 30)
    service.reschedule_appointment(uow, who, booked.id, "s2", "Reason", "key-s2", new.start)
    page = service.find_slots(uow, who, service.SlotFilter())
    assert page.upcoming_count == 1 and "s1" in {s.id for d in page.days for s in d.slots}

    held = next(a for _, a in uow.system.appointments.values() if a.slot.id == "s2")
    service.cancel_appointment(uow, who, held.id, "")
    assert service.find_slots(uow, who, service.SlotFilter()).upcoming_count == 0


def test_a_change_that_failed_forgets_the_patient_all_the_same(uow: FakeUnitOfWork) -> None:
    """A booking whose answer was lost may have been made: the next page reads the patient's appointments."""
    _remembering(uow)
    who = acting(uow)
    slot = _free(uow, "s1", 26)
    service.find_slots(uow, who, service.SlotFilter())
    uow.system.fail_next["book"] = ClinicalSystemUnavailable("no answer")
    with pytest.raises(BookingFailed):
        service.book_appointment(uow, who, "s1", "Reason", "k", slot.start)
    reads = _reads(uow)
    service.find_slots(uow, who, service.SlotFilter())
    assert _reads(uow) == reads + 1


def test_another_patient_of_the_practice_never_sees_the_first_ones_appointments(uow: FakeUnitOfWork) -> None:
    _remembering(uow)
    first = acting(uow)
    _book(uow, first, "theirs")
    assert service.find_slots(uow, first, service.SlotFilter()).upcoming_count == 1
    second = acting(uow, patient(uow, first.practice))
    page = service.find_slots(uow, second, service.SlotFilter())
    assert page.upcoming_count == 0


def test_without_redis_the_app_keeps_nothing_as_its_workers_could_not_tell_each_other() -> None:
    from flask import Flask

    from patient_online.wiring import _appointment_memory

    app = Flask(__name__)
    app.config.update(FINDING_APPOINTMENTS_MEMORY_SECONDS=30.0, REDIS_URL="", SECRET_KEY="s")
    assert _appointment_memory(app).seconds == 0
    app.config["REDIS_URL"] = "redis://127.0.0.1:6379/15"
    kept = _appointment_memory(app)
    assert kept.seconds == 30.0 and isinstance(kept.changes, RedisChanges)


def test_a_change_is_counted_even_while_redis_seemed_down() -> None:
    """Only the reads are spared while Redis is away: a change the other processes miss would leave them stale."""
    import redis

    class Client:
        def __init__(self) -> None:
            self.counted = 0

        def get(self, key: str) -> bytes | None:
            raise redis.TimeoutError("slow")

        def pipeline(self) -> Any:
            client = self

            class Pipe:
                def __enter__(self) -> Pipe:
                    return self

                def __exit__(self, *exc: object) -> None:
                    return None

                def incr(self, key: str) -> Pipe:
                    return self

                def expire(self, key: str, seconds: int) -> Pipe:
                    return self

                def execute(self) -> None:
                    client.counted += 1

            return Pipe()

    client = Client()
    changes = RedisChanges("redis://unused", 30, "secret", client=client)
    assert changes.number(ALEX) is None  # Redis seems down now
    changes.count(ALEX)
    assert client.counted == 1
