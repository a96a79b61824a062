"""The clinical-system ports: what the gateway needs from a practice's clinical system.

Adapters implement these protocols and return domain objects only; vendor formats stop inside them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .appointments import Appointment, Slot, SlotQuery
from .patients import Demographics, PatientRef
from .prescriptions import Collection, RepeatItem, RepeatRequest
from .record import RecordExtract, Section
from .reports import ClinicalFigures


@dataclass(frozen=True)
class LinkState:
    """How an adapter's link to its clinical system is doing, for /readyz and reception."""

    ok: bool
    detail: str = ""


class DemographicsLookup(Protocol):
    def find_patient(self, nhs_number: str) -> Demographics | None:
        """The patient with this NHS number registered at the practice, or None."""
        ...


class AppointmentBook(Protocol):
    def search_slots(self, query: SlotQuery) -> list[Slot]:
        """Free slots matching the query, soonest first."""
        ...

    def book(self, patient: PatientRef, slot_id: str, reason: str, idempotency_key: str) -> Appointment:
        """Book the slot for the patient; raises SlotUnavailable when it is no longer free."""
        ...

    def cancel(self, patient: PatientRef, appointment_id: str, reason: str) -> Appointment:
        """Cancel one of the patient's appointments."""
        ...

    def list_appointments(self, patient: PatientRef, since: dt.datetime) -> list[Appointment]:
        """The patient's appointments starting after ``since`` (booked and cancelled)."""
        ...


class RepeatMedication(Protocol):
    def list_repeat_template(self, patient: PatientRef) -> list[RepeatItem]:
        """The patient's medication template: repeats, repeat dispensing and acute items."""
        ...

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
        """Ask the practice for the items; the same idempotency key never makes a second request.

        ``collection`` says where the patient will collect them: sent electronically to ``pharmacy_ods`` (their
        nominated pharmacy), or a paper prescription at the surgery (``pharmacy_ods`` then empty).
        ``requested_at`` is when the patient asked (an order queued while the link was down is sent later):
        the request carries that time, not the time it reached the practice. None means now.
        """
        ...

    def cancel_request(self, patient: PatientRef, request_id: str) -> RepeatRequest:
        """Withdraw a request the practice has not acted on yet."""
        ...

    def list_requests(self, patient: PatientRef) -> list[RepeatRequest]:
        """The patient's repeat requests with their current status, newest first."""
        ...


class PatientRecord(Protocol):
    def get_record(self, patient: PatientRef, sections: frozenset[Section]) -> RecordExtract:
        """The entries of the asked sections, with their withholding flags, unfiltered."""
        ...


@runtime_checkable
class ReportFigures(Protocol):
    """Optional: a clinical system that can give the uptake report the figures only it holds.

    A system without it is not asked; the report then says those figures are not available.
    """

    def report_figures(
        self, start: dt.datetime, end: dt.datetime, online_slot_types: Sequence[str], flag_codes: Sequence[str]
    ) -> ClinicalFigures:
        """List size, bookings made in [start, end) (and how many online), slots starting then (and how many of
        the online types), and patients carrying each of ``flag_codes``."""
        ...


@runtime_checkable
class PatientSearch(Protocol):
    """Optional: find registered patients without their NHS number (reception's "find a patient").

    Every registered patient counts, whether or not they use the gateway. A system without it is not asked;
    reception is then told to search by NHS number.
    """

    def search_patients(
        self, family_name: str, date_of_birth: dt.date, *, given_name: str = "", postcode: str = ""
    ) -> list[Demographics]:
        """Registered patients with this surname (case and accents ignored) and date of birth, narrowed by the
        optional first name and postcode; at most 20, by family then given name."""
        ...


@runtime_checkable
class AppointmentAmendment(Protocol):
    """Optional: change what a booked appointment says (its reason / comment), Appointment Management "amend"."""

    def amend(self, patient: PatientRef, appointment_id: str, reason: str) -> Appointment:
        """Replace the appointment's reason; raises AppointmentNotFound-like domain errors as ``cancel`` does."""
        ...


class ClinicalSystem(DemographicsLookup, AppointmentBook, RepeatMedication, PatientRecord, Protocol):
    """Everything one practice's clinical system offers the gateway."""

    name: str

    def link_state(self) -> LinkState:
        """Whether the link to the clinical system is working, without calling it."""
        ...
