"""GP Connect answers mapped truthfully: vaccinations, empty lists, every appointment status, every error code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from patient_online.adapters.gpconnect import fhir_parse as fp
from patient_online.adapters.gpconnect.errors import ProviderRejected, map_error
from patient_online.adapters.gpconnect.fhir_parse import Outcome, parse_outcome
from patient_online.domain.appointments import AppointmentStatus
from patient_online.domain.errors import (
    AlreadyBooked,
    ClinicalSystemUnavailable,
    DomainError,
    NoPatientConsent,
    NotFound,
    NotOfferedBySystem,
    PatientNotFound,
    PracticeNotAllowed,
    SlotGone,
    SlotUnavailable,
    StaleVersion,
)
from patient_online.domain.record import RecordExtract, Section, SectionNote

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures"
ERRORS = FIXTURES / "gpconnect" / "errors"
VACCINATION_PROCEDURE = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-VaccinationProcedure-1"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared/fixtures is not beside the repository")


# --------------------------------------------------------------------------- vaccinations


def _record(*resources: dict[str, Any]) -> RecordExtract:
    return fp.parse_structured_record({"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]})


def _immunisation(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Immunization", "id": "imm1", "date": "2024-10-01", "notGiven": False, **fields}


def _procedure(display: str) -> list[dict[str, Any]]:
    concept = {"coding": [{"system": "http://snomed.info/sct", "code": "1037351000000105", "display": display}]}
    return [{"url": VACCINATION_PROCEDURE, "valueCodeableConcept": concept}]


def test_vaccination_named_by_its_procedure_when_vaccine_code_is_unknown() -> None:
    unk = {"coding": [{"system": "http://hl7.org/fhir/v3/NullFlavor", "code": "UNK", "display": "Unknown"}]}
    extract = _record(_immunisation(vaccineCode=unk, extension=_procedure("Seasonal influenza vaccination")))
    (entry,) = extract.entries
    assert entry.term == "Seasonal influenza vaccination"
    assert entry.code == "1037351000000105"
    assert not entry.not_given


def test_vaccination_procedure_wins_over_vaccine_code() -> None:
    vaccine = {"coding": [{"system": "http://snomed.info/sct", "code": "39114911000001105", "display": "Fluenz"}]}
    extract = _record(_immunisation(vaccineCode=vaccine, extension=_procedure("Nasal influenza vaccination")))
    assert extract.entries[0].term == "Nasal influenza vaccination"


def test_vaccination_falls_back_to_vaccine_code_words_then_to_a_placeholder() -> None:
    named = _record(_immunisation(vaccineCode={"text": "Tetanus vaccine"}))
    assert named.entries[0].term == "Tetanus vaccine"
    unnamed = _record(_immunisation(vaccineCode={"coding": [{"code": "UNK"}], "text": "UNK"}))
    assert unnamed.entries[0].term == "Vaccination (name not recorded)"
    assert unnamed.entries[0].code == ""
    nothing = _record(_immunisation())
    assert nothing.entries[0].term == "Vaccination (name not recorded)"


def test_vaccination_not_given_keeps_its_reason() -> None:
    reason = {"coding": [{"system": "http://snomed.info/sct", "code": "591000119102", "display": "Patient declined"}]}
    extract = _record(
        _immunisation(
            notGiven=True,
            extension=_procedure("Pneumococcal vaccination"),
            explanation={"reasonNotGiven": [reason]},
        )
    )
    (entry,) = extract.entries
    assert entry.not_given
    assert entry.not_given_reason == "Patient declined"
    assert entry.term == "Pneumococcal vaccination"


def test_vaccination_not_given_written_as_a_string_is_still_not_given() -> None:
    extract = _record(_immunisation(notGiven="true", vaccineCode={"text": "MMR"}))
    assert extract.entries[0].not_given
    assert extract.entries[0].not_given_reason == ""


# --------------------------------------------------------------------------- empty lists


def _list(code: str, title: str, **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "List",
        "status": "current",
        "mode": "snapshot",
        "title": title,
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]},
        **fields,
    }


def _empty(code: str, display: str = "") -> dict[str, Any]:
    return {"coding": [{"system": "http://hl7.org/fhir/list-empty-reason", "code": code, "display": display}]}


def test_allergy_list_nil_known_reads_no_known_allergies() -> None:
    extract = _record(_list("886921000000105", "Allergies and adverse reactions", emptyReason=_empty("nilknown")))
    assert extract.entries == []
    assert extract.section_notes == [SectionNote(Section.ALLERGIES, empty_reason="No known allergies")]


def test_empty_list_reason_and_note_are_kept_in_plain_words() -> None:
    immunisations = _list(
        "1102181000000102",
        "Immunisations",
        emptyReason=_empty("withheld", "Withheld"),
        note=[{"text": "Held at the previous practice"}],
    )
    extract = _record(immunisations)
    (note,) = extract.section_notes
    assert note.section is Section.IMMUNISATIONS
    assert note.empty_reason == "Nothing to show: your GP practice has chosen not to share this online."
    assert note.note == "Held at the previous practice"


def test_unknown_empty_reason_uses_the_senders_words() -> None:
    extract = _record(_list("717711000000103", "Problems", emptyReason=_empty("on-leave", "Archived elsewhere")))
    assert extract.section_notes[0].empty_reason == "Nothing to show: Archived elsewhere."


def test_no_content_recorded_drops_the_fixed_note() -> None:
    lst = _list(
        "717711000000103",
        "Problems",
        emptyReason=_empty("no-content-recorded", "No Content Recorded"),
        note=[{"text": "Information not available"}],
    )
    (note,) = _record(lst).section_notes
    assert note == SectionNote(Section.PROBLEMS, empty_reason="Nothing to show: nothing has been recorded.")


def test_no_known_allergy_entry_becomes_the_sections_note() -> None:
    nka = {
        "resourceType": "AllergyIntolerance",
        "id": "nka",
        "clinicalStatus": "active",
        "assertedDate": "2020-01-02",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "716186003", "display": "No known allergy"}]},
    }
    lst = _list("886921000000105", "Allergies", entry=[{"item": {"reference": "AllergyIntolerance/nka"}}])
    extract = _record(lst, nka)
    assert extract.entries == []
    assert extract.section_notes == [SectionNote(Section.ALLERGIES, empty_reason="No known allergies")]


def test_no_known_allergy_beside_a_real_allergy_is_not_claimed() -> None:
    def allergy(rid: str, code: str, display: str) -> dict[str, Any]:
        concept = {"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]}
        return {"resourceType": "AllergyIntolerance", "id": rid, "clinicalStatus": "active", "code": concept}

    extract = _record(allergy("nka", "716186003", "No known allergy"), allergy("pen", "91936005", "Penicillin"))
    assert [e.term for e in extract.entries] == ["Penicillin"]
    assert extract.section_notes == []


@needs_fixtures
def test_real_record_empty_allergy_list_says_nothing_recorded() -> None:
    path = FIXTURES / "gpconnect-patient-facing" / "record-full_record.yaml"
    bundle = yaml.safe_load(path.read_text())["value"]
    extract = fp.parse_structured_record(bundle, frozenset({Section.ALLERGIES}))
    allergies = [n for n in extract.section_notes if n.section is Section.ALLERGIES]
    assert allergies == [SectionNote(Section.ALLERGIES, empty_reason="Nothing to show: nothing has been recorded.")]


# --------------------------------------------------------------------------- appointment statuses


def _appointment(status: str) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "id": f"a-{status}",
        "status": status,
        "start": "2030-01-02T09:00:00Z",
        "end": "2030-01-02T09:10:00Z",
        "slot": [{"reference": "Slot/1"}],
    }


@pytest.mark.parametrize(
    ("status", "expected", "label"),
    [
        ("booked", AppointmentStatus.BOOKED, "Booked"),
        ("arrived", AppointmentStatus.FULFILLED, "Attended"),
        ("fulfilled", AppointmentStatus.FULFILLED, "Attended"),
        ("cancelled", AppointmentStatus.CANCELLED, "Cancelled"),
        ("proposed", AppointmentStatus.PENDING, "Waiting for the practice to confirm"),
        ("pending", AppointmentStatus.PENDING, "Waiting for the practice to confirm"),
        ("noshow", AppointmentStatus.DID_NOT_ATTEND, "Did not attend"),
        ("entered-in-error", AppointmentStatus.ENTERED_IN_ERROR, "Recorded in error"),
    ],
)
def test_every_appointment_status(status: str, expected: AppointmentStatus, label: str) -> None:
    appointment = fp.parse_appointment(_appointment(status))
    assert appointment.status is expected
    assert appointment.status.label == label


def test_appointments_entered_in_error_are_never_listed() -> None:
    statuses = ("booked", "entered-in-error", "pending", "noshow")
    bundle = {"resourceType": "Bundle", "entry": [{"resource": _appointment(s)} for s in statuses]}
    assert [a.id for a in fp.parse_appointments(bundle)] == ["a-booked", "a-noshow", "a-pending"]


@needs_fixtures
def test_real_appointment_example_reads_as_booked() -> None:
    path = FIXTURES / "gpconnect" / "appointments" / "read_appt_response_example.json"
    resource = json.loads(path.read_text())
    assert fp.parse_appointment(resource).status is AppointmentStatus.BOOKED
    resource["status"] = "noshow"
    assert fp.parse_appointment(resource).status is AppointmentStatus.DID_NOT_ATTEND


# --------------------------------------------------------------------------- error codes


def _outcome(code: str, diagnostics: str = "") -> Outcome:
    return Outcome(spine_code=code, issue_code="", severity="error", diagnostics=diagnostics)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        # identity validation
        (400, "INVALID_IDENTIFIER_SYSTEM", ProviderRejected),
        (400, "INVALID_IDENTIFIER_VALUE", ProviderRejected),
        (400, "INVALID_NHS_NUMBER", PatientNotFound),
        (400, "INVALID_PATIENT_DEMOGRAPHICS", PatientNotFound),
        (404, "ORGANISATION_NOT_FOUND", ProviderRejected),
        (404, "PATIENT_NOT_FOUND", PatientNotFound),
        (404, "PRACTITIONER_NOT_FOUND", ProviderRejected),
        (404, "NO_RECORD_FOUND", PatientNotFound),
        # security validation
        (403, "NO_PATIENT_CONSENT", NoPatientConsent),
        (403, "NO_ORGANISATION_CONSENT", PracticeNotAllowed),
        (403, "ACCESS_DENIED", PracticeNotAllowed),
        (403, "NOT_AUTHORISED", PracticeNotAllowed),
        (403, "NOT_AUTHORIZED", PracticeNotAllowed),
        (403, "NO_RELATIONSHIP", PracticeNotAllowed),
        # duplicates and resource validation
        (409, "DUPLICATE_REJECTED", AlreadyBooked),
        (422, "INVALID_RESOURCE", ProviderRejected),
        (422, "INVALID_PARAMETER", ProviderRejected),
        (422, "REFERENCE_NOT_FOUND", SlotGone),
        # malformed requests and server errors
        (400, "BAD_REQUEST", ProviderRejected),
        (501, "NOT_IMPLEMENTED", NotOfferedBySystem),
        (500, "INTERNAL_SERVER_ERROR", ClinicalSystemUnavailable),
        # no Spine code at all
        (409, "", SlotUnavailable),
        (412, "", StaleVersion),
        (404, "", NotFound),
        (405, "", ProviderRejected),
        (415, "", ProviderRejected),
        (429, "", ClinicalSystemUnavailable),
        (503, "", ClinicalSystemUnavailable),
    ],
)
def test_every_spine_error_code(status: int, code: str, expected: type[DomainError]) -> None:
    error = map_error(status, _outcome(code) if code else None)
    assert type(error) is expected
    assert error.message and "Traceback" not in error.message


def test_reference_not_found_on_booking_says_the_time_has_gone() -> None:
    error = map_error(422, _outcome("REFERENCE_NOT_FOUND", "Reference to Slot/6 - no such slot exists"))
    assert isinstance(error, SlotUnavailable)  # the booking pages offer another time
    assert error.message == "That time is no longer available. Choose another time."
    assert error.http_status == 409


def test_conditional_conflict_is_a_stale_version_whatever_its_code() -> None:
    assert type(map_error(409, _outcome("FHIR_CONSTRAINT_VIOLATION"), conditional=True)) is StaleVersion
    assert type(map_error(409, _outcome("INVALID_RESOURCE"), conditional=True)) is StaleVersion


def test_messages_are_plain_and_honest() -> None:
    assert "Reception" in PatientNotFound().message
    assert "not allowed" in PracticeNotAllowed().message
    assert "on our side" in ProviderRejected().message
    assert "already been booked" in AlreadyBooked().message
    assert "not to be shared" in NoPatientConsent().message


@needs_fixtures
@pytest.mark.parametrize(
    ("name", "status", "expected"),
    [
        ("OperationOutcome-403.json", 403, ProviderRejected),  # our sender's ASID refused by the proxy
        ("OperationOutcome-405.json", 405, ProviderRejected),
        ("OperationOutcome-415.json", 415, ProviderRejected),
        ("OperationOutcome-502.json", 502, ClinicalSystemUnavailable),
        ("OperationOutcome-ACCESS_DENIED.json", 403, PracticeNotAllowed),
        ("OperationOutcome-BAD_REQUEST.json", 400, ProviderRejected),
        ("OperationOutcome-DUPLICATE_REJECTED.json", 409, AlreadyBooked),
        ("OperationOutcome-INTERNAL_SERVER_ERROR.json", 500, ClinicalSystemUnavailable),
        ("OperationOutcome-INVALID_NHS_NUMBER.json", 400, PatientNotFound),
        ("OperationOutcome-NO_RECORD_FOUND.json", 404, PatientNotFound),
        ("OperationOutcome-PATIENT_NOT_FOUND.json", 404, PatientNotFound),
    ],
)
def test_specification_error_examples(name: str, status: int, expected: type[DomainError]) -> None:
    outcome = parse_outcome(json.loads((ERRORS / name).read_text()))
    assert outcome is not None
    assert type(map_error(status, outcome)) is expected
