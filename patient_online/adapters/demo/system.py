"""DemoClinicalSystem: the embedded stand-in for a practice's clinical system, over its own tables."""

from __future__ import annotations

import datetime as dt
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields, replace
from functools import cache
from typing import Any

from sqlalchemy import Row, Select, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patient_online.domain.appointments import (
    Appointment,
    AppointmentStatus,
    Clinician,
    DeliveryMode,
    Slot,
    SlotQuery,
)
from patient_online.domain.errors import NotFound, PatientNotFound, SlotUnavailable
from patient_online.domain.patients import AccessFlag, Demographics, PatientRef
from patient_online.domain.ports import LinkState
from patient_online.domain.prescriptions import Collection, PrescriptionType, RepeatItem, RepeatRequest, RequestStatus
from patient_online.domain.record import RecordEntry, RecordExtract, Section, split_no_known_allergies
from patient_online.domain.reports import ClinicalFigures
from patient_online.extensions import begin_write

from .models import (
    DemoAppointment,
    DemoClinician,
    DemoMedication,
    DemoPatient,
    DemoRecordEntry,
    DemoRepeatRequest,
    DemoSlot,
)
from .reporting import clinical_figures

SessionFactory = Callable[[], Session]

# A slot and its clinician as plain columns, in the order _slot_of and Clinician take them (slot searches and
# appointment lists read these for every row; ORM entities cost more than the queries).
SLOT_COLUMNS = (
    DemoSlot.id,
    DemoSlot.start,
    DemoSlot.end,
    DemoSlot.slot_type,
    DemoSlot.delivery_mode,
    DemoSlot.location,
    DemoClinician.id,
    DemoClinician.name,
    DemoClinician.role,
)


@contextmanager
def _writing(factory: SessionFactory) -> Iterator[Session]:
    """A session whose transaction takes the write lock at once (SQLite), committed when the block succeeds."""
    with factory() as session:
        begin_write(session)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


