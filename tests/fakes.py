"""Hand-written fakes of our own ports, for service tests and fault drills."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from patient_online.domain.appointments import Appointment, AppointmentStatus, Slot, SlotQuery
from patient_online.domain.errors import ClinicalSystemUnavailable, NotFound, SlotUnavailable
from patient_online.domain.patients import Demographics, PatientRef
from patient_online.domain.ports import ClinicalSystem, LinkState
from patient_online.domain.prescriptions import Collection, RepeatItem, RepeatRequest, RequestStatus
from patient_online.domain.record import RecordExtract, Section
from patient_online.services.slot_cache import SlotSearchCache
from patient_online.services.unit_of_work import AbstractUnitOfWork, FixedClock


@dataclass
class FakeClinicalSystem:
    """An in-memory clinical system. Set ``down = True`` to make every call fail as a broken link would,
    or ``fail_next[method] = exception`` to fail one named call once."""

    name: str = "fake"
    patients: dict[str, Demographics] = field(default_factory=dict)
    slots: dict[str, Slot] = field(default_factory=dict)
    appointments: dict[str, tuple[PatientRef, Appointment]] = field(default_factory=dict)
    templates: dict[str, list[RepeatItem]] = field(default_factory=dict)
    requests: dict[str, tuple[PatientRef, RepeatRequest, str]] = field(default_factory=dict)
    record: dict[str, RecordExtract] = field(default_factory=dict)
    down: bool = False
    fail_next: dict[str, Exception] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.down:
            raise ClinicalSystemUnavailable()
        if name in self.fail_next:
            raise self.fail_next.pop(name)

    def find_patient(self, nhs_number: str) -> Demographics | None:
        self._call("find_patient")
        return self.patients.get(nhs_number)

    def search_patients(
        self, family_name: str, date_of_birth: dt.date, *, given_name: str = "", postcode: str = ""
    ) -> list[Demographics]:
        self._call("search_patients")

        def folded(text: str) -> str:
            decomposed = unicodedata.normalize("NFKD", text.strip())
            return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().replace(" ", "")

        found = [
            p
            for p in self.patients.values()
            if folded(p.family_name) == folded(family_name)
            and p.date_of_birth == date_of_birth
            and (not given_name or folded(p.given_name).startswith(folded(given_name)))
            and (not postcode or folded(p.postcode) == folded(postcode))
        ]
        return sorted(found, key=lambda p: (folded(p.family_name), folded(p.given_name)))[:20]

    def search_slots(self, query: SlotQuery) -> list[Slot]:
        self._call("search_slots")
        booked = {a.slot.id for _, a in self.appointments.values() if a.status == AppointmentStatus.BOOKED}
        found = [
            s
            for s in self.slots.values()
            if s.id not in booked
            and query.start <= s.start <= query.end
            and (not query.slot_types or s.slot_type in query.slot_types)
            and (query.clinician_id is None or s.clinician.id == query.clinician_id)
            and (query.delivery_mode is None or s.delivery_mode == query.delivery_mode)
        ]
        return sorted(found, key=lambda s: (s.start, s.id))

    def book(self, patient: PatientRef, slot_id: str, reason: str, idempotency_key: str) -> Appointment:
        self._call("book")
        if idempotency_key in self.appointments:
            return self.appointments[idempotency_key][1]
        taken = any(
            a.slot.id == slot_id and a.status == AppointmentStatus.BOOKED for _, a in self.appointments.values()
        )
        slot = self.slots.get(slot_id)
        if slot is None or taken or slot.start <= self.now():
            raise SlotUnavailable()
        appointment = Appointment(
            id=f"FA{len(self.appointments) + 1}",
            slot=slot,
            status=AppointmentStatus.BOOKED,
            reason=reason,
            booked_at=self.now(),
        )
        self.appointments[idempotency_key] = (patient, appointment)
        return appointment

    def cancel(self, patient: PatientRef, appointment_id: str, reason: str) -> Appointment:
        self._call("cancel")
        for key, (owner, appointment) in self.appointments.items():
            if appointment.id == appointment_id and owner.nhs_number == patient.nhs_number:
                cancelled = replace(appointment, status=AppointmentStatus.CANCELLED, cancellation_reason=reason)
                self.appointments[key] = (owner, cancelled)
                return cancelled
        raise NotFound()

    def amend(self, patient: PatientRef, appointment_id: str, reason: str) -> Appointment:
        """The optional AppointmentAmendment port: replace a booked appointment's reason."""
        self._call("amend")
        for key, (owner, appointment) in self.appointments.items():
            if appointment.id == appointment_id and owner.nhs_number == patient.nhs_number:
                if appointment.status != AppointmentStatus.BOOKED:
                    raise NotFound()
                version = str(int(appointment.version) + 1) if appointment.version.isdigit() else appointment.version
                amended = replace(appointment, reason=reason, version=version)
                self.appointments[key] = (owner, amended)
                return amended
        raise NotFound()

    def list_appointments(self, patient: PatientRef, since: dt.datetime) -> list[Appointment]:
        self._call("list_appointments")
        return sorted(
            (
                a
                for owner, a in self.appointments.values()
                if owner.nhs_number == patient.nhs_number and a.slot.start >= since
            ),
            key=lambda a: a.slot.start,
        )

    def list_repeat_template(self, patient: PatientRef) -> list[RepeatItem]:
        self._call("list_repeat_template")
        return list(self.templates.get(patient.nhs_number, []))

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
        self._call("request_repeats")
        for _owner, request, key in self.requests.values():
            if key == idempotency_key:
                return request
        names = {i.id: i.name for i in self.templates.get(patient.nhs_number, [])}
        request = RepeatRequest(
            id=f"FR{len(self.requests) + 1}",
            item_ids=tuple(item_ids),
            item_names=tuple(names.get(i, i) for i in item_ids),
            status=RequestStatus.REQUESTED,
            requested_at=requested_at or self.now(),
            note=note,
            pharmacy_ods=pharmacy_ods,
            collection=collection,
        )
        self.requests[request.id] = (patient, request, idempotency_key)
        return request

    def cancel_request(self, patient: PatientRef, request_id: str) -> RepeatRequest:
        self._call("cancel_request")
        owner, request, key = self.requests[request_id]
        cancelled = replace(request, status=RequestStatus.CANCELLED)
        self.requests[request_id] = (owner, cancelled, key)
        return cancelled

    def list_requests(self, patient: PatientRef) -> list[RepeatRequest]:
        self._call("list_requests")
        return sorted(
            (r for o, r, _ in self.requests.values() if o.nhs_number == patient.nhs_number),
            key=lambda r: r.requested_at,
            reverse=True,
        )

    def get_record(self, patient: PatientRef, sections: frozenset[Section]) -> RecordExtract:
        self._call("get_record")
        extract = self.record.get(patient.nhs_number, RecordExtract())
        return RecordExtract(
            entries=[e for e in extract.entries if e.section in sections],
            notices=list(extract.notices),
            section_notes=[n for n in extract.section_notes if n.section in sections],
        )

    def link_state(self) -> LinkState:
        return LinkState(ok=not self.down, detail="fake down" if self.down else "fake")


