"""The ClinicalSystem port's contract: every adapter must pass these (see conftest.CONTRACT_FACTORIES)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace
from typing import Any

import pytest

from patient_online.domain.appointments import AppointmentStatus, SlotQuery
from patient_online.domain.errors import PatientNotFound, SlotUnavailable
from patient_online.domain.ports import AppointmentAmendment
from patient_online.domain.prescriptions import Collection, PrescriptionType, RequestStatus
from patient_online.domain.record import Section

Subject = Any  # conftest.ContractSubject (not importable without packages)


def _slot(subject: Subject) -> Any:
    start, end = subject.slot_window
    slots = subject.system.search_slots(SlotQuery(start, end))
    assert slots, "the test patient's practice has free slots in the window"
    return slots[0]


def _orderable(subject: Subject) -> list[str]:
    template = subject.system.list_repeat_template(subject.patient)
    return [i.id for i in template if i.prescription_type is not PrescriptionType.ACUTE][:2]


def test_find_patient(contract_system: Subject) -> None:
    found = contract_system.system.find_patient(contract_system.patient.nhs_number)
    assert found is not None and found.ref == contract_system.patient
    assert found.family_name and found.date_of_birth
    assert contract_system.system.find_patient(contract_system.other_nhs_number_not_found) is None


def test_search_slots_returns_free_slots_in_the_window_sorted(contract_system: Subject) -> None:
    start, end = contract_system.slot_window
    slots = contract_system.system.search_slots(SlotQuery(start, end))
    assert slots
    assert slots == sorted(slots, key=lambda s: s.start)
    assert all(start <= s.start and s.end <= end for s in slots)
    taken = contract_system.system.book(contract_system.patient, slots[0].id, "Check up", str(uuid.uuid4()))
    again = contract_system.system.search_slots(SlotQuery(start, end))
    assert taken.slot.id not in {s.id for s in again}


def test_booked_appointment_is_listed(contract_system: Subject) -> None:
    slot = _slot(contract_system)
    booked = contract_system.system.book(contract_system.patient, slot.id, "Sore knee", str(uuid.uuid4()))
    assert booked.status is AppointmentStatus.BOOKED and booked.slot.id == slot.id
    listed = contract_system.system.list_appointments(contract_system.patient, dt.datetime.now(dt.UTC))
    assert booked.id in {a.id for a in listed}


def test_double_booking_raises_slot_unavailable(contract_system: Subject) -> None:
    slot = _slot(contract_system)
    contract_system.system.book(contract_system.patient, slot.id, "First", str(uuid.uuid4()))
    with pytest.raises(SlotUnavailable):
        contract_system.system.book(contract_system.other_patient, slot.id, "Second", str(uuid.uuid4()))


def test_cancel_sets_status_cancelled(contract_system: Subject) -> None:
    slot = _slot(contract_system)
    booked = contract_system.system.book(contract_system.patient, slot.id, "Review", str(uuid.uuid4()))
    cancelled = contract_system.system.cancel(contract_system.patient, booked.id, "No longer needed")
    assert cancelled.id == booked.id and cancelled.status is AppointmentStatus.CANCELLED


def test_repeat_template_is_not_empty(contract_system: Subject) -> None:
    template = contract_system.system.list_repeat_template(contract_system.patient)
    assert template and all(i.id and i.name for i in template)


def test_same_idempotency_key_makes_one_request(contract_system: Subject) -> None:
    items = _orderable(contract_system)
    key = str(uuid.uuid4())
    first = contract_system.system.request_repeats(contract_system.patient, items, "Please", "", key)
    second = contract_system.system.request_repeats(contract_system.patient, items, "Please", "", key)
    assert first.id == second.id and first.status is RequestStatus.REQUESTED
    assert set(first.item_ids) == set(items)
    requests = contract_system.system.list_requests(contract_system.patient)
    assert [r.id for r in requests].count(first.id) == 1


@pytest.mark.parametrize("collection", list(Collection))
def test_a_request_keeps_where_it_is_collected_and_when_the_patient_asked(
    contract_system: Subject, collection: Collection
) -> None:
    """A request queued while the link was down is sent later with the time the patient asked; a paper
    prescription at the surgery is asked for as such, and read back as such, with the patient's note intact."""
    asked = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)).replace(microsecond=0)
    pharmacy = "" if collection is Collection.SURGERY else "FA101"
    made = contract_system.system.request_repeats(
        contract_system.patient,
        _orderable(contract_system)[:1],
        "Going away on Friday",
        pharmacy,
        str(uuid.uuid4()),
        collection=collection,
        requested_at=asked,
    )
    assert made.collection is collection and made.requested_at == asked
    [listed] = [r for r in contract_system.system.list_requests(contract_system.patient) if r.id == made.id]
    assert listed.collection is collection and listed.requested_at == asked
    assert listed.note == "Going away on Friday" and listed.pharmacy_ods == pharmacy


def test_cancel_request(contract_system: Subject) -> None:
    made = contract_system.system.request_repeats(
        contract_system.patient, _orderable(contract_system)[:1], "", "", str(uuid.uuid4())
    )
    cancelled = contract_system.system.cancel_request(contract_system.patient, made.id)
    assert cancelled.id == made.id and cancelled.status is RequestStatus.CANCELLED


@pytest.mark.parametrize(
    "sections",
    [frozenset({Section.ALLERGIES}), frozenset({Section.MEDICATIONS, Section.PROBLEMS}), frozenset(Section)],
    ids=["allergies", "medications+problems", "all"],
)
def test_get_record_returns_only_the_sections_asked(contract_system: Subject, sections: frozenset[Section]) -> None:
    extract = contract_system.system.get_record(contract_system.patient, sections)
    assert extract.entries
    assert {e.section for e in extract.entries} <= sections
    assert all(n.section is None or n.section in sections for n in extract.notices)


def test_get_record_of_a_patient_the_system_does_not_hold_raises_patient_not_found(contract_system: Subject) -> None:
    stranger = replace(contract_system.patient, nhs_number=contract_system.other_nhs_number_not_found)
    with pytest.raises(PatientNotFound):
        contract_system.system.get_record(stranger, frozenset(Section))


def test_appointments_asked_from_long_ago_are_listed_with_clinician_and_place(contract_system: Subject) -> None:
    slot = _slot(contract_system)
    booked = contract_system.system.book(contract_system.patient, slot.id, "Rash", str(uuid.uuid4()))
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    listed = {a.id: a for a in contract_system.system.list_appointments(contract_system.patient, since)}
    assert booked.id in listed
    shown = listed[booked.id].slot
    assert shown.start == slot.start and shown.clinician.name == slot.clinician.name
    assert shown.location == slot.location


def test_amend_changes_only_the_reason(contract_system: Subject) -> None:
    amending = contract_system.system
    if not isinstance(amending, AppointmentAmendment):
        pytest.skip("this adapter does not offer amending appointments")
    slot = _slot(contract_system)
    booked = contract_system.system.book(contract_system.patient, slot.id, "Rash", str(uuid.uuid4()))
    amended = amending.amend(contract_system.patient, booked.id, "Rash on both arms")
    assert amended.id == booked.id and amended.reason == "Rash on both arms"
    assert amended.status is AppointmentStatus.BOOKED and amended.slot.start == booked.slot.start
    listed = contract_system.system.list_appointments(contract_system.patient, dt.datetime.now(dt.UTC))
    assert next(a for a in listed if a.id == booked.id).reason == "Rash on both arms"
