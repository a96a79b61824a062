"""Every interaction of the GP Connect adapter over real HTTP against the simulator, and every mapped error."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

from patient_online.adapters import registry
from patient_online.adapters.gpconnect import GPConnectClinicalSystem
from patient_online.adapters.gpconnect import constants as c
from patient_online.adapters.gpconnect.constants import Interaction
from patient_online.adapters.gpconnect.errors import ProviderRejected
from patient_online.adapters.gpconnect.jwt import Requester, build_token
from patient_online.domain.appointments import AppointmentStatus, DeliveryMode, SlotQuery
from patient_online.domain.errors import (
    NoPatientConsent,
    NotAllowed,
    NotFound,
    PatientNotFound,
    SlotUnavailable,
    StaleVersion,
)
from patient_online.domain.nhs_number import is_valid
from patient_online.domain.patients import Demographics
from patient_online.domain.prescriptions import PrescriptionType, RequestStatus
from patient_online.domain.record import Section
from tools.gpconnect_simulator import (
    ALICE,
    BOB,
    CAROL_CONFIDENTIAL,
    DAN_NO_CONSENT,
    NOT_FOUND,
    PROVIDER_ASID,
    SimulatorServer,
)

NOW = dt.datetime.now(dt.UTC)


def patient(system: GPConnectClinicalSystem, nhs: str) -> Demographics:
    found = system.find_patient(nhs)
    assert found is not None
    return found


def test_test_patients_have_valid_999_nhs_numbers() -> None:
    for nhs in (ALICE, BOB, CAROL_CONFIDENTIAL, DAN_NO_CONSENT, NOT_FOUND):
        assert nhs.startswith("999") and is_valid(nhs)


def test_find_patient(system: GPConnectClinicalSystem) -> None:
    alice = patient(system, ALICE)
    assert (alice.given_name, alice.family_name, alice.postcode) == ("Alice", "Example", "LS1 4AP")
    assert alice.ref.practice_ods == system.practice_ods and alice.ref.clinical_id == "1"
    bob = patient(system, BOB)
    assert [f.code for f in bob.flags] == ["1364731000000104"]
    assert bob.flags[0].recorded_on == dt.date(2024, 1, 10)
    assert system.find_patient(NOT_FOUND) is None


def test_every_request_has_headers_the_simulator_accepts(system: GPConnectClinicalSystem, sim: SimulatorServer) -> None:
    alice = patient(system, ALICE)
    system.search_slots(SlotQuery(NOW, NOW + dt.timedelta(days=3)))
    system.get_record(alice.ref, frozenset({Section.ALLERGIES}))
    system.list_repeat_template(alice.ref)
    seen = sim.state.seen
    assert [s.interaction for s in seen] == [
        Interaction.SEARCH_PATIENT,
        Interaction.SEARCH_SLOTS,
        Interaction.STRUCTURED_RECORD,
        Interaction.SEARCH_MEDICATION_REQUESTS,
    ]
    assert len({s.trace_id for s in seen}) == len(seen)


def test_search_slots_splits_long_windows(system: GPConnectClinicalSystem, sim: SimulatorServer) -> None:
    query = SlotQuery(NOW, NOW + dt.timedelta(days=35))
    slots = system.search_slots(query)
    assert len([s for s in sim.state.seen if s.interaction == Interaction.SEARCH_SLOTS]) == 3
    assert slots == sorted(slots, key=lambda s: (s.start, s.id))
    assert len({s.id for s in slots}) == len(slots)
    assert all(query.start <= s.start and s.end <= query.end for s in slots)
    assert {s.slot_type for s in slots} == {"General GP Appointment", "Nurse Appointment"}
    assert {s.delivery_mode for s in slots} == set(DeliveryMode)
    assert {s.clinician.role for s in slots} == {"GP", "Practice nurse"}
    nurse = next(s for s in slots if s.slot_type == "Nurse Appointment")
    assert nurse.clinician.name == "Sally Price" and nurse.location.startswith("Riverside Surgery")
    filtered = system.search_slots(
        SlotQuery(
            NOW, NOW + dt.timedelta(days=10), frozenset({"nurse appointment"}), delivery_mode=DeliveryMode.TELEPHONE
        )
    )
    assert filtered and all(s.slot_type == "Nurse Appointment" for s in filtered)
    assert all(s.delivery_mode is DeliveryMode.TELEPHONE for s in filtered)


def _headers(interaction: str, audience: str, **overrides: str) -> dict[str, str]:
    headers = {
        "Ssp-TraceID": str(uuid.uuid4()),
        "Ssp-From": "200000000359",
        "Ssp-To": PROVIDER_ASID,
        "Ssp-InteractionID": interaction,
        "Accept": c.FHIR_JSON,
        "Authorization": "Bearer " + build_token(Requester(), audience, c.SCOPES[interaction]),
    }
    headers.update(overrides)
    return {k: v for k, v in headers.items() if v}


def _raw(sim: SimulatorServer, path: str, headers: dict[str, str], **params: str) -> httpx.Response:
    return httpx.get(sim.base_url + path, headers=headers, params=params, timeout=5)


def _spine_code(response: httpx.Response) -> str:
    body: dict[str, Any] = response.json()
    return str(body["issue"][0]["details"]["coding"][0]["code"])


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"Ssp-TraceID": ""}, 400),
        ({"Ssp-From": ""}, 400),
        ({"Ssp-To": "999999999999"}, 403),
        ({"Ssp-InteractionID": Interaction.SEARCH_SLOTS}, 400),
        ({"Authorization": "Bearer not-a-jwt"}, 400),
        ({"Authorization": "Bearer " + build_token(Requester(), "http://127.0.0.1", "patient/*.read", now=0)}, 400),
        ({"Authorization": "Bearer " + build_token(Requester(), "x", "organization/*.read")}, 400),
        ({"Authorization": ""}, 400),
    ],
)
def test_simulator_enforces_headers_and_jwt(sim: SimulatorServer, overrides: dict[str, str], status: int) -> None:
    good = _raw(
        sim, "/Patient", _headers(Interaction.SEARCH_PATIENT, sim.base_url), identifier=f"{c.NHS_NUMBER_SYSTEM}|{ALICE}"
    )
    assert good.status_code == 200
    bad = _raw(
        sim,
        "/Patient",
        _headers(Interaction.SEARCH_PATIENT, sim.base_url, **overrides),
        identifier=f"{c.NHS_NUMBER_SYSTEM}|{ALICE}",
    )
    assert bad.status_code == status
    assert _spine_code(bad) == (c.ACCESS_DENIED if status == 403 else c.BAD_REQUEST)


def test_simulator_refuses_windows_over_fourteen_days(sim: SimulatorServer) -> None:
    start = dt.date.today()
    params = {
        "status": "free",
        "start": f"ge{start.isoformat()}",
        "end": f"le{(start + dt.timedelta(days=20)).isoformat()}",
        "searchFilter": f"{c.ODS_SYSTEM}|X26",
    }
    response = _raw(sim, "/Slot", _headers(Interaction.SEARCH_SLOTS, sim.base_url), **params)
    assert response.status_code == 422 and _spine_code(response) == c.INVALID_PARAMETER


def test_book_list_and_cancel(system: GPConnectClinicalSystem) -> None:
    alice = patient(system, ALICE)
    slot = system.search_slots(SlotQuery(NOW + dt.timedelta(days=1), NOW + dt.timedelta(days=8)))[0]
    booked = system.book(alice.ref, slot.id, "Sore throat for a week", str(uuid.uuid4()))
    assert booked.status is AppointmentStatus.BOOKED
    assert booked.slot.id == slot.id and booked.slot.start == slot.start
    assert booked.slot.clinician == slot.clinician and booked.slot.delivery_mode is slot.delivery_mode
    assert booked.reason == "Sore throat for a week" and booked.version == "1"

    listed = system.list_appointments(alice.ref, NOW)
    assert [a.id for a in listed] == [booked.id]
    assert listed[0].slot.clinician.name == slot.clinician.name
    assert slot.id not in {s.id for s in system.search_slots(SlotQuery(slot.start, slot.end))}

    cancelled = system.cancel(alice.ref, booked.id, "Feeling better")
    assert cancelled.status is AppointmentStatus.CANCELLED
    assert cancelled.cancellation_reason == "Feeling better" and cancelled.version == "2"
    assert cancelled.reason == booked.reason
    assert slot.id in {s.id for s in system.search_slots(SlotQuery(slot.start, slot.end))}
    assert system.list_appointments(alice.ref, NOW)[0].status is AppointmentStatus.CANCELLED


def test_long_reasons_are_cut_to_a_hundred_characters(system: GPConnectClinicalSystem) -> None:
    alice = patient(system, ALICE)
    slot = system.search_slots(SlotQuery(NOW + dt.timedelta(days=1), NOW + dt.timedelta(days=8)))[0]
    booked = system.book(alice.ref, slot.id, "x" * 150, "k")
    assert len(booked.reason) == 100


def test_double_booking_is_refused(system: GPConnectClinicalSystem) -> None:
    alice, bob = patient(system, ALICE), patient(system, BOB)
    slot = system.search_slots(SlotQuery(NOW + dt.timedelta(days=1), NOW + dt.timedelta(days=8)))[0]
    first = system.book(alice.ref, slot.id, "Check up", "k1")
    with pytest.raises(SlotUnavailable):
        system.book(bob.ref, slot.id, "Check up", "k2")
    # a retry by the same patient (the first answer was lost) gets the same appointment back
    assert system.book(alice.ref, slot.id, "Check up", "k1").id == first.id


def _direct_book_body(system: GPConnectClinicalSystem, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    slot = system.search_slots(SlotQuery(NOW + dt.timedelta(days=1), NOW + dt.timedelta(days=8)))[0]

    body = system._appointment_body("1", slot, "reason")
    body["start"], body["end"] = start.isoformat(), end.isoformat()
    return body


def test_booking_rules_enforced_by_the_provider(system: GPConnectClinicalSystem, sim: SimulatorServer) -> None:
    past = next(s for s in sim.state.slots.values())
    past.start, past.end = NOW - dt.timedelta(hours=2), NOW - dt.timedelta(hours=1)
    body = _direct_book_body(system, past.start, past.end)
    body["slot"] = [{"reference": f"Slot/{past.id}"}]
    with pytest.raises(ProviderRejected):
        system.http.call("POST", "/Appointment", Interaction.CREATE_APPOINTMENT, body=body)
    slot = system.search_slots(SlotQuery(NOW + dt.timedelta(days=1), NOW + dt.timedelta(days=8)))[0]
    body = _direct_book_body(system, slot.start, slot.end)
    body["slot"] = [{"reference": f"Slot/{slot.id}"}]
    body["description"] = "y" * 101
    with pytest.raises(ProviderRejected):
        system.http.call("POST", "/Appointment", Interaction.CREATE_APPOINTMENT, body=body)
    del body["extension"]
    body["description"] = "ok"
    with pytest.raises(ProviderRejected):
        system.http.call("POST", "/Appointment", Interaction.CREATE_APPOINTMENT, body=body)


def test_cancel_with_a_stale_version_or_other_changes(system: GPConnectClinicalSystem) -> None:
    alice = patient(system, ALICE)
    slot = system.search_slots(SlotQuery(NOW + dt.timedelta(days=1), NOW + dt.timedelta(days=8)))[0]
    booked = system.book(alice.ref, slot.id, "Check up", "k")
    current = system.http.call("GET", f"/Appointment/{booked.id}", Interaction.READ_APPOINTMENT).body
    cancelled = dict(current, status="cancelled")
    cancelled["extension"] = [*current["extension"], {"url": c.EXT_CANCELLATION_REASON, "valueString": "No"}]
    with pytest.raises(StaleVersion):
        system.http.call(
            "PUT",
            f"/Appointment/{booked.id}",
            Interaction.CANCEL_APPOINTMENT,
            body=cancelled,
            headers={"If-Match": 'W/"7"'},
        )
    with pytest.raises(ProviderRejected):
        changed = dict(cancelled, description="changed on the way")
        system.http.call(
            "PUT",
            f"/Appointment/{booked.id}",
            Interaction.CANCEL_APPOINTMENT,
            body=changed,
            headers={"If-Match": 'W/"1"'},
        )
    with pytest.raises(NotFound):
        system.cancel(patient(system, BOB).ref, booked.id, "not mine")
    with pytest.raises(NotFound):
        system.cancel(alice.ref, "999", "unknown")
    assert system.cancel(alice.ref, booked.id, "ok").status is AppointmentStatus.CANCELLED


def test_record_sections_and_flags(system: GPConnectClinicalSystem) -> None:
    alice = patient(system, ALICE)
    everything = system.get_record(alice.ref, frozenset(Section))
    sections = {e.section for e in everything.entries}
    assert sections == set(Section) - {Section.DOCUMENTS}
    assert [n.section for n in everything.notices] == [Section.DOCUMENTS]
    results = {e.id: e for e in everything.entries if e.section is Section.TEST_RESULTS}
    assert results["tr-1"].outside_range and results["tr-1"].value == "5.8" and results["tr-1"].unit == "mmol/L"
    assert results["tr-1"].reference_range == "0 to 5 mmol/L"
    assert not results["tr-2"].outside_range
    assert results["tr-3"].filed is False
    consultation = next(e for e in everything.entries if e.section is Section.CONSULTATIONS)
    assert "Blood pressure reviewed" in consultation.free_text

    summary = system.get_record(alice.ref, frozenset({Section.ALLERGIES, Section.MEDICATIONS}))
    assert {e.section for e in summary.entries} == {Section.ALLERGIES, Section.MEDICATIONS}
    assert {e.status for e in summary.entries if e.section is Section.ALLERGIES} == {"active", "past"}


def test_confidential_items_and_list_warnings(system: GPConnectClinicalSystem) -> None:
    carol = patient(system, CAROL_CONFIDENTIAL)
    extract = system.get_record(carol.ref, frozenset({Section.PROBLEMS, Section.TEST_RESULTS, Section.MEDICATIONS}))
    confidential = [e for e in extract.entries if e.confidential]
    assert [e.id for e in confidential] == ["c-pr-1"]
    notices = {(n.section, n.text.split()[0]) for n in extract.notices}
    assert {n.section for n in extract.notices} == {Section.PROBLEMS, Section.TEST_RESULTS, Section.MEDICATIONS}
    assert len(notices) == 3
    assert any("private" in n.text for n in extract.notices)


def test_unsupported_clinical_areas_become_notices(system: GPConnectClinicalSystem, sim: SimulatorServer) -> None:
    sim.state.configure(unsupported=[c.PARAM_IMMUNISATIONS])
    extract = system.get_record(patient(system, ALICE).ref, frozenset({Section.IMMUNISATIONS, Section.ALLERGIES}))
    assert {e.section for e in extract.entries} == {Section.ALLERGIES}
    assert [n.section for n in extract.notices] == [Section.IMMUNISATIONS]


def test_patient_not_found_and_no_consent(system: GPConnectClinicalSystem) -> None:
    from patient_online.domain.patients import PatientRef

    with pytest.raises(PatientNotFound):
        system.get_record(PatientRef("A20047", NOT_FOUND, "99"), frozenset({Section.ALLERGIES}))
    with pytest.raises(PatientNotFound):
        system.list_appointments(PatientRef("A20047", NOT_FOUND, "99"), NOW)
    with pytest.raises(PatientNotFound):
        system.list_repeat_template(PatientRef("A20047", NOT_FOUND, "99"))
    dan = patient(system, DAN_NO_CONSENT)
    with pytest.raises(NoPatientConsent):
        system.get_record(dan.ref, frozenset({Section.ALLERGIES}))


def test_repeat_template_requests_and_statuses(system: GPConnectClinicalSystem, sim: SimulatorServer) -> None:
    alice = patient(system, ALICE)
    template = system.list_repeat_template(alice.ref)
    types = {i.id: i.prescription_type for i in template}
    assert types == {
        "p1-rx-1": PrescriptionType.REPEAT,
        "p1-rx-2": PrescriptionType.REPEAT,
        "p1-rx-3": PrescriptionType.REPEAT_DISPENSING,
        "p1-rx-4": PrescriptionType.ACUTE,
    }
    assert template[0].issues_allowed == 12 and template[0].issues_used == 3

    first = system.request_repeats(alice.ref, ["p1-rx-1", "p1-rx-2"], "Running low", "FA123", "key-1")
    again = system.request_repeats(alice.ref, ["p1-rx-1", "p1-rx-2"], "Running low", "FA123", "key-1")
    assert again.id == first.id and len(sim.state.tasks) == 2
    assert first.item_names == ("Amlodipine 5mg tablets", "Simvastatin 40mg tablets")
    assert first.status is RequestStatus.REQUESTED and first.pharmacy_ods == "FA123" and first.note == "Running low"

    second = system.request_repeats(alice.ref, ["p1-rx-3"], "", "", "key-2")
    listed = system.list_requests(alice.ref)
    assert {r.id for r in listed} == {first.id, second.id}

    sim.state.set_task_status(second.id, "rejected", "Please book a review")
    rejected = next(r for r in system.list_requests(alice.ref) if r.id == second.id)
    assert rejected.status is RequestStatus.REJECTED and rejected.rejection_reason == "Please book a review"
    with pytest.raises(NotAllowed):
        system.cancel_request(alice.ref, second.id)
    sim.state.set_task_status(second.id, "completed")
    assert next(r for r in system.list_requests(alice.ref) if r.id == second.id).status is RequestStatus.ISSUED

    cancelled = system.cancel_request(alice.ref, first.id)
    assert cancelled.status is RequestStatus.CANCELLED
    with pytest.raises(NotFound):
        system.cancel_request(alice.ref, "no-such-request")


def test_a_request_for_someone_elses_medicine_is_refused(system: GPConnectClinicalSystem) -> None:
    alice = patient(system, ALICE)
    with pytest.raises(ProviderRejected):
        system.request_repeats(alice.ref, ["p2-rx-1"], "", "", "key-x")


def test_registered_adapter_builds_from_options(sim: SimulatorServer) -> None:
    adapter_type = registry.get("gpconnect")
    options = adapter_type.validate(
        {"base_url": sim.base_url, "provider_asid": PROVIDER_ASID, "consumer_asid": "200000000359", "api_key": "s3cret"}
    )
    assert options["read_timeout"] == "5" and options["connect_timeout"] == "2"
    assert "api_key" in adapter_type.secret_options
    with pytest.raises(registry.OptionsInvalid):
        adapter_type.validate({"base_url": "ftp://x", "read_timeout": "soon"})
    system = adapter_type.factory(registry.AdapterContext(practice_ods="A20047", options=options))
    assert isinstance(system, GPConnectClinicalSystem)
    assert system.endpoint.provider_ods == "A20047" and system.endpoint.read_timeout == 5.0
    assert system.find_patient(ALICE) is not None
    system.close()
