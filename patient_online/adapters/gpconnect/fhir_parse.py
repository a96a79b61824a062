"""FHIR (STU3 and the patient-facing R4) resources read tolerantly into domain objects.

Nothing here does I/O. Every function accepts what real providers send, including the specification's
own examples that break strict cardinality (an object where an array belongs, or the reverse, numbers
as strings, dates parsed by a YAML loader). FHIR dicts never leave this module's callers in the adapter.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from patient_online.domain.appointments import Appointment, AppointmentStatus, Clinician, DeliveryMode, Slot
from patient_online.domain.patients import AccessFlag, Demographics, PatientRef
from patient_online.domain.prescriptions import Collection, PrescriptionType, RepeatItem, RepeatRequest, RequestStatus
from patient_online.domain.record import (
    NO_CONTENT_RECORDED_NOTE,
    RecordEntry,
    RecordExtract,
    RecordNotice,
    Section,
    SectionNote,
    empty_reason_words,
    split_no_known_allergies,
)

from . import constants as c

Json = dict[str, Any]

_FLAG_CODES = frozenset({"1290331000000103", "1364731000000104", "1364751000000106"})


# --------------------------------------------------------------------------- primitives


def as_list(value: Any) -> list[Any]:
    """A FHIR array, whether the sender wrote an array, a single object or nothing."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def as_dict(value: Any) -> Json:
    """A FHIR object, whether the sender wrote an object, a one-item array or nothing."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list) and value and isinstance(value[0], dict):
        first: Json = value[0]
        return first
    return {}


def text(value: Any) -> str:
    """A string value, or "" for anything missing."""
    if value is None:
        return ""
    return str(value).strip()


def parse_datetime(value: Any) -> dt.datetime | None:
    """An aware UTC moment from a FHIR dateTime/instant (or a YAML-parsed one); dates become midnight UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    else:
        raw = str(value).strip().replace("Z", "+00:00")
        if re.fullmatch(r"\d{4}", raw):
            raw += "-01-01"
        elif re.fullmatch(r"\d{4}-\d{2}", raw):
            raw += "-01"
        try:
            moment = dt.datetime.fromisoformat(raw)
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def parse_date(value: Any) -> dt.date | None:
    """The calendar date of a FHIR date or dateTime, as written (no time-zone shift for plain dates)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    raw = str(value).strip()
    match = re.match(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?", raw)
    if not match:
        return None
    try:
        return dt.date(int(match.group(1)), int(match.group(2) or 1), int(match.group(3) or 1))
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _format_number(value: Any) -> str:
    number = _number(value)
    if number is None:
        return text(value)
    return str(int(number)) if number.is_integer() else f"{number:g}"


def concept_text(concept: Any) -> str:
    """What a CodeableConcept says in words: its text, else the first coding's display."""
    concept = as_dict(concept)
    if text(concept.get("text")):
        return text(concept.get("text"))
    for coding in as_list(concept.get("coding")):
        if isinstance(coding, dict) and text(coding.get("display")):
            return text(coding.get("display"))
    return ""


def concept_code(concept: Any, system: str | None = None) -> str:
    """The first coding's code (of ``system`` when given)."""
    for coding in as_list(as_dict(concept).get("coding")):
        if isinstance(coding, dict) and (system is None or coding.get("system") == system):
            code = text(coding.get("code"))
            if code:
                return code
    return ""


def extensions(resource: Json, url_part: str) -> list[Json]:
    """The resource's extensions whose URL contains ``url_part`` (URLs vary between fhir.nhs.uk and hl7.org.uk)."""
    return [e for e in as_list(resource.get("extension")) if isinstance(e, dict) and url_part in text(e.get("url"))]


def sub_extension(extension: Json, name: str) -> Json:
    """One named part of a complex extension, or {}."""
    for part in as_list(extension.get("extension")):
        if isinstance(part, dict) and part.get("url") == name:
            return part
    return {}


def ref_id(reference: Any) -> str:
    """The logical id in a reference ("Slot/1", "https://x/Slot/1/_history/2" or "#1")."""
    ref = text(as_dict(reference).get("reference")) if isinstance(reference, dict | list) else text(reference)
    if ref.startswith("#"):
        return ref[1:]
    parts = [p for p in ref.split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return parts[-1] if parts else ""


def ref_key(reference: Any) -> str:
    """A reference normalised to "Type/id" (or "#id" for a contained resource)."""
    ref = text(as_dict(reference).get("reference")) if isinstance(reference, dict | list) else text(reference)
    if ref.startswith("#"):
        return ref
    parts = [p for p in ref.split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:]) if len(parts) >= 2 else ref


# --------------------------------------------------------------------------- bundles


class ResourceIndex:
    """The resources of a bundle by "Type/id", so resources are found by reference, never by position."""

    def __init__(self, resources: Iterable[Json]) -> None:
        self._by_key: dict[str, Json] = {}
        self.resources: list[Json] = []
        for resource in resources:
            self.add(resource)

    def add(self, resource: Json) -> None:
        self.resources.append(resource)
        rid = text(resource.get("id"))
        if rid:
            self._by_key[f"{resource.get('resourceType')}/{rid}"] = resource

    def get(self, reference: Any, container: Json | None = None) -> Json | None:
        """The resource a reference points at: contained in ``container`` for "#id", else in the bundle."""
        key = ref_key(reference)
        if key.startswith("#"):
            for inner in as_list((container or {}).get("contained")):
                if isinstance(inner, dict) and text(inner.get("id")) == key[1:]:
                    return inner
            return None
        return self._by_key.get(key)

    def of_type(self, resource_type: str) -> Iterator[Json]:
        return (r for r in self.resources if r.get("resourceType") == resource_type)

    @classmethod
    def of_bundle(cls, bundle: Json) -> ResourceIndex:
        """Index a Bundle's entries, or a lone resource."""
        if bundle.get("resourceType") != "Bundle":
            return cls([bundle])
        resources = [as_dict(e.get("resource")) for e in as_list(bundle.get("entry")) if isinstance(e, dict)]
        return cls(r for r in resources if r)


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Outcome:
    """The first issue of an OperationOutcome, reduced to what error mapping needs (no free text)."""

    spine_code: str
    issue_code: str
    severity: str
    diagnostics: str = ""


