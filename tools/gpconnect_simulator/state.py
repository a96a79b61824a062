"""The simulator's provider state and rules: slots, appointments, records and repeat requests.

All state sits behind one lock. Methods return a ``Reply`` or raise ``SimError`` with the HTTP status
and Spine error code a GP Connect provider would send.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from patient_online.adapters.gpconnect import constants as c
from patient_online.domain.nhs_number import is_valid

from . import data
from . import resources as fhir

Json = dict[str, Any]
Params = dict[str, list[str]]
SLOT_DAYS_AHEAD = 42
# The longest range this provider accepts in "Retrieve a patient's appointments" (the specification sets none;
# real providers do, so the simulator refuses longer ones to keep consumers honest). Settable per state.
MAX_APPOINTMENT_SEARCH_DAYS = 366
# Whether the requesting practitioner's SDS user id and role profile id must be real (not "UNK"): the
# specification allows "UNK" for a user without a smartcard but forbids fixed values and generic system users.
REQUIRE_SMARTCARD_IDS = True
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LOCAL_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")


class SimError(Exception):
    """A GP Connect error response: HTTP status, Spine code, FHIR issue code and a diagnostic."""

    def __init__(self, status: int, spine_code: str, issue_code: str, diagnostics: str = "") -> None:
        super().__init__(f"{status} {spine_code}: {diagnostics}")
        self.status = status
        self.spine_code = spine_code
        self.issue_code = issue_code
        self.diagnostics = diagnostics

    def body(self) -> Json:
        return fhir.outcome(self.spine_code, self.issue_code, self.diagnostics)


def invalid(diagnostics: str, code: str = c.INVALID_RESOURCE) -> SimError:
    return SimError(422, code, "invalid", diagnostics)


@dataclass
class Reply:
    status: int
    body: Json
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SlotRecord:
    id: str
    schedule: data.Schedule
    start: dt.datetime
    end: dt.datetime
    channel: str
    status: str = "free"


@dataclass
class AppointmentRecord:
    resource: Json
    version: int
    patient_id: str
    slot_ids: list[str]


@dataclass(frozen=True)
class Seen:
    """One request the simulator received (no query string, so no patient data)."""

    method: str
    path: str
    interaction: str
    trace_id: str


@dataclass(frozen=True)
class Refusal:
    """One request the simulator refused, and why."""

    interaction: str
    status: int
    spine_code: str
    diagnostics: str


# Refusals that mean the consumer broke a rule of the specification (not "not found" or "already booked").
RULE_BROKEN = frozenset({c.BAD_REQUEST, c.INVALID_PARAMETER, c.INVALID_RESOURCE, c.INVALID_IDENTIFIER_SYSTEM})


def _when(value: str, upper: bool) -> dt.datetime:
    raw = value.strip().replace("Z", "+00:00").replace(" ", "+")
    try:
        if len(raw) == 10:
            day = dt.date.fromisoformat(raw)
            moment = dt.datetime.combine(day, dt.time.max if upper else dt.time.min, fhir.LONDON)
        else:
            moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise invalid(f"Cannot read date {value!r}", c.INVALID_PARAMETER) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=fhir.LONDON)
    return moment


def _prefixed(values: list[str], prefix: str) -> str | None:
    for value in values:
        if value.startswith(prefix):
            return value[len(prefix) :]
    return None


def _version_of(if_match: str) -> str:
    return if_match.strip().removeprefix("W/").strip('"')


def _ext(resource: Json, url: str) -> list[Json]:
    return [e for e in resource.get("extension", []) if isinstance(e, dict) and e.get("url") == url]


class SimulatorState:
    """A stateful GP Connect provider for one practice, safe to use from many threads."""

    def __init__(self, now: Callable[[], dt.datetime] | None = None, provider_asid: str = data.PROVIDER_ASID) -> None:
        self.lock = threading.RLock()
        self.now = now or (lambda: dt.datetime.now(dt.UTC))
        self.provider_asid = provider_asid
        self.reset()

    # ------------------------------------------------------------------ control

    def reset(self) -> None:
        """Back to the seeded state, with no delay and no failures."""
        with self.lock:
            self.delay = 0.0
            self.fail: str | None = None
            self.fail_count: int | None = None
            self.unsupported: set[str] = set()
            self.max_appointment_search_days = MAX_APPOINTMENT_SEARCH_DAYS
            self.reads: dict[str, int] = {}
            self.refusals: list[Refusal] = []
            self.require_smartcard_ids = REQUIRE_SMARTCARD_IDS
            self.seen: list[Seen] = []
            self.patients = {p.nhs_number: p for p in data.PATIENTS}
            self.patients_by_id = {p.id: p for p in data.PATIENTS}
            self.medicines = {m.id: (m, p) for p in data.PATIENTS for m in p.medicines}
            self.appointments: dict[str, AppointmentRecord] = {}
            self.tasks: dict[str, Json] = {}
            self.task_keys: dict[str, str] = {}
            self._next_appointment = 1
            self.slots: dict[str, SlotRecord] = {}
            self._seed_slots()

    def configure(
        self,
        *,
        delay: float | None = None,
        fail: str | None = None,
        fail_count: int | None = None,
        unsupported: list[str] | None = None,
    ) -> None:
        """Make the provider slow (``delay`` seconds) or failing ("500", "502", "drop"; ``fail_count`` times)."""
        with self.lock:
            if delay is not None:
                self.delay = float(delay)
            self.fail = fail or None
            self.fail_count = fail_count
            if unsupported is not None:
                self.unsupported = set(unsupported)

    def take_failure(self) -> str | None:
        """The failure to inflict on this request, if any (counting down ``fail_count``)."""
        with self.lock:
            if self.fail is None:
                return None
            if self.fail_count is not None:
                if self.fail_count <= 0:
                    self.fail = None
                    return None
                self.fail_count -= 1
            return self.fail

    def refuse(self, interaction: str, error: SimError) -> None:
        """Remember a refused request (no patient data: the interaction, status, code and diagnostic)."""
        with self.lock:
            self.refusals.append(Refusal(interaction, error.status, error.spine_code, error.diagnostics))

    def record(self, seen: Seen) -> None:
        with self.lock:
            self.seen.append(seen)

    def snapshot(self) -> Json:
        with self.lock:
            return {
                "delay": self.delay,
                "fail": self.fail,
                "fail_count": self.fail_count,
                "requests": len(self.seen),
                "appointments": len(self.appointments),
                "tasks": len(self.tasks),
            }

    # ------------------------------------------------------------------ patients

    def _patient_by_nhs(self, nhs: str) -> data.Patient:
        if not is_valid(nhs):
            raise SimError(400, c.INVALID_NHS_NUMBER, "value", "NHS number is not valid")
        found = self.patients.get(nhs)
        if found is None:
            raise SimError(404, c.PATIENT_NOT_FOUND, "not-found", "No patient with that NHS number")
        return found

    def find_patient(self, params: Params) -> Reply:
        values = params.get("identifier", [])
        if len(values) != 1 or "|" not in values[0]:
            raise invalid("identifier=<system>|<NHS number> is required", c.INVALID_PARAMETER)
        system, nhs = values[0].split("|", 1)
        if system != c.NHS_NUMBER_SYSTEM:
            raise invalid("Unknown identifier system", c.INVALID_IDENTIFIER_SYSTEM)
        if not is_valid(nhs):
            raise SimError(400, c.INVALID_NHS_NUMBER, "value", "NHS number is not valid")
        with self.lock:
            found = self.patients.get(nhs)
            return Reply(200, fhir.bundle([fhir.patient(found)] if found else []))

    # ------------------------------------------------------------------ slots

    def _seed_slots(self) -> None:
        today = self.now().astimezone(fhir.LONDON).date()
        counter = 1
        for offset in range(SLOT_DAYS_AHEAD + 1):
            day = today + dt.timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            for schedule in data.SCHEDULES:
                first = dt.datetime.combine(day, schedule.first, fhir.LONDON)
                for i in range(schedule.count):
                    start = first + dt.timedelta(minutes=schedule.minutes * i)
                    end = start + dt.timedelta(minutes=schedule.minutes)
                    channel = schedule.channels[i % len(schedule.channels)]
                    self.slots[str(counter)] = SlotRecord(str(counter), schedule, start, end, channel)
                    counter += 1

    def _horizon(self) -> tuple[dt.datetime, dt.datetime]:
        now = self.now()
        return now, now + dt.timedelta(days=SLOT_DAYS_AHEAD)

    def search_slots(self, params: Params) -> Reply:
        if params.get("status") != ["free"]:
            raise invalid("status=free is required, once", c.INVALID_PARAMETER)
        starts, ends = params.get("start", []), params.get("end", [])
        if len(starts) != 1 or len(ends) != 1:
            raise invalid("start and end must each be sent once", c.INVALID_PARAMETER)
        if not starts[0].startswith("ge") or not ends[0].startswith("le"):
            raise invalid("start=ge... and end=le... are required", c.INVALID_PARAMETER)
        ge, le = starts[0][2:], ends[0][2:]
        for value in (ge, le):
            if not (_DATE_ONLY.match(value) or _LOCAL_DATE_TIME.match(value.replace(" ", "+"))):
                raise invalid("start and end must be yyyy-mm-dd or yyyy-mm-ddThh:mm:ss+hh:mm", c.INVALID_PARAMETER)
        if "Slot:schedule" not in params.get("_include", []):
            raise invalid("_include=Slot:schedule is required", c.INVALID_PARAMETER)
        start, end = _when(ge, upper=False), _when(le, upper=True)
        if end < start:
            raise invalid("end is before start", c.INVALID_PARAMETER)
        if end - start > dt.timedelta(days=c.MAX_SLOT_WINDOW_DAYS):
            raise invalid("The search window must not be longer than 14 days", c.INVALID_PARAMETER)
        filters = params.get("searchFilter", [])
        if not any(f.startswith(c.ODS_SYSTEM + "|") and len(f) > len(c.ODS_SYSTEM) + 1 for f in filters):
            raise invalid("searchFilter with the booking organisation's ODS code is required", c.INVALID_PARAMETER)
        includes = set(params.get("_include", []))
        recurse = set(params.get("_include:recurse", []))
        with self.lock:
            matching = [s for s in self.slots.values() if s.status == "free" and s.start >= start and s.end <= end]
            schedules = {s.schedule.id: s.schedule for s in matching}
            included: list[Json] = []
            if "Slot:schedule" in includes:
                included += [fhir.schedule(s, self._horizon()) for s in schedules.values()]
                if "Schedule:actor:Practitioner" in recurse:
                    clinicians = {s.clinician.id: s.clinician for s in schedules.values()}
                    included += [fhir.practitioner(p) for p in clinicians.values()]
                if "Schedule:actor:Location" in recurse and schedules:
                    included.append(fhir.location())
                    if "Location:managingOrganization" in recurse:
                        included.append(fhir.organization())
            slots = [fhir.slot(s.id, s.schedule, s.start, s.end, s.channel, s.status) for s in reversed(matching)]
        return Reply(200, fhir.bundle(included + slots))

    # ------------------------------------------------------------------ appointments

    def _enrich(self, resource: Json, slots: list[SlotRecord]) -> None:
        first = slots[0]
        who = first.schedule.clinician
        resource["serviceCategory"] = {"text": first.schedule.category}
        resource["serviceType"] = [{"text": first.schedule.service_type}]
        extensions = [
            e
            for e in resource.get("extension", [])
            if e.get("url") not in (c.EXT_DELIVERY_CHANNEL, c.EXT_PRACTITIONER_ROLE)
        ]
        extensions += [fhir.role_extension(who), {"url": c.EXT_DELIVERY_CHANNEL, "valueCode": first.channel}]
        resource["extension"] = extensions
        refs = {p.get("actor", {}).get("reference") for p in resource.get("participant", [])}
        for ref in (f"Practitioner/{who.id}", f"Location/{data.LOCATION_ID}"):
            if ref not in refs:
                resource.setdefault("participant", []).append({"actor": {"reference": ref}, "status": "accepted"})

    def book(self, body: Json) -> Reply:
        if body.get("resourceType") != "Appointment":
            raise invalid("Body must be an Appointment")
        if body.get("id"):
            raise invalid("A new Appointment must not have an id")
        booking = _ext(body, c.EXT_BOOKING_ORG)
        contained = {f"#{r.get('id')}": r for r in body.get("contained", []) if isinstance(r, dict)}
        org = contained.get(booking[0].get("valueReference", {}).get("reference", "")) if booking else None
        if not org or not any(i.get("system") == c.ODS_SYSTEM for i in org.get("identifier", [])):
            raise invalid("The booking organisation extension and its contained Organization are required")
        if body.get("status") != "booked":
            raise invalid("status must be booked")
        if len(body.get("description") or "") > c.DESCRIPTION_MAX:
            raise invalid("description must be at most 100 characters")
        if len(body.get("comment") or "") > c.COMMENT_MAX:
            raise invalid("comment must be at most 500 characters")
        patient_refs = [
            p["actor"]["reference"].split("/", 1)[1]
            for p in body.get("participant", [])
            if str(p.get("actor", {}).get("reference", "")).startswith("Patient/")
        ]
        if len(patient_refs) != 1:
            raise invalid("Exactly one Patient participant is required")
        slot_ids = [str(s.get("reference", "")).rsplit("/", 1)[-1] for s in body.get("slot", [])]
        try:
            start = dt.datetime.fromisoformat(str(body["start"]))
            end = dt.datetime.fromisoformat(str(body["end"]))
        except (KeyError, ValueError):
            raise invalid("start and end are required") from None
        with self.lock:
            if patient_refs[0] not in self.patients_by_id:
                raise SimError(404, c.PATIENT_NOT_FOUND, "not-found", "Unknown patient")
            if not slot_ids or any(i not in self.slots for i in slot_ids):
                raise invalid("Unknown slot", c.REFERENCE_NOT_FOUND)
            slots = sorted((self.slots[i] for i in slot_ids), key=lambda s: s.start)
            if start != slots[0].start or end != slots[-1].end:
                raise invalid("start and end must match the booked slots")
            if start <= self.now():
                raise invalid("Appointments can only be booked in the future")
            if any(s.status != "free" for s in slots):
                raise SimError(409, c.DUPLICATE_REJECTED, "duplicate", "Slot already booked")
            appointment_id = str(self._next_appointment)
            self._next_appointment += 1
            resource = copy.deepcopy(body)
            resource["id"] = appointment_id
            resource["meta"] = {"versionId": "1", "profile": body.get("meta", {}).get("profile", [])}
            resource.setdefault("created", fhir.local(self.now()))
            self._enrich(resource, slots)
            for s in slots:
                s.status = "busy"
            self.appointments[appointment_id] = AppointmentRecord(resource, 1, patient_refs[0], slot_ids)
            return Reply(201, copy.deepcopy(resource), {"ETag": 'W/"1"', "Location": f"Appointment/{appointment_id}"})

    def read_appointment(self, appointment_id: str) -> Reply:
        with self.lock:
            found = self.appointments.get(appointment_id)
            if found is None:
                raise SimError(404, c.NO_RECORD_FOUND, "not-found", "No such appointment")
            return Reply(200, copy.deepcopy(found.resource), {"ETag": f'W/"{found.version}"'})

    @staticmethod
    def _comparable(resource: Json) -> Json:
        stripped = copy.deepcopy(resource)
        stripped.pop("meta", None)
        stripped.pop("status", None)
        stripped["extension"] = [e for e in stripped.get("extension", []) if e.get("url") != c.EXT_CANCELLATION_REASON]
        return stripped

    def cancel_appointment(self, appointment_id: str, body: Json, if_match: str | None) -> Reply:
        with self.lock:
            found = self.appointments.get(appointment_id)
            if found is None:
                raise SimError(404, c.NO_RECORD_FOUND, "not-found", "No such appointment")
            if body.get("resourceType") != "Appointment" or str(body.get("id")) != appointment_id:
                raise invalid("The body must be the Appointment being cancelled")
            if if_match is not None and _version_of(if_match) != str(found.version):
                raise SimError(409, c.FHIR_CONSTRAINT_VIOLATION, "conflict", "Version does not match (If-Match)")
            if body.get("status") != "cancelled":
                raise invalid("status must be cancelled")
            reasons = _ext(body, c.EXT_CANCELLATION_REASON)
            if len(reasons) != 1 or not str(reasons[0].get("valueString", "")).strip():
                raise invalid("A cancellation reason is required")
            if found.resource.get("status") == "cancelled":
                raise invalid("The appointment is already cancelled")
            if dt.datetime.fromisoformat(str(found.resource["start"])) <= self.now():
                raise invalid("Appointments in the past cannot be cancelled")
            if self._comparable(body) != self._comparable(found.resource):
                raise invalid("Only the status and the cancellation reason may change when cancelling")
            found.version += 1
            resource = found.resource
            resource["status"] = "cancelled"
            resource["extension"] = [*self._comparable(resource)["extension"], reasons[0]]
            resource["meta"]["versionId"] = str(found.version)
            for slot_id in found.slot_ids:
                self.slots[slot_id].status = "free"
            return Reply(200, copy.deepcopy(resource), {"ETag": f'W/"{found.version}"'})

    def _appointment_range(self, params: Params) -> tuple[dt.datetime, dt.datetime]:
        """The ``start=ge<date>&start=le<date>`` range of an appointment search, as the specification requires."""
        unknown = sorted(k for k in params if k not in ("start", "_format"))
        if unknown:
            raise invalid(f"Unsupported search parameter {unknown[0]}", c.INVALID_PARAMETER)
        starts = params.get("start", [])
        if len(starts) != 2:
            raise invalid("Two start parameters are required: start=ge<date> and start=le<date>", c.INVALID_PARAMETER)
        ge = [v[2:] for v in starts if v.startswith("ge")]
        le = [v[2:] for v in starts if v.startswith("le")]
        if len(ge) != 1 or len(le) != 1:
            raise invalid("One start parameter must use the ge prefix and the other le", c.INVALID_PARAMETER)
        for value in (ge[0], le[0]):
            if not _DATE_ONLY.match(value):
                raise invalid("start must be a date (yyyy-mm-dd) without a time", c.INVALID_PARAMETER)
        try:
            lower, upper = dt.date.fromisoformat(ge[0]), dt.date.fromisoformat(le[0])
        except ValueError:
            raise invalid("start is not a valid date", c.INVALID_PARAMETER) from None
        today = self.now().astimezone(fhir.LONDON).date()
        if lower < today or upper < today:
            raise invalid("The search range cannot request appointments in the past", c.INVALID_PARAMETER)
        if upper < lower:
            raise invalid("The upper start date is before the lower one", c.INVALID_PARAMETER)
        if (upper - lower).days > self.max_appointment_search_days:
            raise invalid(
                f"The search range must not be longer than {self.max_appointment_search_days} days",
                c.INVALID_PARAMETER,
            )
        return (
            dt.datetime.combine(lower, dt.time.min, fhir.LONDON),
            dt.datetime.combine(upper, dt.time.max, fhir.LONDON),
        )

    def patient_appointments(self, patient_id: str, params: Params) -> Reply:
        lower, upper = self._appointment_range(params)
        with self.lock:
            if patient_id not in self.patients_by_id:
                raise SimError(404, c.NO_RECORD_FOUND, "not-found", "No patient with that logical id")
            found: list[Json] = []
            for record in self.appointments.values():
                start = dt.datetime.fromisoformat(str(record.resource["start"]))
                if record.patient_id != patient_id:
                    continue
                if start < lower or start > upper:
                    continue
                found.append(copy.deepcopy(record.resource))
        # As a real provider does: Practitioner and Location are referenced, not included.
        return Reply(200, fhir.bundle(found))

    def amend_appointment(self, appointment_id: str, body: Json, if_match: str | None) -> Reply:
        """Appointment Management "amend": only ``description`` and ``comment`` may change."""
        with self.lock:
            found = self.appointments.get(appointment_id)
            if found is None:
                raise SimError(404, c.NO_RECORD_FOUND, "not-found", "No such appointment")
            if body.get("resourceType") != "Appointment" or str(body.get("id")) != appointment_id:
                raise invalid("The body must be the Appointment being amended")
            if not if_match:
                raise SimError(400, c.BAD_REQUEST, "invalid", "If-Match with the Appointment's version is required")
            if _version_of(if_match) != str(found.version):
                raise SimError(409, c.FHIR_CONSTRAINT_VIOLATION, "conflict", "Version does not match (If-Match)")
            if found.resource.get("status") == "cancelled":
                raise invalid("A cancelled appointment cannot be amended")
            if dt.datetime.fromisoformat(str(found.resource["start"])) <= self.now():
                raise invalid("Appointments in the past cannot be amended")
            if len(str(body.get("description") or "")) > c.DESCRIPTION_MAX:
                raise invalid("description must be at most 100 characters")
            if len(str(body.get("comment") or "")) > c.COMMENT_MAX:
                raise invalid("comment must be at most 500 characters")
            changeable = ("meta", "description", "comment")
            before = {k: v for k, v in found.resource.items() if k not in changeable}
            after = {k: v for k, v in body.items() if k not in changeable}
            if before != after:
                raise invalid("Only the description and the comment of an appointment may be amended")
            found.version += 1
            resource = found.resource
            for name in ("description", "comment"):
                if body.get(name):
                    resource[name] = body[name]
                else:
                    resource.pop(name, None)
            resource["meta"]["versionId"] = str(found.version)
            return Reply(200, copy.deepcopy(resource), {"ETag": f'W/"{found.version}"'})

    # ------------------------------------------------------------------ practitioners, locations, organisations

    def read_reference(self, kind: str, logical_id: str) -> Reply:
        """Read a Practitioner, Location or Organization of this practice."""
        with self.lock:
            self.reads[kind] = self.reads.get(kind, 0) + 1
        resource: Json | None = None
        if kind == "Practitioner":
            clinicians = {s.clinician.id: s.clinician for s in data.SCHEDULES} | {data.KHAN.id: data.KHAN}
            who = clinicians.get(logical_id)
            resource = fhir.practitioner(who) if who else None
        elif kind == "Location" and logical_id == data.LOCATION_ID:
            resource = fhir.location()
        elif kind == "Organization" and logical_id == data.ORGANIZATION_ID:
            resource = fhir.organization()
        if resource is None:
            raise SimError(404, c.NO_RECORD_FOUND, "not-found", f"No such {kind}")
        return Reply(200, resource, {"ETag": 'W/"1"'})

    # ------------------------------------------------------------------ structured record

    def structured_record(self, body: Json) -> Reply:
        if body.get("resourceType") != "Parameters":
            raise invalid("Body must be Parameters", c.INVALID_PARAMETER)
        parameters = [p for p in body.get("parameter", []) if isinstance(p, dict)]
        nhs_params = [p for p in parameters if p.get("name") == c.PARAM_NHS_NUMBER]
        if len(nhs_params) != 1:
            raise invalid("patientNHSNumber is required once", c.INVALID_PARAMETER)
        identifier = nhs_params[0].get("valueIdentifier", {})
        if identifier.get("system") != c.NHS_NUMBER_SYSTEM:
            raise invalid("Unknown identifier system", c.INVALID_IDENTIFIER_SYSTEM)
        kinds: list[str] = []
        unsupported: list[str] = []
        for param in parameters:
            name = str(param.get("name"))
            if name == c.PARAM_NHS_NUMBER:
                continue
            if name not in fhir.PARAM_KINDS:
                raise invalid(f"Unknown parameter {name}", c.INVALID_PARAMETER)
            parts = {str(p.get("name")): p for p in param.get("part", []) if isinstance(p, dict)}
            if name == c.PARAM_ALLERGIES and not isinstance(
                parts.get("includeResolvedAllergies", {}).get("valueBoolean"), bool
            ):
                raise invalid("includeAllergies needs its includeResolvedAllergies part", c.INVALID_PARAMETER)
            if name in self.unsupported:
                unsupported.append(name)
            else:
                kinds.append(fhir.PARAM_KINDS[name])
        with self.lock:
            patient = self._patient_by_nhs(str(identifier.get("value", "")))
        if not patient.consent:
            raise SimError(403, c.NO_PATIENT_CONSENT, "forbidden", "Patient has dissented to sharing")
        resources: list[Json] = [fhir.patient(patient), fhir.organization(), *map(fhir.practitioner, (data.KHAN,))]
        for kind in dict.fromkeys(kinds):
            entries = [e for e in patient.record if e.kind == kind]
            resources.append(fhir.section_list(kind, entries, patient.warnings.get(kind, ()), patient.id))
            for entry in entries:
                resources += fhir.clinical(entry, patient.id)
        for name in unsupported:
            outcome = fhir.outcome(c.NOT_IMPLEMENTED, "not-supported", name, severity="warning")
            resources.append(outcome)
        return Reply(200, fhir.bundle(resources, kind="collection"))

    # ------------------------------------------------------------------ repeat medication

    def medication_requests(self, nhs: str, params: Params) -> Reply:
        with self.lock:
            patient = self._patient_by_nhs(nhs)
        intent = params.get("intent", [])
        found = [fhir.medication_request(m, patient) for m in patient.medicines if not intent or "plan" in intent]
        return Reply(200, fhir.bundle(found))

    def _task_patient(self, task: Json) -> data.Patient:
        nhs = str(task.get("for", {}).get("identifier", {}).get("value") or "")
        if not nhs:
            nhs = str(task.get("for", {}).get("reference", "")).rsplit("/", 1)[-1]
        patient = self.patients.get(nhs)
        if patient is None:
            raise invalid("for reference to Patient not valid", c.REFERENCE_NOT_FOUND)
        return patient

    def create_task(self, body: Json, request_id: str) -> Reply:
        if body.get("resourceType") != "Task":
            raise invalid("Body must be a Task")
        codes = [x.get("code") for x in body.get("code", {}).get("coding", [])]
        if c.TASK_CODE_REPEAT not in codes:
            raise invalid("Task.code must be 103742009 (repeat prescription request)")
        if body.get("intent") != "order" or body.get("status") != "requested":
            raise invalid("A new request has intent order and status requested")
        focus = str(body.get("focus", {}).get("reference", ""))
        if not focus.startswith("MedicationRequest/"):
            raise invalid("Task missing required focus reference")
        keys = [f"{i.get('system')}|{i.get('value')}" for i in body.get("identifier", []) if isinstance(i, dict)]
        with self.lock:
            for key in [*keys, f"request|{request_id}"]:
                if key in self.task_keys:
                    return Reply(200, copy.deepcopy(self.tasks[self.task_keys[key]]))
            patient = self._task_patient(body)
            medicine = self.medicines.get(focus.split("/", 1)[1])
            if medicine is None or medicine[1].nhs_number != patient.nhs_number:
                raise invalid("focus reference to MedicationRequest not valid", c.REFERENCE_NOT_FOUND)
            task = copy.deepcopy(body)
            task["id"] = str(uuid.uuid4())
            task["meta"] = {"versionId": "1", **{k: v for k, v in body.get("meta", {}).items() if k == "profile"}}
            task["focus"] = {"reference": focus, "display": f"Repeat prescription for {medicine[0].name}"}
            stamp = fhir.local(self.now())
            task.setdefault("authoredOn", stamp)
            task["lastModified"] = stamp
            self.tasks[task["id"]] = task
            for key in [*keys, f"request|{request_id}"]:
                self.task_keys[key] = task["id"]
            return Reply(201, copy.deepcopy(task), {"Location": f"Task/{task['id']}"})

    def search_tasks(self, params: Params) -> Reply:
        nhs = (params.get("patient") or [""])[0]
        if not nhs:
            raise SimError(400, c.BAD_REQUEST, "invalid", "patient is required")
        with self.lock:
            self._patient_by_nhs(nhs)
            tasks = [copy.deepcopy(t) for t in self.tasks.values() if self._task_patient(t).nhs_number == nhs]
        wanted_id, wanted_status = params.get("id"), params.get("status")
        tasks = [t for t in tasks if (not wanted_id or t["id"] in wanted_id)]
        tasks = [t for t in tasks if (not wanted_status or t["status"] in wanted_status)]
        tasks.sort(key=lambda t: str(t.get("authoredOn")), reverse=True)
        included: list[Json] = []
        if "Task:focus:MedicationRequest" in params.get("_include", []):
            ids = dict.fromkeys(t["focus"]["reference"].split("/", 1)[1] for t in tasks)
            with self.lock:
                included = [fhir.medication_request(*self.medicines[i]) for i in ids if i in self.medicines]
        return Reply(200, fhir.bundle(tasks + included))

    def update_task(self, task_id: str, body: Json) -> Reply:
        with self.lock:
            current = self.tasks.get(task_id)
            if current is None:
                raise SimError(404, c.NO_RECORD_FOUND, "not-found", "No such Task")
            if body.get("resourceType") != "Task" or body.get("id") != task_id:
                raise invalid("The body must be the Task being updated")
            if body.get("status") != "cancelled":
                raise invalid("Patients may only cancel a request")
            if current.get("status") != "requested":
                raise SimError(409, c.FHIR_CONSTRAINT_VIOLATION, "business-rule", "The request is already in progress")
            allowed = {"status", "lastModified", "meta", "statusReason", "businessStatus"}
            before = {k: v for k, v in current.items() if k not in allowed}
            after = {k: v for k, v in body.items() if k not in allowed}
            if before != after:
                raise invalid("Only the status of a request may change")
            current["status"] = "cancelled"
            current["lastModified"] = fhir.local(self.now())
            current["meta"]["versionId"] = str(int(current["meta"].get("versionId", "1")) + 1)
            return Reply(200, copy.deepcopy(current))

    def set_task_status(self, request_id: str, status: str, reason: str = "") -> None:
        """Move every Task of a request (group id or Task id) on, as the practice would."""
        with self.lock:
            for task in self.tasks.values():
                if task["id"] == request_id or task.get("groupIdentifier", {}).get("value") == request_id:
                    task["status"] = status
                    if reason:
                        task["statusReason"] = {"text": reason}
