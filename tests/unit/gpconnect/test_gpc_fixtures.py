"""Every GP Connect example in ../shared/fixtures reads into domain objects (tolerant parsing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from patient_online.adapters.gpconnect import fhir_parse as fp
from patient_online.domain.appointments import Appointment, AppointmentStatus, DeliveryMode
from patient_online.domain.prescriptions import PrescriptionType, RequestStatus
from patient_online.domain.record import RecordExtract, Section

REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared/fixtures is not beside the repository")


def _resources_in(node: Any, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        if "resourceType" in node:
            found.append(node)
        else:
            for value in node.values():
                _resources_in(value, found)
    elif isinstance(node, list):
        for value in node:
            _resources_in(value, found)
    return found


def _examples() -> list[tuple[str, dict[str, Any]]]:
    examples: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(FIXTURES.rglob("*.json")):
        examples.append((str(path.relative_to(FIXTURES)), json.loads(path.read_text())))
    for path in sorted(FIXTURES.rglob("*.yaml")):
        for i, resource in enumerate(_resources_in(yaml.safe_load(path.read_text()), [])):
            examples.append((f"{path.relative_to(FIXTURES)}#{i}", resource))
    return examples


EXAMPLES = _examples() if FIXTURES.is_dir() else []


def read_any(resource: dict[str, Any]) -> list[object]:
    """Read a resource with every parser that applies to it; returns the domain objects made."""
    kind = resource["resourceType"]
    made: list[object] = []
    if kind == "Bundle":
        index = fp.ResourceIndex.of_bundle(resource)
        types = {r.get("resourceType") for r in index.resources}
        if "Slot" in types:
            made += fp.parse_slots(resource)
        if "Appointment" in types:
            made += fp.parse_appointments(resource)
        if "Patient" in types:
            made.append(fp.parse_patient_search(resource, "A00001"))
        if "MedicationRequest" in types:
            made += fp.parse_repeat_template(resource)
        if "Task" in types:
            made += fp.parse_tasks(resource)
        made.append(fp.parse_structured_record(resource))
    elif kind == "Appointment":
        made.append(fp.parse_appointment(resource))
    elif kind == "Patient":
        made.append(fp.parse_patient(resource, "A00001"))
    elif kind == "OperationOutcome":
        made.append(fp.parse_outcome(resource))
    elif kind == "Task":
        made += fp.parse_tasks({"resourceType": "Bundle", "entry": [{"resource": resource}]})
    elif kind in ("Location", "Organization", "Parameters", "Binary"):
        made.append(fp.ResourceIndex.of_bundle(resource))
    else:  # pragma: no cover - a new kind of example
        pytest.fail(f"no parser for {kind}")
    return made


@pytest.mark.parametrize(("name", "resource"), EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_every_example_reads(name: str, resource: dict[str, Any]) -> None:
    assert read_any(resource) is not None


def test_there_are_many_examples() -> None:
    assert len(EXAMPLES) > 40


def _json(path: str) -> dict[str, Any]:
    return json.loads((FIXTURES / path).read_text())


def test_free_slots_matched_by_reference_not_position() -> None:
    bundle = _json("gpconnect/appointments/search_for_free_slots_response_example.json")
    bundle["entry"].reverse()  # resources found by reference, whatever their order
    slots = fp.parse_slots(bundle)
    assert [s.id for s in slots] == ["1584", "1644"]
    first = slots[0]
    assert first.clinician.name == "Mrs Sarah Black"
    assert first.clinician.role == "GP"
    assert first.location == "The Trevelyan Practice"
    assert first.delivery_mode is DeliveryMode.FACE_TO_FACE
    assert first.slot_type == "General GP Appointment"
    assert first.start.utcoffset() is not None and first.start.hour == 10  # 11:30 BST is 10:30 UTC


def test_cancelled_appointment() -> None:
    appointment = fp.parse_appointment(_json("gpconnect/appointments/cancel_appt_response_example.json"))
    assert isinstance(appointment, Appointment)
    assert appointment.status is AppointmentStatus.CANCELLED
    assert appointment.cancellation_reason == "Free text cancellation reason."
    assert appointment.version == "636068818095315079"


def test_patient_demographics() -> None:
    found = fp.parse_patient_search(_json("gpconnect/foundations/find_patient_response_example.json"), "A00001")
    assert found is not None
    assert (found.given_name, found.family_name, found.postcode) == ("Jane", "Jackson", "LS1 6AE")
    assert found.ref.nhs_number == "9476719931" and found.ref.clinical_id == "2"


def test_allergies_with_contained_resolved_allergy() -> None:
    extract = fp.parse_structured_record(_json("gpconnect/structured/allergies_response1.json"))
    assert isinstance(extract, RecordExtract)
    by_id = {e.id: e for e in extract.entries}
    assert by_id["Resolved-1"].status == "past"
    assert by_id["5eb0f76a-cecb-4b83-999d-ddb76e551a9b"].severity == "severe"
    assert all(e.section is Section.ALLERGIES for e in extract.entries)


def test_full_record_notices() -> None:
    full = yaml.safe_load((FIXTURES / "gpconnect-patient-facing/record-full_record.yaml").read_text())["value"]
    extract = fp.parse_structured_record(full)
    sections = {n.section for n in extract.notices}
    assert Section.CONSULTATIONS in sections  # confidential-items warning on the consultation list
    assert Section.TEST_RESULTS in sections  # includeInvestigations not supported (OperationOutcome)
    only = fp.parse_structured_record(full, frozenset({Section.MEDICATIONS}))
    assert only.entries and {e.section for e in only.entries} == {Section.MEDICATIONS}


def test_repeat_template_and_tasks() -> None:
    template = fp.parse_repeat_template(_json("gpconnect-prescriptions/examples/multiplePrescriptions.json"))
    assert [i.id for i in template] == ["4de39acf-73b1-4dc6-bb87-c98b57ee5413", "97046973-afbc-4a8f-98d1-27f9412c94e3"]
    assert template[0].issues_used == 2 and template[0].issues_allowed == 6
    assert template[0].prescription_type is PrescriptionType.REPEAT
    requests = fp.parse_tasks(_json("gpconnect-prescriptions/examples/includeMedReqs.json"))
    statuses = {r.status for r in requests}
    assert statuses == {RequestStatus.REQUESTED, RequestStatus.APPROVED, RequestStatus.REJECTED}
    rejected = next(r for r in requests if r.status is RequestStatus.REJECTED)
    assert rejected.rejection_reason.startswith("No longer suitable")
    assert requests == sorted(requests, key=lambda r: r.requested_at, reverse=True)


def test_stu3_medication_plans_use_medication_references() -> None:
    template = fp.parse_repeat_template(_json("gpconnect/structured/meds_response.json"))
    assert {i.name for i in template} >= {"Amoxicillin 250mg capsules"}
    assert any(i.prescription_type is PrescriptionType.ACUTE for i in template)


def test_error_outcomes() -> None:
    outcome = fp.parse_outcome(_json("gpconnect/errors/OperationOutcome-DUPLICATE_REJECTED.json"))
    assert outcome is not None and outcome.spine_code == "DUPLICATE_REJECTED"