def parse_outcome(resource: Any) -> Outcome | None:
    """The first issue of an OperationOutcome, or None when the body is not one."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "OperationOutcome":
        return None
    issue = as_dict(resource.get("issue"))
    return Outcome(
        spine_code=concept_code(issue.get("details")),
        issue_code=text(issue.get("code")),
        severity=text(issue.get("severity")),
        diagnostics=text(issue.get("diagnostics")),
    )


# --------------------------------------------------------------------------- patients


def nhs_number_of(resource: Json) -> str:
    """The NHS number among a resource's identifiers, or ""."""
    for identifier in as_list(resource.get("identifier")):
        if isinstance(identifier, dict) and identifier.get("system") == c.NHS_NUMBER_SYSTEM:
            return text(identifier.get("value"))
    return ""


def human_name(resource: Json, with_prefix: bool = True) -> tuple[str, str, str]:
    """(prefix, given, family) of the official (else first) name; text-only names are split sensibly."""
    names = [n for n in as_list(resource.get("name")) if isinstance(n, dict)]
    if not names:
        return "", "", ""
    name = next((n for n in names if n.get("use") == "official"), names[0])
    given = " ".join(text(g) for g in as_list(name.get("given")) if text(g))
    family = text(name.get("family"))
    prefix = " ".join(text(p) for p in as_list(name.get("prefix")) if text(p)) if with_prefix else ""
    if not given and not family and text(name.get("text")):
        words = text(name.get("text")).split()
        given, family = " ".join(words[:-1]), words[-1]
    return prefix, given, family


def _access_flags(resource: Json) -> tuple[AccessFlag, ...]:
    flags: list[AccessFlag] = []

    def visit(ext: Json, siblings: list[Any]) -> None:
        concept = ext.get("valueCodeableConcept")
        code = concept_code(concept, c.SNOMED) if concept else text(as_dict(ext.get("valueCoding")).get("code"))
        if code in _FLAG_CODES:
            recorded: dt.date | None = None
            for sib in siblings:
                if isinstance(sib, dict):
                    recorded = recorded or parse_date(sib.get("valueDate") or sib.get("valueDateTime"))
            flags.append(AccessFlag(code=code, recorded_on=recorded or dt.date.min))
        children = [x for x in as_list(ext.get("extension")) if isinstance(x, dict)]
        for child in children:
            visit(child, children)

    top = [x for x in as_list(resource.get("extension")) if isinstance(x, dict)]
    for ext in top:
        visit(ext, [])
    return tuple(flags)


def parse_patient(resource: Json, practice_ods: str) -> Demographics | None:
    """A Patient resource as Demographics, or None when it carries no NHS number."""
    nhs = nhs_number_of(resource)
    if not nhs:
        return None
    _prefix, given, family = human_name(resource)
    addresses = [a for a in as_list(resource.get("address")) if isinstance(a, dict)]
    address = next((a for a in addresses if a.get("use") == "home"), addresses[0] if addresses else {})
    lines = [text(x) for x in as_list(address.get("line")) if text(x)]
    lines += [text(address.get(k)) for k in ("city", "district") if text(address.get(k))]
    return Demographics(
        ref=PatientRef(practice_ods=practice_ods, nhs_number=nhs, clinical_id=text(resource.get("id"))),
        given_name=given,
        family_name=family,
        date_of_birth=parse_date(resource.get("birthDate")) or dt.date.min,
        postcode=text(address.get("postalCode")),
        address=", ".join(lines),
        sex=text(resource.get("gender")),
        flags=_access_flags(resource),
    )


def parse_patient_search(bundle: Json, practice_ods: str, nhs_number: str | None = None) -> Demographics | None:
    """The patient found by a Patient search (a Bundle), or None when there is none."""
    index = ResourceIndex.of_bundle(bundle)
    for resource in index.of_type("Patient"):
        found = parse_patient(resource, practice_ods)
        if found is not None and (nhs_number is None or found.ref.nhs_number == nhs_number):
            return found
    return None


# --------------------------------------------------------------------------- appointments

_ROLE_NAMES = {"R0260": "GP", "R0270": "GP"}


def delivery_mode(resource: Json) -> DeliveryMode:
    """The DeliveryChannel extension as a DeliveryMode; face to face when absent."""
    for ext in extensions(resource, "DeliveryChannel"):
        value = text(ext.get("valueCode") or concept_code(ext.get("valueCodeableConcept"))).lower()
        if "tele" in value or "phone" in value:
            return DeliveryMode.TELEPHONE
        if "video" in value:
            return DeliveryMode.VIDEO
    return DeliveryMode.FACE_TO_FACE


def _role(resource: Json) -> str:
    for ext in extensions(resource, "PractitionerRole"):
        concept = as_dict(ext.get("valueCodeableConcept"))
        code = concept_code(concept)
        if code in _ROLE_NAMES:
            return _ROLE_NAMES[code]
        words = concept_text(concept)
        if "nurse" in words.lower():
            return "Practice nurse"
        if "general medical practitioner" in words.lower():
            return "GP"
        if words:
            return words
    return ""


