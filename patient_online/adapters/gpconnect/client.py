"""GPConnectClinicalSystem: the ClinicalSystem port over GP Connect FHIR (one instance per practice link).

Appointments use Appointment Management 1.2.x, the record uses Access Record: Structured 1.6, repeat
medication uses the patient-facing Prescriptions Management API (MedicationRequest plans, Task requests).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TypeVar

import httpx

from patient_online.domain.appointments import REASON_MAX_LENGTH, Appointment, AppointmentStatus, Slot, SlotQuery
from patient_online.domain.errors import (
    AlreadyBooked,
    ClinicalSystemError,
    ClinicalSystemUnavailable,
    NotAllowed,
    NotFound,
    PatientNotFound,
    SlotGone,
    SlotUnavailable,
    StaleVersion,
)
from patient_online.domain.patients import Demographics, PatientRef
from patient_online.domain.ports import LinkState
from patient_online.domain.prescriptions import Collection, RepeatItem, RepeatRequest, RequestStatus
from patient_online.domain.record import RecordExtract, RecordNotice, Section

from . import constants as c
from .constants import Interaction
from .errors import ProviderRejected
from .fhir_parse import (
    Json,
    ResourceIndex,
    appointment_patient_id,
    as_dict,
    as_list,
    clinician_of,
    parse_appointment,
    parse_patient_search,
    parse_repeat_template,
    parse_slots,
    parse_structured_record,
    parse_tasks,
    ref_key,
    task_group,
    task_status,
    text,
)
from .http import Endpoint, GPConnectHttp
from .windows import LONDON, appointment_search_dates, london_iso, split_window

T = TypeVar("T")
# Told when the provider's logical id of a patient is found to differ from the one the gateway held:
# (practice ODS code, NHS number, new logical id). The service layer stores it (``services/system_ids.py``).
PatientIdListener = Callable[[str, str, str], None]
# Errors a provider answers with when a request names a patient's logical id it does not know (404 on the
# patient's URL, 422 INVALID_RESOURCE / REFERENCE_NOT_FOUND on a reference in a body).
_UNKNOWN_PATIENT = (NotFound, PatientNotFound, ProviderRejected, SlotGone)
_REFERENCE_INTERACTIONS = {
    "Practitioner": Interaction.READ_PRACTITIONER,
    "Location": Interaction.READ_LOCATION,
    "Organization": Interaction.READ_ORGANIZATION,
}

SECTION_PARAMS: dict[Section, Json] = {
    Section.ALLERGIES: {
        "name": c.PARAM_ALLERGIES,
        "part": [{"name": "includeResolvedAllergies", "valueBoolean": True}],
    },
    Section.MEDICATIONS: {
        "name": c.PARAM_MEDICATION,
        "part": [{"name": "includePrescriptionIssues", "valueBoolean": False}],
    },
    Section.PROBLEMS: {"name": c.PARAM_PROBLEMS},
    Section.IMMUNISATIONS: {"name": c.PARAM_IMMUNISATIONS},
    Section.TEST_RESULTS: {"name": c.PARAM_INVESTIGATIONS},
    Section.CONSULTATIONS: {"name": c.PARAM_CONSULTATIONS},
}
_IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c6d1e-2b7a-4f7e-9a51-6c0e8f3b9d42")
_SLOT_CACHE_SIZE = 5000
_SLOT_LOOKAHEAD_DAYS = 42


def _bundle(resources: Sequence[Json]) -> Json:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


class GPConnectClinicalSystem:
    """One practice's clinical system reached over GP Connect."""

    name = "gpconnect"

    def __init__(
        self,
        endpoint: Endpoint,
        practice_ods: str,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        appointment_days: int = c.APPOINTMENT_SEARCH_DAYS,
        reference_seconds: float = c.REFERENCE_CACHE_SECONDS,
        on_patient_id: PatientIdListener | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self.practice_ods = practice_ods
        self.http = GPConnectHttp(endpoint, transport)
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._slots: OrderedDict[str, Slot] = OrderedDict()
        self._slots_lock = threading.Lock()
        self.appointment_days = appointment_days
        self.on_patient_id = on_patient_id
        # Practitioner, Location and Organization resources of this practice's system: not personal data of a
        # patient, so shared by every request to this practice for a short while.
        self._reference_seconds = reference_seconds
        self._monotonic = monotonic
        self._references: dict[str, tuple[float, Json | None]] = {}
        self._references_lock = threading.Lock()
        # Logical ids found again after the provider did not know the one the gateway held (NHS number -> id),
        # used until the service layer has stored them on the patient.
        self._found_ids: dict[str, str] = {}
        self._found_ids_lock = threading.Lock()

    @property
    def system_key(self) -> str:
        """Which system a stored logical id belongs to: the adapter's name and the provider's base URL."""
        return f"{self.name}:{self.endpoint.base_url.rstrip('/')}"

    def close(self) -> None:
        """Release the HTTP connections."""
        self.http.close()

    # ------------------------------------------------------------------ demographics

    def find_patient(self, nhs_number: str) -> Demographics | None:
        """The patient with this NHS number registered at the practice, or None."""
        try:
            reply = self.http.call(
                "GET",
                "/Patient",
                Interaction.SEARCH_PATIENT,
                params=[("identifier", f"{c.NHS_NUMBER_SYSTEM}|{nhs_number}")],
            )
        except PatientNotFound:
            return None
        return parse_patient_search(reply.body, self.practice_ods, nhs_number)

    # ------------------------------------------------------------------ the patient's logical id

    def _patient_id(self, patient: PatientRef) -> str:
        with self._found_ids_lock:
            found = self._found_ids.get(patient.nhs_number)
        return found or patient.clinical_id

    def _find_id_again(self, patient: PatientRef) -> str:
        """The provider's logical id for the patient, looked up by NHS number; PatientNotFound when unknown."""
        found = self.find_patient(patient.nhs_number)
        if found is None or not found.ref.clinical_id:
            raise PatientNotFound()
        logical_id = found.ref.clinical_id
        with self._found_ids_lock:
            self._found_ids[patient.nhs_number] = logical_id
        if logical_id != patient.clinical_id and self.on_patient_id is not None:
            self.on_patient_id(self.practice_ods, patient.nhs_number, logical_id)
        return logical_id

    def _as_patient(self, patient: PatientRef, call: Callable[[str], T]) -> T:
        """Run a request naming the patient's logical id; when the provider does not know that id, find the
        patient again by NHS number and, if the id has changed, try once more with the new one."""
        current = self._patient_id(patient)
        if not current:
            current = self._find_id_again(patient)
        try:
            return call(current)
        except _UNKNOWN_PATIENT:
            fresh = self._find_id_again(patient)
            if fresh == current:
                raise
        return call(fresh)

    # ------------------------------------------------------------------ referenced resources

    def _reference(self, reference: str) -> Json | None:
        """A Practitioner, Location or Organization the provider referenced without including it (read once,
        then kept for a short while); None when it cannot be read."""
        kind, _, logical_id = ref_key(reference).partition("/")
        interaction = _REFERENCE_INTERACTIONS.get(kind)
        if interaction is None or not logical_id:
            return None
        key = f"{kind}/{logical_id}"
        now = self._monotonic()
        with self._references_lock:
            cached = self._references.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            resource: Json | None = self.http.call("GET", f"/{key}", interaction).body
        except ClinicalSystemUnavailable:
            raise
        except (ClinicalSystemError, NotFound):  # unknown or refused: shown without it, asked again later
            resource = None
        with self._references_lock:
            self._references[key] = (now + self._reference_seconds, resource)
        return resource

    def _place(self, reference: str) -> str:
        """The name of a referenced Location (or, failing that, of the Organization that manages it)."""
        location = self._reference(reference) or {}
        name = text(location.get("name"))
        if not name and location.get("managingOrganization"):
            organisation = self._reference(text(as_dict(location["managingOrganization"]).get("reference")))
            name = text((organisation or {}).get("name"))
        return name

    def _fill_slot(self, slot: Slot, practitioner_ref: str, location_ref: str) -> Slot:
        """The slot with its clinician and place read from the provider when the response only referenced them."""
        clinician, location = slot.clinician, slot.location
        if practitioner_ref and not (clinician.id and clinician.name.strip()):
            practitioner = self._reference(practitioner_ref)
            if practitioner is not None:
                clinician = clinician_of(practitioner, clinician.role)
        if location_ref and not location:
            location = self._place(location_ref)
        if clinician == slot.clinician and location == slot.location:
            return slot
        return dataclasses.replace(slot, clinician=clinician, location=location)

    @staticmethod
    def _actors(references: Sequence[object]) -> tuple[str, str]:
        practitioner = location = ""
        for actor in references:
            key = ref_key(actor)
            if key.startswith("Practitioner/") and not practitioner:
                practitioner = key
            elif key.startswith("Location/") and not location:
                location = key
        return practitioner, location

    def _resolve_slots(self, bundle: Json, slots: list[Slot]) -> list[Slot]:
        index = ResourceIndex.of_bundle(bundle)
        schedule_of = {text(r.get("id")): index.get(r.get("schedule")) or {} for r in index.of_type("Slot")}
        resolved = []
        for slot in slots:
            schedule = schedule_of.get(slot.id) or {}
            practitioner, location = self._actors(as_list(schedule.get("actor")))
            present = {k for k in (practitioner, location) if k and index.get(k) is not None}
            resolved.append(
                self._fill_slot(
                    slot,
                    practitioner if practitioner not in present else "",
                    location if location not in present else "",
                )
            )
        return resolved

    def _resolve_appointment(self, appointment: Appointment, resource: Json, index: ResourceIndex) -> Appointment:
        actors = [as_dict(p).get("actor") for p in as_list(resource.get("participant"))]
        practitioner, location = self._actors(actors)
        practitioner = practitioner if practitioner and index.get(practitioner) is None else ""
        location = location if location and index.get(location) is None else ""
        slot = self._fill_slot(appointment.slot, practitioner, location)
        return appointment if slot is appointment.slot else dataclasses.replace(appointment, slot=slot)

    def _appointment(self, resource: Json, known_slot: Slot | None = None) -> Appointment:
        parsed = parse_appointment(resource, known_slot=known_slot)
        return self._resolve_appointment(parsed, resource, ResourceIndex([resource]))

    # ------------------------------------------------------------------ appointments

    def _remember(self, slots: Sequence[Slot]) -> None:
        with self._slots_lock:
            for slot in slots:
                self._slots[slot.id] = slot
                self._slots.move_to_end(slot.id)
            while len(self._slots) > _SLOT_CACHE_SIZE:
                self._slots.popitem(last=False)

    def _search_window(self, start: dt.datetime, end: dt.datetime) -> list[Slot]:
        params = [
            ("status", "free"),
            ("start", "ge" + london_iso(start)),
            ("end", "le" + london_iso(end)),
            ("_include", "Slot:schedule"),
            ("_include:recurse", "Schedule:actor:Practitioner"),
            ("_include:recurse", "Schedule:actor:Location"),
            ("searchFilter", f"{c.ODS_SYSTEM}|{self.endpoint.consumer_ods}"),
            ("searchFilter", f"{c.ORG_TYPE_SYSTEM}|gp-practice"),
        ]
        reply = self.http.call("GET", "/Slot", Interaction.SEARCH_SLOTS, params=params)
        return self._resolve_slots(reply.body, parse_slots(reply.body))

    def search_slots(self, query: SlotQuery) -> list[Slot]:
        """Free slots matching the query, soonest first; windows over 14 days are split into several searches."""
        wanted_types = {t.casefold() for t in query.slot_types}
        found: dict[str, Slot] = {}
        for start, end in split_window(query.start, query.end):
            slots = self._search_window(start, end)
            self._remember(slots)
            for slot in slots:
                if slot.start < query.start or slot.end > query.end:
                    continue
                if wanted_types and slot.slot_type.casefold() not in wanted_types:
                    continue
                if query.clinician_id and slot.clinician.id != query.clinician_id:
                    continue
                if query.delivery_mode and slot.delivery_mode != query.delivery_mode:
                    continue
                found[slot.id] = slot
        return sorted(found.values(), key=lambda s: (s.start, s.id))

    def _slot(self, slot_id: str) -> Slot:
        with self._slots_lock:
            cached = self._slots.get(slot_id)
        if cached is not None:
            return cached
        now = self._clock()
        for start, end in split_window(now, now + dt.timedelta(days=_SLOT_LOOKAHEAD_DAYS)):
            slots = self._search_window(start, end)
            self._remember(slots)
            for slot in slots:
                if slot.id == slot_id:
                    return slot
        raise SlotUnavailable()

    def _appointment_body(self, patient_id: str, slot: Slot, reason: str) -> Json:
        participants: list[Json] = [{"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"}]
        if slot.clinician.id:
            participants.append({"actor": {"reference": f"Practitioner/{slot.clinician.id}"}, "status": "accepted"})
        description = " ".join(reason.split())[:REASON_MAX_LENGTH] or "Booked online"
        return {
            "resourceType": "Appointment",
            "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Appointment-1"]},
            "contained": [
                {
                    "resourceType": "Organization",
                    "id": "1",
                    "identifier": [{"system": c.ODS_SYSTEM, "value": self.endpoint.consumer_ods}],
                    "type": [{"coding": [{"system": c.ORG_TYPE_SYSTEM, "code": "gp-practice"}]}],
                    "name": self.endpoint.requester.organisation_name,
                }
            ],
            "extension": [{"url": c.EXT_BOOKING_ORG, "valueReference": {"reference": "#1"}}],
            "status": "booked",
            "description": description,
            "start": london_iso(slot.start),
            "end": london_iso(slot.end),
            "slot": [{"reference": f"Slot/{slot.id}"}],
            "created": london_iso(self._clock()),
            "comment": "Booked online by the patient through the Patient Online gateway."[: c.COMMENT_MAX],
            "participant": participants,
        }

    def book(self, patient: PatientRef, slot_id: str, reason: str, idempotency_key: str) -> Appointment:
        """Book the slot; a retry after the booking went through returns the same appointment."""
        try:
            slot = self._slot(slot_id)

            def create(patient_id: str) -> Json:
                body = self._appointment_body(patient_id, slot, reason)
                return self.http.call("POST", "/Appointment", Interaction.CREATE_APPOINTMENT, body=body).body

            created = self._as_patient(patient, create)
        except SlotUnavailable:
            for appointment in self.list_appointments(patient, self._clock()):
                if appointment.slot.id == slot_id and appointment.status == AppointmentStatus.BOOKED:
                    return appointment  # our own earlier attempt took the slot
            raise
        return self._appointment(created, known_slot=slot)

    def _read_own(self, patient: PatientRef, appointment_id: str) -> tuple[Json, str]:
        """The appointment as the provider holds it and its version; NotFound when it is not this patient's."""
        try:
            reply = self.http.call("GET", f"/Appointment/{appointment_id}", Interaction.READ_APPOINTMENT)
        except PatientNotFound:  # 404 NO_RECORD_FOUND: no such appointment
            raise NotFound() from None
        current = reply.body
        owner = appointment_patient_id(current)
        if not owner:
            raise NotFound()
        if owner not in (self._patient_id(patient), patient.clinical_id):
            try:
                fresh = self._find_id_again(patient)  # the id held may be out of date
            except PatientNotFound:
                raise NotFound() from None
            if owner != fresh:
                raise NotFound()
        version = text(as_dict(current.get("meta")).get("versionId")) or reply.etag.removeprefix('W/"').strip('"')
        return current, version

    def cancel(self, patient: PatientRef, appointment_id: str, reason: str) -> Appointment:
        """Cancel the appointment: read it, then PUT it back with If-Match, cancelled, nothing else changed."""
        current, version = self._read_own(patient, appointment_id)
        if current.get("status") == "cancelled":
            return self._appointment(current)
        updated: Json = copy.deepcopy(current)
        updated["status"] = "cancelled"
        kept = [e for e in updated.get("extension", []) if e.get("url") != c.EXT_CANCELLATION_REASON]
        words = " ".join(reason.split())[: c.COMMENT_MAX] or "Cancelled online by the patient"
        updated["extension"] = [*kept, {"url": c.EXT_CANCELLATION_REASON, "valueString": words}]
        result = self.http.call(
            "PUT",
            f"/Appointment/{appointment_id}",
            Interaction.CANCEL_APPOINTMENT,
            body=updated,
            headers={"If-Match": f'W/"{version}"'},
        )
        return self._appointment(result.body)

    def amend(self, patient: PatientRef, appointment_id: str, reason: str) -> Appointment:
        """Change what the appointment is for: read it, then PUT it back with If-Match and only ``description``
        changed (Appointment Management "amend"). Cancelled or past appointments cannot be amended."""
        current, version = self._read_own(patient, appointment_id)
        if current.get("status") == "cancelled":
            raise NotAllowed("This appointment has been cancelled, so it cannot be changed.")
        start = parse_appointment(current).slot.start
        if start <= self._clock():
            raise NotAllowed("This appointment has already started, so it cannot be changed.")
        description = " ".join(reason.split())[: c.DESCRIPTION_MAX]
        if not description:
            raise NotAllowed("Say what the appointment is for.")
        updated: Json = copy.deepcopy(current)
        updated["description"] = description
        try:
            result = self.http.call(
                "PUT",
                f"/Appointment/{appointment_id}",
                Interaction.AMEND_APPOINTMENT,
                body=updated,
                headers={"If-Match": f'W/"{version}"'},
            )
        except SlotUnavailable:  # a 409 without If-Match semantics is still someone else's change
            raise StaleVersion() from None
        return self._appointment(result.body)

    def list_appointments(self, patient: PatientRef, since: dt.datetime) -> list[Appointment]:
        """The patient's appointments from ``since`` (never before today: GP Connect returns future
        appointments only) up to ``appointment_days`` ahead, booked and cancelled."""
        moment = since if since.tzinfo else since.replace(tzinfo=dt.UTC)
        today = self._clock().astimezone(LONDON).date()
        lower, upper = appointment_search_dates(today, moment.astimezone(LONDON).date(), self.appointment_days)

        def search(patient_id: str) -> Json:
            return self.http.call(
                "GET",
                f"/Patient/{patient_id}/Appointment",
                Interaction.SEARCH_PATIENT_APPOINTMENTS,
                params=[("start", f"ge{lower.isoformat()}"), ("start", f"le{upper.isoformat()}")],
            ).body

        bundle = self._as_patient(patient, search)
        index = ResourceIndex.of_bundle(bundle)
        found = [self._resolve_appointment(parse_appointment(r, index), r, index) for r in index.of_type("Appointment")]
        found.sort(key=lambda a: (a.slot.start, a.id))
        return [a for a in found if a.slot.start >= moment]

    # ------------------------------------------------------------------ record

    def get_record(self, patient: PatientRef, sections: frozenset[Section]) -> RecordExtract:
        """The asked sections only, as the practice's system holds them (withholding flags kept)."""
        asked = [s for s in Section if s in sections and s in SECTION_PARAMS]
        extract = RecordExtract()
        if asked:
            nhs = {"system": c.NHS_NUMBER_SYSTEM, "value": patient.nhs_number}
            parameters: list[Json] = [{"name": c.PARAM_NHS_NUMBER, "valueIdentifier": nhs}]
            parameters += [copy.deepcopy(SECTION_PARAMS[s]) for s in asked]
            reply = self.http.call(
                "POST",
                "/Patient/$gpc.getstructuredrecord",
                Interaction.STRUCTURED_RECORD,
                body={"resourceType": "Parameters", "parameter": parameters},
            )
            extract = parse_structured_record(reply.body, frozenset(asked))
        if Section.DOCUMENTS in sections:
            words = "Documents are not available online from your GP practice's system yet."
            extract.notices.append(RecordNotice(Section.DOCUMENTS, words))
        return extract

    # ------------------------------------------------------------------ repeat medication

    def _patient_facing(self) -> dict[str, str]:
        trace = str(uuid.uuid4())
        return {"X-Request-ID": trace, "X-Correlation-ID": trace}

    def list_repeat_template(self, patient: PatientRef) -> list[RepeatItem]:
        """The patient's medication template (MedicationRequests with intent plan)."""
        reply = self.http.call(
            "GET",
            f"/Patient/{patient.nhs_number}/MedicationRequest",
            Interaction.SEARCH_MEDICATION_REQUESTS,
            params=[("intent", "plan")],
            headers=self._patient_facing(),
        )
        return parse_repeat_template(reply.body)

    def _tasks(self, patient: PatientRef) -> list[Json]:
        reply = self.http.call(
            "GET",
            "/Task",
            Interaction.SEARCH_TASKS,
            params=[("patient", patient.nhs_number), ("_include", "Task:focus:MedicationRequest")],
            headers=self._patient_facing(),
        )
        return [as_dict(e.get("resource")) for e in reply.body.get("entry", []) if isinstance(e, dict)]

    def _task_body(
        self,
        patient: PatientRef,
        item_id: str,
        note: str,
        pharmacy_ods: str,
        group: str,
        task_key: str,
        collection: Collection = Collection.PHARMACY,
        requested_at: dt.datetime | None = None,
    ) -> Json:
        who = {
            "reference": f"Patient/{patient.nhs_number}",
            "identifier": {"system": c.NHS_NUMBER_SYSTEM, "value": patient.nhs_number},
        }
        body: Json = {
            "resourceType": "Task",
            "meta": {"profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Task"]},
            "identifier": [{"system": c.UUID_IDENTIFIER_SYSTEM, "value": task_key}],
            "groupIdentifier": {"system": c.UUID_IDENTIFIER_SYSTEM, "value": group},
            "status": "requested",
            "intent": "order",
            "code": {"coding": [{"system": c.SNOMED, "code": c.TASK_CODE_REPEAT, "display": c.TASK_CODE_DISPLAY}]},
            "focus": {"reference": f"MedicationRequest/{item_id}"},
            "for": who,
            "requester": who,
            # When the patient asked: a request queued while the link was down keeps its time.
            "authoredOn": (requested_at or self._clock()).astimezone(dt.UTC).replace(microsecond=0).isoformat(),
        }
        notes: list[Json] = []
        if note.strip():
            notes.append({"authorString": "Patient", "text": note.strip()})
        if collection is Collection.SURGERY:
            notes.append({"authorString": c.COLLECTION_NOTE_AUTHOR, "text": c.COLLECTION_SURGERY_NOTE})
        if notes:
            body["note"] = notes
        if pharmacy_ods and collection is Collection.PHARMACY:
            body["input"] = [
                {
                    "type": {"coding": [{"system": c.PRESCRIPTION_ORDERING_PARAMETER, "code": "preferred-performer"}]},
                    "valueIdentifier": {"system": c.ODS_SYSTEM, "value": pharmacy_ods},
                }
            ]
        return body

    def request_repeats(
        self,
        patient: PatientRef,
        item_ids: Sequence[str],
        note: str,
        pharmacy_ods: str,
        idempotency_key: str,
        *,
        collection: Collection = Collection.PHARMACY,
        requested_at: dt.datetime | None = None,
    ) -> RepeatRequest:
        """One Task per item, sharing a group id derived from the idempotency key, so retries create nothing new."""
        group = str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{self.practice_ods}|{patient.nhs_number}|{idempotency_key}"))
        created: list[Json] = []
        for item_id in dict.fromkeys(item_ids):
            task_key = str(uuid.uuid5(uuid.UUID(group), item_id))
            headers = {
                "X-Request-ID": task_key,
                "X-Correlation-ID": group,
                "If-None-Exist": f"identifier={c.UUID_IDENTIFIER_SYSTEM}|{task_key}",
            }
            try:
                reply = self.http.call(
                    "POST",
                    "/Task",
                    Interaction.CREATE_TASK,
                    body=self._task_body(
                        patient, item_id, note, pharmacy_ods, group, task_key, collection, requested_at
                    ),
                    headers=headers,
                )
            except SlotGone:  # REFERENCE_NOT_FOUND: the medicine is not on this patient's template
                raise ProviderRejected() from None
            except AlreadyBooked:  # DUPLICATE_REJECTED: an earlier attempt already created it
                existing = [t for t in self._tasks(patient) if task_group(t) == group]
                created += [t for t in existing if t.get("id") not in {x.get("id") for x in created}]
                continue
            created.append(reply.body)
        requests = parse_tasks(_bundle(created))
        if not requests:
            raise NotFound()
        return requests[0]

    def cancel_request(self, patient: PatientRef, request_id: str) -> RepeatRequest:
        """Withdraw a request the practice has not acted on yet (every Task of the group set to cancelled)."""
        resources = self._tasks(patient)
        tasks = [r for r in resources if r.get("resourceType") == "Task" and task_group(r) == request_id]
        if not tasks:
            raise NotFound()
        if any(task_status(t) not in (RequestStatus.REQUESTED, RequestStatus.CANCELLED) for t in tasks):
            raise NotAllowed(
                "Your GP practice has already started dealing with this request, so it cannot be cancelled."
            )
        updated: list[Json] = []
        for task in tasks:
            if task_status(task) is RequestStatus.CANCELLED:
                updated.append(task)
                continue
            body: Json = copy.deepcopy(task)
            body["status"] = "cancelled"
            body["lastModified"] = self._clock().replace(microsecond=0).isoformat()
            reply = self.http.call(
                "PUT", f"/Task/{task['id']}", Interaction.UPDATE_TASK, body=body, headers=self._patient_facing()
            )
            updated.append(reply.body)
        others = [r for r in resources if r.get("resourceType") != "Task"]
        return parse_tasks(_bundle(updated + others))[0]

    def list_requests(self, patient: PatientRef) -> list[RepeatRequest]:
        """The patient's repeat requests with their current status, newest first."""
        return parse_tasks(_bundle(self._tasks(patient)))

    # ------------------------------------------------------------------ link

    def link_state(self) -> LinkState:
        """How the last call went, without calling the provider."""
        last_ok, last_failure = self.http.last_ok, self.http.last_failure
        if last_failure is not None and (last_ok is None or last_failure > last_ok):
            return LinkState(ok=False, detail=f"GP Connect: last call failed at {last_failure:%H:%M:%S} UTC")
        if last_ok is None:
            return LinkState(ok=True, detail="GP Connect: no calls yet")
        return LinkState(ok=True, detail=f"GP Connect: last call succeeded at {last_ok:%H:%M:%S} UTC")

    def __repr__(self) -> str:
        return f"GPConnectClinicalSystem(practice={self.practice_ods!r}, base_url={self.endpoint.base_url!r})"
