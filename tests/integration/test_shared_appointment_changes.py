"""With Redis configured, a booking made through one node makes every other node forget what it remembered of
that patient's appointments (services/appointment_memory.py), under a key no one can turn back into the patient."""

from __future__ import annotations

import uuid

import pytest
import redis

from patient_online.domain.appointments import Appointment
from patient_online.domain.patients import PatientRef
from patient_online.services.appointment_memory import PatientAppointmentMemory, RedisChanges
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.redis

SECRET = "this deployment's secret"


@pytest.fixture
def patient(redis_url: str) -> PatientRef:
    """A patient no other test run uses, so the shared counts start from nothing (Redis must be there)."""
    return PatientRef("B81001", "9000000001", f"P-{uuid.uuid4().hex[:12]}")


class Reads:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> list[Appointment]:
        self.count += 1
        return []


def test_a_change_seen_at_one_node_is_forgotten_at_the_other(patient: PatientRef) -> None:
    node_a = PatientAppointmentMemory(30, changes=RedisChanges(REDIS_URL, 30, SECRET))
    node_b = PatientAppointmentMemory(30, changes=RedisChanges(REDIS_URL, 30, SECRET))
    reads = Reads()
    node_b.appointments(patient, reads)
    node_b.appointments(patient, reads)
    assert reads.count == 1, "remembered at node B"
    node_a.forget(patient)  # the patient booked through node A
    node_b.appointments(patient, reads)
    assert reads.count == 2, "node B read them afresh"


def test_the_shared_count_is_under_a_keyed_hash_only(patient: PatientRef) -> None:
    changes = RedisChanges(REDIS_URL, 30, SECRET)
    changes.count(patient)
    key = changes._key(patient)
    assert redis.Redis.from_url(REDIS_URL).get(key) == b"1"
    assert patient.nhs_number not in key and patient.clinical_id not in key
    assert RedisChanges(REDIS_URL, 30, "another deployment").number(patient) == "0", "the key needs the secret"