def clinician_of(practitioner: Json | None, role: str, fallback_name: str = "") -> Clinician:
    """A Practitioner (when known) as a Clinician, named as a patient would read it ("Dr Sarah Black")."""
    if not practitioner:
        return Clinician(id="", name=fallback_name, role=role)
    prefix, given, family = human_name(practitioner)
    name = " ".join(p for p in (prefix, given, family) if p)
    return Clinician(id=text(practitioner.get("id")), name=name or fallback_name, role=role)


def _slot_type(slot: Json, schedule: Json) -> str:
    """The slot type: the Slot's serviceType text, else the Schedule's serviceCategory text."""
    for concept in as_list(slot.get("serviceType")):
        words = concept_text(concept)
        if words:
            return words
    return concept_text(schedule.get("serviceCategory")) or "Appointment"


def _schedule_parts(schedule: Json, index: ResourceIndex) -> tuple[Json | None, Json | None]:
    practitioner = location = None
    for actor in as_list(schedule.get("actor")):
        key = ref_key(actor)
        if key.startswith("Practitioner/") and practitioner is None:
            practitioner = index.get(actor)
        elif key.startswith("Location/") and location is None:
            location = index.get(actor)
    return practitioner, location


def parse_slot(slot: Json, index: ResourceIndex) -> Slot | None:
    """A Slot resource with its Schedule, Practitioner and Location found by reference; None when unusable."""
    start, end = parse_datetime(slot.get("start")), parse_datetime(slot.get("end"))
    if start is None or end is None or not text(slot.get("id")):
        return None
    schedule = index.get(slot.get("schedule")) or {}
    practitioner, location = _schedule_parts(schedule, index)
    role = _role(schedule) or _role(slot)
    return Slot(
        id=text(slot.get("id")),
        start=start,
        end=end,
        slot_type=_slot_type(slot, schedule),
        clinician=clinician_of(practitioner, role, concept_text(schedule.get("serviceCategory"))),
        delivery_mode=delivery_mode(slot),
        location=text((location or {}).get("name")),
    )


def parse_slots(bundle: Json) -> list[Slot]:
    """The free slots of a slot search Bundle, soonest first."""
    index = ResourceIndex.of_bundle(bundle)
    slots = [
        parsed
        for resource in index.of_type("Slot")
        if text(resource.get("status") or "free") == "free" and (parsed := parse_slot(resource, index)) is not None
    ]
    return sorted(slots, key=lambda s: (s.start, s.id))


_APPOINTMENT_STATUS = {
    "booked": AppointmentStatus.BOOKED,
    "cancelled": AppointmentStatus.CANCELLED,
    "fulfilled": AppointmentStatus.FULFILLED,
    "arrived": AppointmentStatus.FULFILLED,
    "noshow": AppointmentStatus.DID_NOT_ATTEND,
    "proposed": AppointmentStatus.PENDING,
    "pending": AppointmentStatus.PENDING,
    "waitlist": AppointmentStatus.PENDING,
    "checked-in": AppointmentStatus.FULFILLED,
    "entered-in-error": AppointmentStatus.ENTERED_IN_ERROR,
}


def appointment_status(resource: Json) -> AppointmentStatus:
    """Every status of the Appointment value set; booked when a sender leaves it out."""
    return _APPOINTMENT_STATUS.get(text(resource.get("status")).lower(), AppointmentStatus.BOOKED)


def appointment_patient_id(resource: Json) -> str:
    """The logical id of the Patient taking part in an Appointment, or ""."""
    for participant in as_list(resource.get("participant")):
        actor = as_dict(participant).get("actor")
        if ref_key(actor).startswith("Patient/"):
            return ref_id(actor)
    return ""


def parse_appointment(
    resource: Json, index: ResourceIndex | None = None, known_slot: Slot | None = None
) -> Appointment:
    """An Appointment resource as a domain Appointment; the first slot reference names the slot."""
    index = index or ResourceIndex([resource])
    practitioner = location = None
    for participant in as_list(resource.get("participant")):
        actor = as_dict(participant).get("actor")
        key = ref_key(actor)
        if key.startswith("Practitioner/") and practitioner is None:
            display = text(as_dict(actor).get("display"))
            practitioner = index.get(actor)
            if practitioner is None and not (known_slot and known_slot.clinician.id == ref_id(actor)):
                practitioner = {"id": ref_id(actor), "name": [{"text": display}] if display else []}
        elif key.startswith("Location/") and location is None:
            location = index.get(actor) or {"name": text(as_dict(actor).get("display"))}
    slot_ids = [ref_id(s) for s in as_list(resource.get("slot")) if ref_id(s)]
    start = parse_datetime(resource.get("start")) or (known_slot.start if known_slot else None)
    end = parse_datetime(resource.get("end")) or (known_slot.end if known_slot else None)
    start = start or dt.datetime.min.replace(tzinfo=dt.UTC)
    end = end or start
    slot_type = ""
    for concept in as_list(resource.get("serviceType")):
        slot_type = slot_type or concept_text(concept)
    slot_type = slot_type or concept_text(resource.get("serviceCategory"))
    role = _role(resource)
    if known_slot is not None:
        clinician = (
            known_slot.clinician
            if practitioner is None
            else clinician_of(practitioner, role or known_slot.clinician.role)
        )
    else:
        clinician = clinician_of(practitioner, role)
    slot = Slot(
        id=slot_ids[0] if slot_ids else (known_slot.id if known_slot else ""),
        start=start,
        end=end,
        slot_type=slot_type or (known_slot.slot_type if known_slot else "Appointment"),
        clinician=clinician,
        delivery_mode=delivery_mode(resource)
        if extensions(resource, "DeliveryChannel") or known_slot is None
        else known_slot.delivery_mode,
        location=text((location or {}).get("name")) or (known_slot.location if known_slot else ""),
    )
    reason = ""
    for ext in extensions(resource, "AppointmentCancellationReason"):
        reason = text(ext.get("valueString"))
    version = text(as_dict(resource.get("meta")).get("versionId")) or "1"
    return Appointment(
        id=text(resource.get("id")),
        slot=slot,
        status=appointment_status(resource),
        reason=text(resource.get("description")),
        version=version,
        booked_at=parse_datetime(resource.get("created")),
        cancellation_reason=reason,
    )


