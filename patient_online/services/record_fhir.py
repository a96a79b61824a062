"""The patient's visible record as a FHIR R4 Bundle (type ``collection``), built from domain entries.

Only entries that have already passed the record filter reach this module; it adds nothing of its own
except the patient and the practice the record belongs to.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from patient_online.domain.record import RangeFlag, RecordEntry, Section

Json = dict[str, Any]

SNOMED = "http://snomed.info/sct"
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
ODS_CODE = "https://fhir.nhs.uk/Id/ods-organization-code"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONSULTATION_REPORT = "371531000"  # SNOMED CT: Report of clinical encounter

_NAMESPACE = uuid.UUID("6f1f6c1e-2b5e-4d2a-9a55-6f0c8e2d7a10")
_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "|".join(parts)))


def _concept(entry: RecordEntry) -> Json:
    concept: Json = {"text": entry.term}
    if entry.code:
        concept["coding"] = [{"system": SNOMED, "code": entry.code, "display": entry.term}]
    return concept


def _note(entry: RecordEntry) -> list[Json]:
    return [{"text": entry.free_text}] if entry.free_text else []


def _allergy(entry: RecordEntry, patient: Json) -> Json:
    resource: Json = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "resolved" if entry.is_past else "active"}]},
        "code": _concept(entry),
        "patient": patient,
        "recordedDate": entry.date.isoformat(),
    }
    if entry.reaction or entry.severity:
        reaction: Json = {"manifestation": [{"text": entry.reaction or "Not recorded"}]}
        if entry.severity.lower() in ("mild", "moderate", "severe"):
            reaction["severity"] = entry.severity.lower()
        resource["reaction"] = [reaction]
    if entry.free_text:
        resource["note"] = _note(entry)
    return resource


def _medication(entry: RecordEntry, patient: Json) -> Json:
    resource: Json = {
        "resourceType": "MedicationStatement",
        "status": "stopped" if entry.is_past else "active",
        "medicationCodeableConcept": _concept(entry),
        "subject": patient,
        "effectiveDateTime": entry.date.isoformat(),
    }
    if entry.dosage:
        resource["dosage"] = [{"text": entry.dosage}]
    if entry.free_text:
        resource["note"] = _note(entry)
    return resource


def _condition(entry: RecordEntry, patient: Json) -> Json:
    resource: Json = {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [{"system": CONDITION_CLINICAL, "code": "resolved" if entry.is_past else "active"}]
        },
        "code": _concept(entry),
        "subject": patient,
        "recordedDate": entry.date.isoformat(),
    }
    if entry.free_text:
        resource["note"] = _note(entry)
    return resource


def _immunisation(entry: RecordEntry, patient: Json) -> Json:
    resource: Json = {
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": _concept(entry),
        "patient": patient,
        "occurrenceDateTime": entry.date.isoformat(),
    }
    if entry.free_text:
        resource["note"] = _note(entry)
    return resource


def _observation(entry: RecordEntry, patient: Json) -> Json:
    resource: Json = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "laboratory"}]}],
        "code": _concept(entry),
        "subject": patient,
        "effectiveDateTime": entry.date.isoformat(),
    }
    if entry.filed_on is not None:
        resource["issued"] = f"{entry.filed_on.isoformat()}T00:00:00+00:00"
    if _DECIMAL.match(entry.value.strip()):
        quantity: Json = {"value": float(entry.value)}
        if entry.unit:
            quantity["unit"] = entry.unit
        resource["valueQuantity"] = quantity
    elif entry.value:
        resource["valueString"] = f"{entry.value} {entry.unit}".strip()
    if entry.outside_range:
        resource["interpretation"] = [_interpretation(entry)]
    if entry.reference_range:
        resource["referenceRange"] = [{"text": entry.reference_range}]
    if entry.free_text:
        resource["note"] = _note(entry)
    return resource


def _interpretation(entry: RecordEntry) -> Json:
    """Low or high when the reference range says which; otherwise only that the system flagged it."""
    side = entry.range_flag
    if side is RangeFlag.LOW:
        return {"coding": [{"system": INTERPRETATION, "code": "L", "display": "Low"}], "text": side.label}
    if side is RangeFlag.HIGH:
        return {"coding": [{"system": INTERPRETATION, "code": "H", "display": "High"}], "text": side.label}
    return {"coding": [{"system": INTERPRETATION, "code": "A", "display": "Abnormal"}], "text": "Outside range"}


def _encounter(entry: RecordEntry, patient: Json) -> Json:
    resource: Json = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "type": [_concept(entry)],
        "subject": patient,
        "period": {"start": entry.date.isoformat()},
    }
    if entry.clinician:
        resource["participant"] = [{"individual": {"display": entry.clinician}}]
    return resource


def _narrative(text: str) -> Json:
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines() if line.strip())
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{paragraphs}</div>'}


def _consultation_notes(entry: RecordEntry, patient: Json, encounter_url: str, practice: Json) -> Json:
    return {
        "resourceType": "Composition",
        "status": "final",
        "type": {
            "coding": [{"system": SNOMED, "code": CONSULTATION_REPORT, "display": "Report of clinical encounter"}]
        },
        "subject": patient,
        "encounter": {"reference": encounter_url},
        "date": entry.date.isoformat(),
        "author": [{"display": entry.clinician} if entry.clinician else practice],
        "title": entry.term,
        "section": [{"title": "Notes", "text": _narrative(entry.free_text)}],
    }


def _document(entry: RecordEntry, patient: Json) -> Json:
    attachment: Json = {"title": entry.term, "creation": entry.date.isoformat()}
    if entry.free_text:
        attachment["contentType"] = "text/plain; charset=utf-8"
        attachment["data"] = base64.b64encode(entry.free_text.encode()).decode()
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"text": entry.term},
        "subject": patient,
        "date": f"{entry.date.isoformat()}T00:00:00+00:00",
        "description": entry.term,
        "content": [{"attachment": attachment}],
    }


_SIMPLE: dict[Section, Callable[[RecordEntry, Json], Json]] = {
    Section.ALLERGIES: _allergy,
    Section.MEDICATIONS: _medication,
    Section.PROBLEMS: _condition,
    Section.IMMUNISATIONS: _immunisation,
    Section.TEST_RESULTS: _observation,
    Section.DOCUMENTS: _document,
}


def record_bundle(
    *,
    nhs_number: str,
    given_name: str,
    family_name: str,
    date_of_birth: dt.date,
    practice_ods: str,
    practice_name: str,
    entries: Sequence[RecordEntry],
    now: dt.datetime | None = None,
) -> Json:
    """A Bundle holding the patient, their practice and exactly ``entries``: one resource each (two for a
    consultation with notes: the Encounter and a Composition with the notes)."""
    stamp = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0).isoformat()
    patient_id = _uuid("patient", practice_ods, nhs_number)
    practice_id = _uuid("organization", practice_ods)
    patient_ref: Json = {"reference": f"urn:uuid:{patient_id}"}
    practice_ref: Json = {"reference": f"urn:uuid:{practice_id}", "display": practice_name}
    resources: list[tuple[str, Json]] = [
        (
            patient_id,
            {
                "resourceType": "Patient",
                "identifier": [{"system": NHS_NUMBER, "value": nhs_number}],
                "name": [{"use": "official", "family": family_name, "given": [given_name] if given_name else []}],
                "birthDate": date_of_birth.isoformat(),
                "generalPractitioner": [practice_ref],
            },
        ),
        (
            practice_id,
            {
                "resourceType": "Organization",
                "identifier": [{"system": ODS_CODE, "value": practice_ods}],
                "name": practice_name,
            },
        ),
    ]
    for entry in entries:
        rid = _uuid("entry", practice_ods, nhs_number, entry.section.value, entry.id)
        if entry.section is Section.CONSULTATIONS:
            resources.append((rid, _encounter(entry, patient_ref)))
            if entry.free_text:
                notes_id = _uuid("notes", practice_ods, nhs_number, entry.id)
                resources.append((notes_id, _consultation_notes(entry, patient_ref, f"urn:uuid:{rid}", practice_ref)))
        else:
            resources.append((rid, _SIMPLE[entry.section](entry, patient_ref)))
    return {
        "resourceType": "Bundle",
        "id": _uuid("bundle", practice_ods, nhs_number, stamp),
        "meta": {"lastUpdated": stamp},
        "type": "collection",
        "timestamp": stamp,
        "entry": [{"fullUrl": f"urn:uuid:{rid}", "resource": {"id": rid, **res}} for rid, res in resources],
    }
