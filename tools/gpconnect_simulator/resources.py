"""FHIR resources the simulator sends, built from its seed data (written independently of the adapter's parser)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from patient_online.adapters.gpconnect import constants as c

from . import data

Json = dict[str, Any]
LONDON = ZoneInfo("Europe/London")

_SECTION_LISTS = {
    "allergy": (c.LIST_ALLERGIES, "Allergies and adverse reactions"),
    "medication": (c.LIST_MEDICATIONS, "Medications and medical devices"),
    "problem": (c.LIST_PROBLEMS, "Problems"),
    "immunisation": (c.LIST_IMMUNISATIONS, "Immunisations"),
    "result": (c.LIST_INVESTIGATIONS, "Investigations and results"),
    "consultation": (c.LIST_CONSULTATIONS, "List of consultations"),
}
PARAM_KINDS = {
    c.PARAM_ALLERGIES: "allergy",
    c.PARAM_MEDICATION: "medication",
    c.PARAM_PROBLEMS: "problem",
    c.PARAM_IMMUNISATIONS: "immunisation",
    "includeImmunizations": "immunisation",
    c.PARAM_INVESTIGATIONS: "result",
    c.PARAM_CONSULTATIONS: "consultation",
}


def local(moment: dt.datetime) -> str:
    """A moment written in UK local time with its offset."""
    return moment.astimezone(LONDON).replace(microsecond=0).isoformat()


def coding(system: str, code: str, display: str) -> Json:
    return {"system": system, "code": code, "display": display}


def outcome(spine_code: str, issue_code: str, diagnostics: str = "", severity: str = "error") -> Json:
    """An OperationOutcome in the GP Connect error shape."""
    issue: Json = {
        "severity": severity,
        "code": issue_code,
        "details": {"coding": [coding(c.SPINE_ERROR_SYSTEM, spine_code, spine_code.replace("_", " ").title())]},
    }
    if diagnostics:
        issue["diagnostics"] = diagnostics
    return {
        "resourceType": "OperationOutcome",
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1"]},
        "issue": [issue],
    }


def bundle(resources: list[Json], kind: str = "searchset") -> Json:
    return {"resourceType": "Bundle", "type": kind, "entry": [{"resource": r} for r in resources]}


def patient(p: data.Patient) -> Json:
    resource: Json = {
        "resourceType": "Patient",
        "id": p.id,
        "meta": {
            "versionId": "1",
            "profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Patient-1"],
        },
        "identifier": [{"system": c.NHS_NUMBER_SYSTEM, "value": p.nhs_number}],
        "active": True,
        "name": [{"use": "official", "family": p.family, "given": [p.given], "prefix": [p.prefix] if p.prefix else []}],
        "gender": p.gender,
        "birthDate": p.birth_date.isoformat(),
        "address": [{"use": "home", "type": "physical", "line": list(p.lines), "postalCode": p.postcode}],
        "managingOrganization": {"reference": f"Organization/{data.ORGANIZATION_ID}"},
    }
    if p.flags:
        resource["extension"] = [
            {
                "url": c.EXT_ONLINE_ACCESS_FLAG,
                "extension": [
                    {"url": "code", "valueCodeableConcept": {"coding": [coding(c.SNOMED, code, "Online access flag")]}},
                    {"url": "recorded", "valueDate": day.isoformat()},
                ],
            }
            for code, day in p.flags
        ]
    return resource


def organization() -> Json:
    return {
        "resourceType": "Organization",
        "id": data.ORGANIZATION_ID,
        "identifier": [{"system": c.ODS_SYSTEM, "value": data.PROVIDER_ODS}],
        "name": data.PRACTICE_NAME,
    }


def location() -> Json:
    return {
        "resourceType": "Location",
        "id": data.LOCATION_ID,
        "name": data.PRACTICE_NAME,
        "address": {"line": ["1 River Street"], "city": "Leeds", "postalCode": "LS1 4AP"},
        "managingOrganization": {"reference": f"Organization/{data.ORGANIZATION_ID}"},
    }


def practitioner(who: data.Clinician) -> Json:
    return {
        "resourceType": "Practitioner",
        "id": who.id,
        "identifier": [{"system": c.SDS_USER_SYSTEM, "value": f"G{who.id:0>7}"}],
        "name": [{"family": who.family, "given": [who.given], "prefix": [who.prefix] if who.prefix else []}],
    }


def role_extension(who: data.Clinician) -> Json:
    return {
        "url": c.EXT_PRACTITIONER_ROLE,
        "valueCodeableConcept": {"coding": [coding(c.SDS_JOB_ROLE_SYSTEM, who.role_code, who.role_display)]},
    }


def schedule(s: data.Schedule, horizon: tuple[dt.datetime, dt.datetime]) -> Json:
    return {
        "resourceType": "Schedule",
        "id": s.id,
        "extension": [role_extension(s.clinician)],
        "serviceCategory": {"text": s.category},
        "actor": [{"reference": f"Location/{data.LOCATION_ID}"}, {"reference": f"Practitioner/{s.clinician.id}"}],
        "planningHorizon": {"start": local(horizon[0]), "end": local(horizon[1])},
    }


def slot(slot_id: str, s: data.Schedule, start: dt.datetime, end: dt.datetime, channel: str, status: str) -> Json:
    return {
        "resourceType": "Slot",
        "id": slot_id,
        "meta": {"versionId": "1"},
        "extension": [{"url": c.EXT_DELIVERY_CHANNEL, "valueCode": channel}],
        "serviceType": [{"text": s.service_type}],
        "schedule": {"reference": f"Schedule/{s.id}"},
        "status": status,
        "start": local(start),
        "end": local(end),
    }


def _security(entry: data.Entry) -> Json:
    meta: Json = {"profile": [f"https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-{entry.kind}-1"]}
    if entry.confidential:
        meta["security"] = [coding(c.ACT_CODE_SYSTEM, "NOPAT", "no disclosure to patient, family or caregivers")]
    return meta


def _concept(entry: data.Entry) -> Json:
    return {"coding": [coding(c.SNOMED, entry.code, entry.term)] if entry.code else [], "text": entry.term}


def clinical(entry: data.Entry, patient_id: str) -> list[Json]:
    """The resources for one record entry (a consultation brings its Encounter and a note Observation)."""
    subject = {"reference": f"Patient/{patient_id}"}
    when = entry.date.isoformat()
    base: Json = {"id": entry.id, "meta": _security(entry)}
    if entry.kind == "allergy":
        resource = {
            "resourceType": "AllergyIntolerance",
            **base,
            "clinicalStatus": entry.status,
            "verificationStatus": "confirmed",
            "code": _concept(entry),
            "patient": subject,
            "assertedDate": when,
            "onsetDateTime": when,
            "recorder": {"reference": "Practitioner/1"},
        }
        if entry.text:
            resource["reaction"] = [{"manifestation": [{"text": entry.text}], "severity": "moderate"}]
        return [resource]
    if entry.kind == "medication":
        return [
            {
                "resourceType": "MedicationStatement",
                **base,
                "status": entry.status,
                "medicationCodeableConcept": _concept(entry),
                "effectivePeriod": {"start": when},
                "dateAsserted": when,
                "subject": subject,
                "taken": "unk",
                "dosage": [{"text": entry.text}],
            }
        ]
    if entry.kind == "problem":
        return [
            {
                "resourceType": "Condition",
                **base,
                "clinicalStatus": entry.status,
                "code": _concept(entry),
                "subject": subject,
                "onsetDateTime": when,
                "assertedDate": when,
            }
        ]
    if entry.kind == "immunisation":
        return [
            {
                "resourceType": "Immunization",
                **base,
                # As real records often do: vaccineCode "UNK", the term in the mandatory VaccinationProcedure
                # extension.
                "extension": [{"url": c.EXT_VACCINATION_PROCEDURE, "valueCodeableConcept": _concept(entry)}],
                "status": entry.status,
                "notGiven": entry.not_given,
                "vaccineCode": {"coding": [coding(c.NULL_FLAVOUR, "UNK", "unknown")], "text": "UNK"},
                "patient": subject,
                "date": when,
                "primarySource": True,
                **({"explanation": {"reasonNotGiven": [{"text": entry.text}]}} if entry.not_given else {}),
            }
        ]
    if entry.kind == "result":
        observation: Json = {
            "resourceType": "Observation",
            **base,
            "status": entry.status,
            "code": _concept(entry),
            "subject": subject,
            "effectiveDateTime": when,
            "issued": f"{when}T12:00:00+00:00",
            "performer": [{"reference": "Practitioner/1"}],
            "valueQuantity": {"value": entry.value, "unit": entry.unit},
            "referenceRange": [
                {"low": {"value": entry.low, "unit": entry.unit}, "high": {"value": entry.high, "unit": entry.unit}}
            ],
        }
        if entry.interpretation:
            observation["interpretation"] = {
                "coding": [coding("http://hl7.org/fhir/v2/0078", entry.interpretation, "Outside reference range")]
            }
        report = {
            "resourceType": "DiagnosticReport",
            "id": f"dr-{entry.id}",
            "status": "final",
            "code": {"text": "Laboratory result"},
            "subject": subject,
            "issued": f"{when}T12:00:00+00:00",
            "result": [{"reference": f"Observation/{entry.id}"}],
        }
        return [report, observation]
    encounter = {
        "resourceType": "Encounter",
        **base,
        "status": entry.status,
        "type": [{"text": entry.term}],
        "subject": subject,
        "period": {"start": f"{when}T10:00:00+00:00"},
        "participant": [{"individual": {"reference": "Practitioner/1"}}],
    }
    note = {
        "resourceType": "Observation",
        "id": f"{entry.id}-note",
        "status": "final",
        "code": {"text": "Comment note"},
        "subject": subject,
        "context": {"reference": f"Encounter/{entry.id}"},
        "effectiveDateTime": when,
        "comment": entry.text,
    }
    topic = {
        "resourceType": "List",
        "id": f"{entry.id}-topic",
        "status": "current",
        "mode": "snapshot",
        "code": {"coding": [coding(c.SNOMED, "25851000000105", "Topic (EHR)")]},
        "encounter": {"reference": f"Encounter/{entry.id}"},
        "entry": [{"item": {"reference": f"Observation/{entry.id}-note"}}],
    }
    return [encounter, topic, note]


def section_list(kind: str, entries: list[data.Entry], warnings: tuple[str, ...], patient_id: str) -> Json:
    code, title = _SECTION_LISTS[kind]
    items = [f"DiagnosticReport/dr-{e.id}" if kind == "result" else f"{_TYPE_OF[kind]}/{e.id}" for e in entries]
    resource: Json = {
        "resourceType": "List",
        "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-List-1"]},
        "status": "current",
        "mode": "snapshot",
        "title": title,
        "code": {"coding": [coding(c.SNOMED, code, title)]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "entry": [{"item": {"reference": ref}} for ref in items],
    }
    if warnings:
        resource["extension"] = [{"url": c.EXT_LIST_WARNING, "valueCode": w} for w in warnings]
    if not entries:
        resource["emptyReason"] = {
            "coding": [
                coding(
                    "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-ListEmptyReasonCode-1",
                    "no-content-recorded",
                    "No content recorded",
                )
            ]
        }
        resource["note"] = [{"text": "Information not available"}]
    return resource


_TYPE_OF = {
    "allergy": "AllergyIntolerance",
    "medication": "MedicationStatement",
    "problem": "Condition",
    "immunisation": "Immunization",
    "consultation": "Encounter",
}


def medication_request(m: data.Medicine, p: data.Patient) -> Json:
    """A repeat template line in the patient-facing (R4, UK Core) shape."""
    repeat: list[Json] = [{"url": "numberOfPrescriptionsIssued", "valueUnsignedInt": m.issues_used}]
    if m.expires:
        repeat.append({"url": "authorisationExpiryDate", "valueDateTime": m.expires.isoformat()})
    return {
        "resourceType": "MedicationRequest",
        "id": m.id,
        "meta": {"profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-MedicationRequest"]},
        "extension": [{"url": c.EXT_REPEAT_INFORMATION, "extension": repeat}],
        "identifier": [{"system": c.UUID_IDENTIFIER_SYSTEM, "value": m.id}],
        "status": "active",
        "intent": "plan",
        "medicationCodeableConcept": {"coding": [coding(c.SNOMED, m.code, m.name)]},
        "subject": {
            "reference": f"Patient/{p.nhs_number}",
            "identifier": {"system": c.NHS_NUMBER_SYSTEM, "value": p.nhs_number},
        },
        "courseOfTherapyType": {"coding": [coding(c.COURSE_OF_THERAPY_SYSTEM, m.course, m.course)]},
        "authoredOn": "2024-01-01T09:00:00+00:00",
        "dosageInstruction": [{"text": m.dosage}],
        "dispenseRequest": {
            "numberOfRepeatsAllowed": m.issues_allowed,
            "quantity": {"value": m.quantity, "unit": m.unit},
        },
    }