def parse_appointments(bundle: Json) -> list[Appointment]:
    """The Appointments of a search Bundle, soonest first; those the practice recorded in error are left out."""
    index = ResourceIndex.of_bundle(bundle)
    found = [parse_appointment(r, index) for r in index.of_type("Appointment")]
    found = [a for a in found if a.status.shown]
    return sorted(found, key=lambda a: (a.slot.start, a.id))


# --------------------------------------------------------------------------- structured record

_LIST_SECTIONS = {
    c.LIST_ALLERGIES: Section.ALLERGIES,
    c.LIST_ENDED_ALLERGIES: Section.ALLERGIES,
    c.LIST_MEDICATIONS: Section.MEDICATIONS,
    c.LIST_PROBLEMS: Section.PROBLEMS,
    c.LIST_IMMUNISATIONS: Section.IMMUNISATIONS,
    c.LIST_CONSULTATIONS: Section.CONSULTATIONS,
    c.LIST_INVESTIGATIONS: Section.TEST_RESULTS,
}
_TITLE_SECTIONS = (
    ("allerg", Section.ALLERGIES),
    ("medication", Section.MEDICATIONS),
    ("problem", Section.PROBLEMS),
    ("immuni", Section.IMMUNISATIONS),
    ("investigation", Section.TEST_RESULTS),
    ("consultation", Section.CONSULTATIONS),
)
PARAM_SECTIONS = {
    c.PARAM_ALLERGIES: Section.ALLERGIES,
    c.PARAM_MEDICATION: Section.MEDICATIONS,
    c.PARAM_PROBLEMS: Section.PROBLEMS,
    c.PARAM_IMMUNISATIONS: Section.IMMUNISATIONS,
    "includeImmunizations": Section.IMMUNISATIONS,
    c.PARAM_INVESTIGATIONS: Section.TEST_RESULTS,
    c.PARAM_CONSULTATIONS: Section.CONSULTATIONS,
}
_WARNINGS = {
    "confidential-items": "Some entries are not shown online because your GP practice has marked them as private.",
    "data-in-transit": (
        "Some of your record may be missing because it is still being transferred from a previous GP practice."
    ),
    "data-awaiting-filing": (
        "Some information has been received by your GP practice but has not been reviewed and filed yet."
    ),
}
_ABNORMAL = frozenset({"H", "HH", "HU", "L", "LL", "LU", "A", "AA", "<", ">", "POS", "abnormal"})
_CONFIDENTIAL = frozenset({"NOPAT", "R", "V"})


def list_section(resource: Json) -> Section | None:
    """The record section a List stands for: by its SNOMED code, else by words in its title."""
    code = concept_code(resource.get("code"))
    if code in _LIST_SECTIONS:
        return _LIST_SECTIONS[code]
    if code and code.isdigit():
        return None  # a coded list we do not show (consultation topics, recalls, ...)
    title = text(resource.get("title")).lower()
    if "linked" in title or "related" in title or "contained in" in title:
        return None
    for word, section in _TITLE_SECTIONS:
        if word in title:
            return section
    return None


def is_confidential(resource: Json) -> bool:
    """True when meta.security carries NOPAT or a restricted confidentiality code."""
    for label in as_list(as_dict(resource.get("meta")).get("security")):
        if isinstance(label, dict) and text(label.get("code")) in _CONFIDENTIAL:
            return True
    return False


def _notes(resource: Json) -> str:
    lines = (text(as_dict(n).get("text")) for n in as_list(resource.get("note")))
    return "\n".join(line for line in lines if line)


def _clinician_name(reference: Any, index: ResourceIndex) -> str:
    target = index.get(reference)
    if target and target.get("resourceType") == "PractitionerRole":
        target = index.get(target.get("practitioner"))
    if not target or target.get("resourceType") != "Practitioner":
        return text(as_dict(reference).get("display"))
    return " ".join(p for p in human_name(target) if p)


def medication_name(resource: Json, index: ResourceIndex, container: Json | None = None) -> tuple[str, str]:
    """(name, code) of the medicine a MedicationStatement/MedicationRequest is about."""
    concept = resource.get("medicationCodeableConcept")
    if concept is None and resource.get("medicationReference") is not None:
        medication = index.get(resource.get("medicationReference"), container or resource) or {}
        concept = medication.get("code")
        if concept is None:
            return text(as_dict(resource.get("medicationReference")).get("display")), ""
    return concept_text(concept), concept_code(concept)


def _dosage(resource: Json, key: str) -> str:
    dosage = as_dict(resource.get(key))
    return text(dosage.get("text")) or text(dosage.get("patientInstruction"))