class DemoClinicalSystem:
    """One practice's view of the demo clinical system."""

    name = "demo"

    def __init__(
        self, practice_ods: str, session_factory: SessionFactory, read_session_factory: SessionFactory | None = None
    ) -> None:
        self.practice_ods = practice_ods
        self._sessions = session_factory
        # Reads that stand alone need no transaction of their own (autocommit on PostgreSQL: fewer round trips).
        self._reads = read_session_factory or session_factory

    # Demographics -----------------------------------------------------------------------------
    def find_patient(self, nhs_number: str) -> Demographics | None:
        with self._reads() as s:
            row = s.scalar(
                select(DemoPatient).where(
                    DemoPatient.practice_ods == self.practice_ods, DemoPatient.nhs_number == nhs_number
                )
            )
            return _demographics(row) if row else None

    def search_patients(
        self, family_name: str, date_of_birth: dt.date, *, given_name: str = "", postcode: str = ""
    ) -> list[Demographics]:
        """Registered patients with this surname and date of birth (case and accents ignored), narrowed by the
        optional first name and postcode; at most 20 (the optional PatientSearch port)."""
        family, given, code = _folded(family_name), _folded(given_name), _folded(postcode).replace(" ", "")
        with self._reads() as s:
            rows = s.scalars(
                select(DemoPatient).where(
                    DemoPatient.practice_ods == self.practice_ods, DemoPatient.date_of_birth == date_of_birth
                )
            ).all()
            found = [
                row
                for row in rows
                if _folded(row.family_name) == family
                and (not given or _folded(row.given_name).startswith(given))
                and (not code or _folded(row.postcode).replace(" ", "") == code)
            ]
            found.sort(key=lambda row: (_folded(row.family_name), _folded(row.given_name), row.nhs_number))
            return [_demographics(row) for row in found[:20]]

    # Appointment book -------------------------------------------------------------------------
    def search_slots(self, query: SlotQuery) -> list[Slot]:
        with self._reads() as s:
            # Plain columns, not ORM entities: a search returns a whole horizon of slots (about 1,500 for a
            # practice), and building and tracking an entity per row cost more than the query itself.
            stmt = (
                select(*SLOT_COLUMNS)
                .join(DemoClinician, DemoSlot.clinician_id == DemoClinician.id)
                .where(
                    DemoSlot.practice_ods == self.practice_ods,
                    DemoSlot.status == "free",
                    DemoSlot.start >= query.start,
                    DemoSlot.end <= query.end,
                )
                .order_by(DemoSlot.start, DemoSlot.id)
            )
            if query.slot_types:
                stmt = stmt.where(DemoSlot.slot_type.in_(sorted(query.slot_types)))
            if query.clinician_id:
                stmt = stmt.where(DemoSlot.clinician_id == query.clinician_id)
            if query.delivery_mode:
                stmt = stmt.where(DemoSlot.delivery_mode == query.delivery_mode.value)
            clinicians: dict[str, Clinician] = {}
            found = []
            for slot_id, start, end, slot_type, mode, location, clinician_id, name, role in s.execute(stmt):
                clinician = clinicians.get(clinician_id)
                if clinician is None:
                    clinician = clinicians[clinician_id] = Clinician(id=clinician_id, name=name, role=role)
                found.append(_slot_of(slot_id, start, end, slot_type, mode, location, clinician))
            return found

    def book(self, patient: PatientRef, slot_id: str, reason: str, idempotency_key: str) -> Appointment:
        with _writing(self._sessions) as s:
            existing = s.scalar(select(DemoAppointment).where(DemoAppointment.idempotency_key == idempotency_key))
            if existing is not None:
                return self._appointment(s, existing)
            self._patient_row(s, patient)
            taken = s.execute(
                update(DemoSlot)
                .where(
                    DemoSlot.id == slot_id,
                    DemoSlot.practice_ods == self.practice_ods,
                    DemoSlot.status == "free",
                    DemoSlot.start > dt.datetime.now(dt.UTC),
                )
                .values(status="booked")
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                raise SlotUnavailable()
            row = DemoAppointment(
                id=f"A-{uuid.uuid4().hex[:12]}",
                slot_id=slot_id,
                patient_id=patient.clinical_id,
                reason=reason,
                idempotency_key=idempotency_key,
                booked_online=True,
            )
            s.add(row)
            try:
                s.flush()
            except IntegrityError:
                raise SlotUnavailable() from None
            return self._appointment(s, row)

    def cancel(self, patient: PatientRef, appointment_id: str, reason: str) -> Appointment:
        with _writing(self._sessions) as s:
            row = s.get(DemoAppointment, appointment_id, with_for_update=True)
            if row is None or row.patient_id != patient.clinical_id:
                raise NotFound("We could not find that appointment.")
            if row.status == "booked":
                row.status = "cancelled"
                row.cancellation_reason = reason
                row.cancelled_at = dt.datetime.now(dt.UTC)
                row.version += 1
                s.execute(update(DemoSlot).where(DemoSlot.id == row.slot_id).values(status="free"))
            return self._appointment(s, row)

    def amend(self, patient: PatientRef, appointment_id: str, reason: str) -> Appointment:
        """The optional AppointmentAmendment port: replace the reason of a booked, future appointment."""
        with _writing(self._sessions) as s:
            row = s.get(DemoAppointment, appointment_id, with_for_update=True)
            if row is None or row.patient_id != patient.clinical_id:
                raise NotFound("We could not find that appointment.")
            if row.status != "booked":  # a cancelled (or past) appointment keeps what it said
                raise NotFound("We could not find that appointment in your upcoming appointments.")
            if row.reason != reason:
                row.reason = reason
                row.version += 1
            return self._appointment(s, row)

    def list_appointments(self, patient: PatientRef, since: dt.datetime) -> list[Appointment]:
        with self._reads() as s:
            # Plain columns, as for slot searches: every patient page about appointments reads these.
            rows = s.execute(_appointments_statement(), {"patient_id": patient.clinical_id, "since": since})
            found = []
            for row in rows:
                a_id, status, reason, version, booked_at, cancelled_why = row[:6]
                slot_id, start, end, slot_type, mode, location, c_id, c_name, c_role = row[6:]
                slot = _slot_of(slot_id, start, end, slot_type, mode, location, Clinician(c_id, c_name, c_role))
                found.append(
                    Appointment(
                        id=a_id,
                        slot=slot,
                        status=AppointmentStatus(status),
                        reason=reason,
                        version=str(version),
                        booked_at=booked_at,
                        cancellation_reason=cancelled_why,
                    )
                )
            return found

    def _appointment(self, s: Session, row: DemoAppointment) -> Appointment:
        slot = s.get_one(DemoSlot, row.slot_id)
        return _appointment(row, _slot(slot, s.get_one(DemoClinician, slot.clinician_id)))

    # Repeat medication ------------------------------------------------------------------------
    def list_repeat_template(self, patient: PatientRef) -> list[RepeatItem]:
        with self._reads() as s:
            rows = s.execute(_template_statement(), {"patient_id": patient.clinical_id})
            return [_repeat_item(m) for m in rows]

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
        with _writing(self._sessions) as s:
            existing = s.scalar(select(DemoRepeatRequest).where(DemoRepeatRequest.idempotency_key == idempotency_key))
            if existing is not None:
                return self._request(s, existing)
            self._patient_row(s, patient)
            meds = {
                m.id
                for m in s.scalars(
                    select(DemoMedication).where(
                        DemoMedication.patient_id == patient.clinical_id, DemoMedication.id.in_(list(item_ids))
                    )
                )
            }
            if meds != set(item_ids):
                raise NotFound("We could not find one of those medicines on your record.")
            row = DemoRepeatRequest(
                id=f"R-{uuid.uuid4().hex[:12]}",
                patient_id=patient.clinical_id,
                item_ids=list(item_ids),
                note=note,
                pharmacy_ods="" if collection is Collection.SURGERY else pharmacy_ods,
                collection=collection.value,
                idempotency_key=idempotency_key,
                requested_at=requested_at or dt.datetime.now(dt.UTC),
            )
            s.add(row)
            s.flush()
            return self._request(s, row)

    def cancel_request(self, patient: PatientRef, request_id: str) -> RepeatRequest:
        with _writing(self._sessions) as s:
            row = s.get(DemoRepeatRequest, request_id, with_for_update=True)
            if row is None or row.patient_id != patient.clinical_id:
                raise NotFound("We could not find that request.")
            if row.status == "requested":
                row.status = "cancelled"
                row.updated_at = dt.datetime.now(dt.UTC)
            return self._request(s, row)

    def list_requests(self, patient: PatientRef) -> list[RepeatRequest]:
        with self._reads() as s:
            rows = s.execute(_requests_statement(), {"patient_id": patient.clinical_id}).all()
            # A request names only the patient's own medicines (request_repeats checks): their names, in one
            # statement whatever the requests hold, so the page runs the same statements for everyone.
            names = dict(s.execute(_names_statement(), {"patient_id": patient.clinical_id}).tuples().all())
            return [_repeat_request(r, names) for r in rows]

    def _request(self, s: Session, row: DemoRepeatRequest) -> RepeatRequest:
        return _repeat_request(row, self._medication_names(s, row.item_ids))

    @staticmethod
    def _medication_names(s: Session, ids: Sequence[str]) -> dict[str, str]:
        if not ids:
            return {}
        rows = s.execute(select(DemoMedication.id, DemoMedication.name).where(DemoMedication.id.in_(set(ids))))
        return dict(rows.tuples().all())

    # Record -----------------------------------------------------------------------------------
    def get_record(self, patient: PatientRef, sections: frozenset[Section]) -> RecordExtract:
        with self._reads() as s:
            rows = s.execute(
                _record_statement(),
                {
                    "patient_id": patient.clinical_id,
                    "practice_ods": self.practice_ods,
                    "nhs_number": patient.nhs_number,
                    "sections": sorted(x.value for x in sections),
                },
            ).all()
            if not rows:
                self._patient_row(s, patient)  # nothing found: a known patient with no entries, or not ours
            entries = [_not_given(RecordEntry(row[0], Section(row[1]), *row[2:])) for row in rows]
            # A coded "no known allergies" is what the practice recorded about the list, not an allergy.
            entries, notes = split_no_known_allergies(entries)
            return RecordExtract(entries=entries, section_notes=notes)

    # Reporting (the optional ReportFigures port) ----------------------------------------------
    def report_figures(
        self, start: dt.datetime, end: dt.datetime, online_slot_types: Sequence[str], flag_codes: Sequence[str]
    ) -> ClinicalFigures:
        """The uptake report's figures that only the clinical system holds."""
        return clinical_figures(self._sessions, self.practice_ods, start, end, online_slot_types, flag_codes)

    def link_state(self) -> LinkState:
        return LinkState(ok=True, detail="embedded")

    def _patient_row(self, s: Session, patient: PatientRef) -> DemoPatient:
        row = s.get(DemoPatient, patient.clinical_id)
        if row is None or row.practice_ods != self.practice_ods or row.nhs_number != patient.nhs_number:
            raise PatientNotFound()
        return row


def _folded(text: str) -> str:
    """Text compared as reception would: case, accents and surrounding spaces ignored."""
    decomposed = unicodedata.normalize("NFKD", text.strip())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _not_given(entry: RecordEntry) -> RecordEntry:
    """A vaccination the demo system records with status "not-given" (any note stays free text, filtered as such)."""
    if entry.section is not Section.IMMUNISATIONS or entry.status != "not-given":
        return entry
    return replace(entry, not_given=True)


def _demographics(row: DemoPatient) -> Demographics:
    return Demographics(
        ref=PatientRef(practice_ods=row.practice_ods, nhs_number=row.nhs_number, clinical_id=row.id),
        given_name=row.given_name,
        family_name=row.family_name,
        date_of_birth=row.date_of_birth,
        postcode=row.postcode,
        address=row.address,
        sex=row.sex,
        flags=tuple(AccessFlag(code=f["code"], recorded_on=dt.date.fromisoformat(f["date"])) for f in row.flags),
    )


def _slot(row: DemoSlot, clinician: DemoClinician) -> Slot:
    return _slot_of(
        row.id,
        row.start,
        row.end,
        row.slot_type,
        row.delivery_mode,
        row.location,
        Clinician(id=clinician.id, name=clinician.name, role=clinician.role),
    )


def _slot_of(
    slot_id: str,
    start: dt.datetime,
    end: dt.datetime,
    slot_type: str,
    mode: str,
    location: str,
    clinician: Clinician,
) -> Slot:
    return Slot(
        id=slot_id,
        start=start,
        end=end,
        slot_type=slot_type,
        clinician=clinician,
        delivery_mode=DeliveryMode(mode),
        location=location,
    )


def _appointment(row: DemoAppointment, slot: Slot) -> Appointment:
    return Appointment(
        id=row.id,
        slot=slot,
        status=AppointmentStatus(row.status),
        reason=row.reason,
        version=str(row.version),
        booked_at=row.booked_at,
        cancellation_reason=row.cancellation_reason,
    )


def _repeat_item(row: DemoMedication | Row[Any]) -> RepeatItem:
    return RepeatItem(
        id=row.id,
        name=row.name,
        dosage=row.dosage,
        quantity=row.quantity,
        prescription_type=PrescriptionType(row.prescription_type),
        code=row.code,
        last_issued=row.last_issued,
        review_date=row.review_date,
        issues_allowed=row.issues_allowed,
        issues_used=row.issues_used,
        controlled_drug=row.controlled_drug,
    )


def _repeat_request(row: DemoRepeatRequest | Row[Any], names: dict[str, str]) -> RepeatRequest:
    return RepeatRequest(
        id=row.id,
        item_ids=tuple(row.item_ids),
        item_names=tuple(names.get(i, "Unknown item") for i in row.item_ids),
        status=RequestStatus(row.status),
        requested_at=row.requested_at,
        note=row.note,
        rejection_reason=row.rejection_reason,
        pharmacy_ods=row.pharmacy_ods,
        collection=Collection(row.collection),
    )


# A patient's appointments, read on every slots page and list of appointments: plain columns, built once.
@cache
def _appointments_statement() -> Select[tuple[object, ...]]:
    a = DemoAppointment
    return (
        select(a.id, a.status, a.reason, a.version, a.booked_at, a.cancellation_reason, *SLOT_COLUMNS)
        .join(DemoSlot, a.slot_id == DemoSlot.id)
        .join(DemoClinician, DemoSlot.clinician_id == DemoClinician.id)
        .where(a.patient_id == bindparam("patient_id"), DemoSlot.start >= bindparam("since"))
        .order_by(DemoSlot.start)
    )


# The repeat template and the requests, read on every prescriptions page: plain columns (what _repeat_item and
# _repeat_request read), in statements built once.
@cache
def _template_statement() -> Select[tuple[object, ...]]:
    m = DemoMedication
    return (
        select(
            m.id,
            m.name,
            m.dosage,
            m.quantity,
            m.prescription_type,
            m.code,
            m.last_issued,
            m.review_date,
            m.issues_allowed,
            m.issues_used,
            m.controlled_drug,
        )
        .where(m.patient_id == bindparam("patient_id"), m.stopped_on.is_(None))
        .order_by(m.name)
    )


@cache
def _requests_statement() -> Select[tuple[object, ...]]:
    r = DemoRepeatRequest
    return (
        select(r.id, r.item_ids, r.status, r.requested_at, r.note, r.rejection_reason, r.pharmacy_ods, r.collection)
        .where(r.patient_id == bindparam("patient_id"))
        .order_by(r.requested_at.desc())
    )


@cache
def _names_statement() -> Select[tuple[str, str]]:
    return select(DemoMedication.id, DemoMedication.name).where(DemoMedication.patient_id == bindparam("patient_id"))


@cache
def _record_statement() -> Select[tuple[object, ...]]:
    """A patient's entries in some sections, as plain columns in RecordEntry's field order, and only when the
    patient is this practice's (checked in the same statement). Built once: the record pages run it each time."""
    # The demo table holds every field up to the vaccination ones (the demo records "not given" in status).
    columns = [
        getattr(DemoRecordEntry, field.name) for field in fields(RecordEntry) if hasattr(DemoRecordEntry, field.name)
    ]
    return (
        select(*columns)
        .join(DemoPatient, DemoPatient.id == DemoRecordEntry.patient_id)
        .where(
            DemoRecordEntry.patient_id == bindparam("patient_id"),
            DemoPatient.practice_ods == bindparam("practice_ods"),
            DemoPatient.nhs_number == bindparam("nhs_number"),
            DemoRecordEntry.section.in_(bindparam("sections", expanding=True)),
        )
    )