_: ClinicalSystem = FakeClinicalSystem()


# The unit of work ------------------------------------------------------------------------------------------
@dataclass
class SentEmail:
    to: str
    template: str
    subject: str
    body: str


class FakeNotifier:
    """Keeps what would have been sent, for a test to read."""

    def __init__(self) -> None:
        self.sent: list[SentEmail] = []

    def send_email(self, session: Any, to: str, template: str, subject: str, body: str) -> None:
        self.sent.append(SentEmail(to, template, subject, body))

    def deliver(self, message: Any) -> str:
        """What the outbox hands over (``services.notify.OutgoingMessage``): kept in ``delivered``; a test
        may make the next deliveries raise by putting exceptions in ``failures``."""
        if self.failures:
            raise self.failures.pop(0)
        self.delivered.append(message)
        return f"fake-{len(self.delivered)}"

    @property
    def delivered(self) -> list[Any]:
        return self.__dict__.setdefault("_delivered", [])

    @property
    def failures(self) -> list[Exception]:
        return self.__dict__.setdefault("_failures", [])


class FakeClinicalSystems:
    """Every practice's clinical system is one FakeClinicalSystem (or the one set for its ODS code)."""

    def __init__(self, default: FakeClinicalSystem | None = None) -> None:
        self.default = default or FakeClinicalSystem()
        self.by_practice: dict[str, Any] = {}
        self.by_adapter: dict[str, Any] = {}  # a practice whose adapter is named here uses that system

    def concurrently(self, practice: Any, *calls: Callable[[], Any]) -> list[Any]:
        """One after another: what the reads return does not depend on their order."""
        return [call() for call in calls]

    def system_for(self, practice: Any) -> Any:
        if practice.ods_code in self.by_practice:
            return self.by_practice[practice.ods_code]
        return self.by_adapter.get(practice.adapter_name, self.default)

    def link_state(self, practice: Any) -> LinkState:
        return self.system_for(practice).link_state()

    def overridden(self, practice_ods: str) -> bool:
        return practice_ods in self.by_practice


_schema: Engine | None = None


def _engine() -> Engine:
    """One in-memory SQLite database per test process, its schema made once from the models."""
    global _schema
    if _schema is None:
        import patient_online.adapters.demo.models  # noqa: F401  (the demo tables share the metadata)
        from patient_online.models import Base

        _schema = create_engine(
            "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool, future=True
        )

        @event.listens_for(_schema, "connect")
        def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # SQLAlchemy, not the driver, begins (savepoints work)

        @event.listens_for(_schema, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

        Base.metadata.create_all(_schema)
    return _schema


class FakeUnitOfWork(AbstractUnitOfWork):
    """A unit of work with no app, no web framework and no server: a fixed clock, a fake clinical system, a
    notifier that keeps messages, and the gateway's tables in an in-memory SQLite database that is thrown away
    at ``close()`` (one outer transaction, rolled back). ``commits`` counts the use case's commits.
    """

    def __init__(
        self,
        system: FakeClinicalSystem | None = None,
        now: dt.datetime = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC),
        settings: dict[str, Any] | None = None,
    ) -> None:
        self._connection = _engine().connect()
        self._outer = self._connection.begin()
        self.session = Session(bind=self._connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        self.clock = FixedClock(now)
        self.system = system or FakeClinicalSystem(now=lambda: self.clock.now())
        self.clinical_systems = FakeClinicalSystems(self.system)
        self.notifier: FakeNotifier = FakeNotifier()
        self.slot_cache = SlotSearchCache(0)
        self.settings = settings or {}
        self.commits = 0
        self.rollbacks = 0

    @property
    def sent(self) -> list[SentEmail]:
        return self.notifier.sent

    def send_email(self, to: str, template: str, subject: str, body: str, **options: Any) -> Any:
        """Queued through the outbox as in the app, and kept in ``sent`` for a test to read at once."""
        self.notifier.send_email(self.session, to, template, subject, body)
        return super().send_email(to, template, subject, body, **options)

    def commit(self) -> None:
        self.commits += 1
        super().commit()

    def rollback(self) -> None:
        self.rollbacks += 1
        super().rollback()

    def audit_actions(self) -> list[str]:
        from patient_online.models import AuditEvent

        self.session.flush()
        return list(self.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))

    def close(self) -> None:
        self.session.close()
        self._outer.rollback()
        self._connection.close()