def _first_date(resource: Json, *keys: str) -> dt.date | None:
    for key in keys:
        value = resource.get(key)
        if isinstance(value, dict):
            value = value.get("start")
        found = parse_date(value)
        if found is not None:
            return found
    return None


def _allergy(resource: Json, index: ResourceIndex, ended: bool) -> RecordEntry | None:
    term = concept_text(resource.get("code"))
    if not term:
        return None
    reactions = [as_dict(r) for r in as_list(resource.get("reaction"))]
    manifestations = [concept_text(m) for r in reactions for m in as_list(r.get("manifestation"))]
    status = text(resource.get("clinicalStatus"))
    if isinstance(resource.get("clinicalStatus"), dict):
        status = concept_code(resource.get("clinicalStatus"))
    return RecordEntry(
        id=text(resource.get("id")),
        section=Section.ALLERGIES,
        date=_first_date(resource, "onsetDateTime", "assertedDate", "recordedDate") or dt.date.min,
        term=term,
        code=concept_code(resource.get("code")),
        free_text=_notes(resource),
        status="past" if ended or status in ("resolved", "inactive") else "active",
        clinician=_clinician_name(resource.get("recorder"), index),
        severity=next((text(r.get("severity")) for r in reactions if text(r.get("severity"))), ""),
        reaction=", ".join(m for m in manifestations if m),
        confidential=is_confidential(resource),
    )


def _medication(resource: Json, index: ResourceIndex) -> RecordEntry | None:
    term, code = medication_name(resource, index)
    if not term:
        return None
    status = text(resource.get("status"))
    return RecordEntry(
        id=text(resource.get("id")),
        section=Section.MEDICATIONS,
        date=_first_date(resource, "effectivePeriod", "effectiveDateTime", "dateAsserted") or dt.date.min,
        term=term,
        code=code,
        free_text=_notes(resource),
        status="current" if status in ("active", "intended", "") else "stopped",
        dosage=_dosage(resource, "dosage"),
        confidential=is_confidential(resource),
    )


def _problem(resource: Json, index: ResourceIndex) -> RecordEntry | None:
    term = concept_text(resource.get("code"))
    if not term:
        return None
    status = text(resource.get("clinicalStatus"))
    if isinstance(resource.get("clinicalStatus"), dict):
        status = concept_code(resource.get("clinicalStatus"))
    return RecordEntry(
        id=text(resource.get("id")),
        section=Section.PROBLEMS,
        date=_first_date(resource, "onsetDateTime", "onsetPeriod", "assertedDate", "recordedDate") or dt.date.min,
        term=term,
        code=concept_code(resource.get("code")),
        free_text=_notes(resource),
        status="active" if status in ("active", "recurrence", "relapse", "") else "past",
        clinician=_clinician_name(resource.get("asserter") or resource.get("recorder"), index),
        confidential=is_confidential(resource),
    )


_UNKNOWN_VACCINE = frozenset({"unk", "unknown", "nullflavor", "ni", "unc"})


def _known_words(concept: Any) -> str:
    """A concept's words, unless it only says the value is unknown ("UNK", the v3 null flavour)."""
    words = concept_text(concept)
    return "" if words.lower() in _UNKNOWN_VACCINE else words


def immunisation_term(resource: Json) -> str:
    """The vaccination's name: the VaccinationProcedure extension (mandatory in GP Connect, and where the real
    term is when vaccineCode says "UNK"), else vaccineCode's words, else a plain placeholder."""
    for ext in extensions(resource, "VaccinationProcedure"):
        words = _known_words(ext.get("valueCodeableConcept"))
        if words:
            return words
    return _known_words(resource.get("vaccineCode")) or "Vaccination (name not recorded)"


def _immunisation_code(resource: Json) -> str:
    for ext in extensions(resource, "VaccinationProcedure"):
        code = concept_code(ext.get("valueCodeableConcept"))
        if code and code.lower() not in _UNKNOWN_VACCINE:
            return code
    code = concept_code(resource.get("vaccineCode"))
    return "" if code.lower() in _UNKNOWN_VACCINE else code


def _not_given(resource: Json) -> tuple[bool, str]:
    """Whether the vaccination was not given (notGiven, or R4's status "not-done"), and why in words."""
    flag = resource.get("notGiven")
    not_given = flag is True or text(flag).lower() == "true" or text(resource.get("status")) == "not-done"
    if not not_given:
        return False, ""
    explanation = as_dict(resource.get("explanation"))
    reasons = [concept_text(r) for r in as_list(explanation.get("reasonNotGiven"))]
    reasons += [concept_text(r) for r in as_list(resource.get("statusReason"))]
    return True, "; ".join(dict.fromkeys(r for r in reasons if r))


def _immunisation(resource: Json, index: ResourceIndex) -> RecordEntry | None:
    if not text(resource.get("id")):
        return None
    term = immunisation_term(resource)
    not_given, why = _not_given(resource)
    return RecordEntry(
        id=text(resource.get("id")),
        section=Section.IMMUNISATIONS,
        date=_first_date(resource, "date", "occurrenceDateTime", "recorded") or dt.date.min,
        term=term,
        code=_immunisation_code(resource),
        free_text=_notes(resource),
        status=text(resource.get("status")),
        clinician=_clinician_name(as_dict(resource.get("practitioner")).get("actor"), index),
        confidential=is_confidential(resource),
        not_given=not_given,
        not_given_reason=why,
    )


def _range_text(resource: Json) -> tuple[str, float | None, float | None]:
    ranges = [as_dict(r) for r in as_list(resource.get("referenceRange"))]
    if not ranges:
        return "", None, None
    first = ranges[0]
    low, high = as_dict(first.get("low")), as_dict(first.get("high"))
    low_v, high_v = _number(low.get("value")), _number(high.get("value"))
    if text(first.get("text")):
        return text(first.get("text")), low_v, high_v
    if low_v is None and high_v is None:
        return "", None, None
    unit = text(high.get("unit") or low.get("unit"))
    if low_v is not None and high_v is not None:
        words = f"{_format_number(low_v)} to {_format_number(high_v)}"
    elif low_v is not None:
        words = f"above {_format_number(low_v)}"
    else:
        words = f"below {_format_number(high_v)}"
    return f"{words} {unit}".strip(), low_v, high_v


def _test_result(resource: Json, index: ResourceIndex) -> RecordEntry | None:
    term = concept_text(resource.get("code"))
    if not term:
        return None
    quantity = as_dict(resource.get("valueQuantity"))
    value, unit = "", ""
    if quantity:
        value = f"{text(quantity.get('comparator'))}{_format_number(quantity.get('value'))}"
        unit = text(quantity.get("unit") or quantity.get("code"))
    elif resource.get("valueString") is not None:
        value = text(resource.get("valueString"))
    elif resource.get("valueCodeableConcept") is not None:
        value = concept_text(resource.get("valueCodeableConcept"))
    reference_range, low, high = _range_text(resource)
    flagged = any(
        concept_code(i) in _ABNORMAL or concept_text(i).lower() in ("abnormal", "high", "low")
        for i in as_list(resource.get("interpretation"))
    )
    number = _number(quantity.get("value")) if quantity else None
    if not flagged and number is not None:
        flagged = (low is not None and number < low) or (high is not None and number > high)
    performer = next((p for p in as_list(resource.get("performer")) if ref_key(p).startswith("Practitioner")), None)
    status = text(resource.get("status"))
    return RecordEntry(
        id=text(resource.get("id")),
        section=Section.TEST_RESULTS,
        date=_first_date(resource, "effectiveDateTime", "effectivePeriod", "issued") or dt.date.min,
        term=term,
        code=concept_code(resource.get("code")),
        free_text=text(resource.get("comment")) or _notes(resource),
        status=status,
        value=value,
        unit=unit,
        reference_range=reference_range,
        outside_range=flagged,
        filed_on=parse_date(resource.get("issued")),
        clinician=_clinician_name(performer, index) if performer else "",
        filed=status in ("final", "amended", "corrected", "appended", ""),
        confidential=is_confidential(resource),
    )


def _consultation(resource: Json, index: ResourceIndex) -> RecordEntry | None:
    types = as_list(resource.get("type"))
    term = next((concept_text(t) for t in types if concept_text(t)), "") or "Consultation"
    key = f"Encounter/{text(resource.get('id'))}"
    lines: list[str] = []
    for observation in index.of_type("Observation"):
        if ref_key(observation.get("context") or observation.get("encounter")) == key:
            words = text(observation.get("comment"))
            if words:
                lines.append(f"{concept_text(observation.get('code'))}: {words}".strip(": "))
    clinician = ""
    for participant in as_list(resource.get("participant")):
        clinician = clinician or _clinician_name(as_dict(participant).get("individual"), index)
    return RecordEntry(
        id=text(resource.get("id")),
        section=Section.CONSULTATIONS,
        date=_first_date(resource, "period") or dt.date.min,
        term=term,
        code=next((concept_code(t) for t in types if concept_code(t)), ""),
        free_text="\n".join(lines)[:4000],
        status=text(resource.get("status")),
        clinician=clinician,
        confidential=is_confidential(resource),
    )


def _notice_for_param(param: str) -> RecordNotice:
    section = PARAM_SECTIONS.get(param)
    label = section.label.lower() if section else "some parts of your record"
    return RecordNotice(section=section, text=f"Your GP practice's system cannot share {label} online yet.")


def parse_structured_record(bundle: Json, sections: frozenset[Section] | None = None) -> RecordExtract:
    """A structured record Bundle as entries and notices, kept to ``sections`` when given."""
    index = ResourceIndex.of_bundle(bundle)
    extract = RecordExtract()
    seen: set[tuple[Section, str]] = set()
    listed: dict[str, tuple[Section, bool]] = {}  # "Type/id" -> section, ended
    contained: list[tuple[Json, Section, bool]] = []
    investigation_items: set[str] = set()

    for lst in index.of_type("List"):
        section = list_section(lst)
        for ext in extensions(lst, "ListWarningCode"):
            code = text(ext.get("valueCode"))
            if code in _WARNINGS:
                extract.notices.append(RecordNotice(section=section, text=_WARNINGS[code]))
        empty_code = concept_code(lst.get("emptyReason"))
        if empty_code == "not-supported" and section is not None:
            words = f"Your GP practice's system cannot share {section.label.lower()} online yet."
            extract.notices.append(RecordNotice(section=section, text=words))
        if section is None:
            continue
        list_note = _list_note(lst)
        if (empty_code and empty_code != "not-supported") or list_note:
            reason = ""
            if empty_code and empty_code != "not-supported" and not as_list(lst.get("entry")):
                reason = empty_reason_words(section, empty_code, concept_text(lst.get("emptyReason")))
            extract.section_notes.append(SectionNote(section, empty_reason=reason, note=list_note))
        ended = concept_code(lst.get("code")) == c.LIST_ENDED_ALLERGIES or "resolved" in text(lst.get("title")).lower()
        for item in as_list(lst.get("entry")):
            reference = as_dict(item).get("item")
            key = ref_key(reference)
            if key.startswith("#"):
                inner = index.get(reference, lst)
                if inner:
                    contained.append((inner, section, ended))
                continue
            listed.setdefault(key, (section, ended))
            if section is Section.TEST_RESULTS:
                investigation_items.add(key)

    for report in index.of_type("DiagnosticReport"):
        if f"DiagnosticReport/{text(report.get('id'))}" in investigation_items or not investigation_items:
            for result in as_list(report.get("result")):
                investigation_items.add(ref_key(result))
                listed.setdefault(ref_key(result), (Section.TEST_RESULTS, False))

    def add(entry: RecordEntry | None) -> None:
        if entry is None or not entry.id or (sections is not None and entry.section not in sections):
            return
        if (entry.section, entry.id) in seen:
            return
        seen.add((entry.section, entry.id))
        extract.entries.append(entry)

    def parse_one(resource: Json, ended: bool) -> RecordEntry | None:
        kind = resource.get("resourceType")
        if kind == "AllergyIntolerance":
            return _allergy(resource, index, ended)
        if kind == "MedicationStatement":
            return _medication(resource, index)
        if kind == "Condition":
            return _problem(resource, index)
        if kind == "Immunization":
            return _immunisation(resource, index)
        if kind == "Encounter":
            return _consultation(resource, index)
        if kind == "Observation":
            key = f"Observation/{text(resource.get('id'))}"
            return _test_result(resource, index) if key in investigation_items else None
        return None

    for inner, _in_section, in_ended in contained:
        add(parse_one(inner, in_ended))
    for resource in index.resources:
        key = f"{resource.get('resourceType')}/{text(resource.get('id'))}"
        add(parse_one(resource, listed[key][1] if key in listed else False))

    for outcome in index.of_type("OperationOutcome"):
        for issue in as_list(outcome.get("issue")):
            issue = as_dict(issue)
            if text(issue.get("code")) == "not-supported":
                param = text(issue.get("diagnostics"))
                extract.notices.append(_notice_for_param(param))
    extract.entries, nil_known = split_no_known_allergies(extract.entries)
    extract.section_notes = _merge_notes([*nil_known, *extract.section_notes])
    if sections is not None:
        extract.notices = [n for n in extract.notices if n.section is None or n.section in sections]
        extract.section_notes = [n for n in extract.section_notes if n.section in sections]
    return extract


def _list_note(lst: Json) -> str:
    """A List's note, unless it is the fixed text every empty list carries or repeats a warning already shown."""
    words = _notes(lst)
    if words.strip().rstrip(".").lower() == NO_CONTENT_RECORDED_NOTE:
        return ""
    if extensions(lst, "ListWarningCode"):
        return ""  # the note is the warnings' text, already shown as notices in plain words
    return words


def _merge_notes(notes: list[SectionNote]) -> list[SectionNote]:
    """One note per section: the first empty reason found (a recorded "no known allergies" wins), notes joined."""
    merged: dict[Section, SectionNote] = {}
    for note in notes:
        old = merged.get(note.section)
        if old is None:
            merged[note.section] = note
            continue
        joined = "\n".join(dict.fromkeys(n for n in (old.note, note.note) if n))
        merged[note.section] = SectionNote(note.section, old.empty_reason or note.empty_reason, joined)
    return [n for n in merged.values() if n.empty_reason or n.note]


# --------------------------------------------------------------------------- repeat medication


def _prescription_type(resource: Json) -> PrescriptionType:
    course = concept_code(resource.get("courseOfTherapyType"))
    for ext in extensions(resource, "PrescriptionType"):
        course = course or concept_code(ext.get("valueCodeableConcept"))
    course = course.lower()
    if "dispensing" in course:
        return PrescriptionType.REPEAT_DISPENSING
    if course.startswith("acute"):
        return PrescriptionType.ACUTE
    return PrescriptionType.REPEAT


def _quantity(resource: Json) -> str:
    dispense = as_dict(resource.get("dispenseRequest"))
    quantity = as_dict(dispense.get("quantity"))
    for ext in extensions(quantity, "QuantityText"):
        if text(ext.get("valueString")):
            return text(ext.get("valueString"))
    if quantity.get("value") is None:
        return ""
    return f"{_format_number(quantity.get('value'))} {text(quantity.get('unit'))}".strip()


def _repeat_information(resource: Json) -> tuple[int | None, int, dt.date | None]:
    allowed = _int(as_dict(resource.get("dispenseRequest")).get("numberOfRepeatsAllowed"))
    used, review = 0, None
    for ext in extensions(resource, "RepeatInformation"):
        for name in ("numberOfPrescriptionsIssued", "numberOfRepeatPrescriptionsIssued"):
            part = sub_extension(ext, name)
            if part:
                used = _int(part.get("valueUnsignedInt", part.get("valueInteger"))) or 0
        part = sub_extension(ext, "numberOfRepeatPrescriptionsAllowed")
        if part and allowed is None:
            allowed = _int(part.get("valueUnsignedInt", part.get("valueInteger")))
        part = sub_extension(ext, "authorisationExpiryDate")
        if part:
            review = parse_date(part.get("valueDateTime") or part.get("valueDate"))
    return allowed, used, review


def parse_repeat_template(bundle: Json) -> list[RepeatItem]:
    """The patient's medication template: MedicationRequests with intent plan that are still in force."""
    index = ResourceIndex.of_bundle(bundle)
    requests = list(index.of_type("MedicationRequest"))
    last_issue: dict[str, dt.date] = {}
    for order in requests:
        if order.get("intent") != "order":
            continue
        issued = parse_date(order.get("authoredOn"))
        for based in as_list(order.get("basedOn")):
            key = ref_id(based)
            if issued and (key not in last_issue or issued > last_issue[key]):
                last_issue[key] = issued
    items: dict[str, RepeatItem] = {}
    for plan in requests:
        if plan.get("intent") != "plan" or text(plan.get("status")) in ("entered-in-error", "cancelled", "stopped"):
            continue
        rid = text(plan.get("id"))
        name, code = medication_name(plan, index)
        if not rid or not name or rid in items:
            continue
        allowed, used, review = _repeat_information(plan)
        controlled = bool(extensions(plan, "ControlledDrug"))
        medication = index.get(plan.get("medicationReference")) if plan.get("medicationReference") else None
        controlled = controlled or bool(medication and extensions(medication, "ControlledDrug"))
        items[rid] = RepeatItem(
            id=rid,
            name=name,
            dosage=_dosage(plan, "dosageInstruction"),
            quantity=_quantity(plan),
            prescription_type=_prescription_type(plan),
            code=code,
            last_issued=last_issue.get(rid),
            review_date=review,
            issues_allowed=allowed,
            issues_used=used,
            controlled_drug=controlled,
        )
    return list(items.values())


_TASK_STATUS = {
    "draft": RequestStatus.REQUESTED,
    "requested": RequestStatus.REQUESTED,
    "received": RequestStatus.REQUESTED,
    "ready": RequestStatus.REQUESTED,
    "accepted": RequestStatus.APPROVED,
    "in-progress": RequestStatus.APPROVED,
    "on-hold": RequestStatus.APPROVED,
    "rejected": RequestStatus.REJECTED,
    "failed": RequestStatus.REJECTED,
    "completed": RequestStatus.ISSUED,
    "cancelled": RequestStatus.CANCELLED,
    "entered-in-error": RequestStatus.CANCELLED,
}
_GROUP_PRIORITY = (
    RequestStatus.REQUESTED,
    RequestStatus.APPROVED,
    RequestStatus.ISSUED,
    RequestStatus.REJECTED,
    RequestStatus.CANCELLED,
)


def task_status(resource: Json) -> RequestStatus:
    """A Task's status as the patient's request status."""
    return _TASK_STATUS.get(text(resource.get("status")), RequestStatus.REQUESTED)


def task_group(resource: Json) -> str:
    """The request a Task belongs to: its groupIdentifier, else the Task itself."""
    return text(as_dict(resource.get("groupIdentifier")).get("value")) or text(resource.get("id"))


def _pharmacy(resource: Json) -> str:
    for item in as_list(resource.get("input")):
        item = as_dict(item)
        if concept_code(item.get("type")) == "preferred-performer":
            return text(as_dict(item.get("valueIdentifier")).get("value"))
    return text(as_dict(as_dict(resource.get("owner")).get("identifier")).get("value"))


def _is_collection_note(note: Any) -> bool:
    note = as_dict(note)
    return text(note.get("authorString")) == c.COLLECTION_NOTE_AUTHOR and text(note.get("text")) == (
        c.COLLECTION_SURGERY_NOTE
    )


def _patient_notes(task: Json) -> str:
    """The patient's own note on a Task: the gateway's collection note is not theirs to read back."""
    lines = (text(as_dict(n).get("text")) for n in as_list(task.get("note")) if not _is_collection_note(n))
    return "\n".join(line for line in lines if line)


def _collection(task: Json) -> Collection:
    """Where the patient collects it: the surgery when the gateway's collection note is there (see constants)."""
    if any(_is_collection_note(n) for n in as_list(task.get("note"))):
        return Collection.SURGERY
    return Collection.PHARMACY


def parse_tasks(bundle: Json) -> list[RepeatRequest]:
    """Repeat-prescription Tasks grouped into requests (one Task per item), newest first."""
    index = ResourceIndex.of_bundle(bundle)
    groups: dict[str, list[Json]] = {}
    for task in index.of_type("Task"):
        if concept_code(task.get("code")) not in ("", c.TASK_CODE_REPEAT):
            continue
        groups.setdefault(task_group(task), []).append(task)
    requests: list[RepeatRequest] = []
    for group_id, tasks in groups.items():
        statuses = {task_status(t) for t in tasks}
        live = statuses - {RequestStatus.CANCELLED} or statuses
        status = next(s for s in _GROUP_PRIORITY if s in live)
        names: list[str] = []
        for task in tasks:
            focus = as_dict(task.get("focus"))
            target = index.get(focus)
            name = medication_name(target, index)[0] if target else ""
            names.append(name or text(focus.get("display")).removeprefix("Repeat prescription for "))
        times = [t for t in (parse_datetime(task.get("authoredOn")) for task in tasks) if t is not None]
        reasons = [concept_text(t.get("statusReason")) for t in tasks if concept_text(t.get("statusReason"))]
        requests.append(
            RepeatRequest(
                id=group_id,
                item_ids=tuple(ref_id(t.get("focus")) for t in tasks),
                item_names=tuple(names),
                status=status,
                requested_at=min(times) if times else dt.datetime.min.replace(tzinfo=dt.UTC),
                note=next((_patient_notes(t) for t in tasks if _patient_notes(t)), ""),
                rejection_reason=reasons[0] if reasons and status is RequestStatus.REJECTED else "",
                pharmacy_ods=next((_pharmacy(t) for t in tasks if _pharmacy(t)), ""),
                collection=Collection.SURGERY
                if any(_collection(t) is Collection.SURGERY for t in tasks)
                else Collection.PHARMACY,
            )
        )
    return sorted(requests, key=lambda r: (r.requested_at, r.id), reverse=True)
