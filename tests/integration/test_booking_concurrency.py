"""Rule 10: a slot is booked at most once, whatever the concurrency, on SQLite and on PostgreSQL.

These tests need real commits seen by other connections, so they cannot use the rolled-back ``connection``
fixture: each builds a fresh database, seeds the demo into it and fires simultaneous bookings from threads.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from patient_online import wiring
from patient_online.adapters.demo.models import DemoAppointment, DemoPatient, DemoSlot
from patient_online.domain.appointments import Appointment
from patient_online.domain.errors import SlotUnavailable
from patient_online.extensions import db, make_engine
from patient_online.models import AuditEvent, Notification, Patient, Practice, PrescriptionOrder, User
from patient_online.services import appointments as service
from patient_online.services import prescriptions as rx
from patient_online.services.access import Acting, acting_for, patient_access
from patient_online.wiring import clinical_systems, uow
from tests.conftest import PROJECT_ROOT, TEST_SETTINGS, drop_database, new_database_url

THREADS = 20
AMLODIPINE = "Y02001-P001-M01"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """An app on a database of its own, schema from the models, demo seeded, committed for real."""
    import patient_online.adapters.demo.models  # noqa: F401
    from patient_online import create_app
    from patient_online.adapters.demo.seed import seed
    from patient_online.models import Base

    url = new_database_url(str(request.param), tmp_path)
    engine = make_engine(url, PROJECT_ROOT)
    try:
        Base.metadata.create_all(engine)
        app = create_app({**TEST_SETTINGS, "DATABASE_ENGINE": engine})
        with app.app_context():
            seed(db.session)
            db.scoped.remove()
        yield app
    finally:
        db.scoped.remove()
        engine.dispose()
        drop_database(url)


def _setup(app: Flask, patients: int) -> tuple[int, list[int], str, dt.datetime]:
    """Gateway patients for demo patients of Y02001, and one free online slot a day or more ahead."""
    with app.app_context():
        session = db.session
        practice = session.scalar(select(Practice).where(Practice.ods_code == "Y02001"))
        assert practice is not None
        practice.max_future_appointments = 1000  # only the slot itself may limit these bookings
        user = session.scalar(select(User).where(User.email == "patient.y02001@example.com"))
        assert user is not None
        ids: list[int] = []
        rows = session.scalars(
            select(DemoPatient).where(DemoPatient.practice_ods == "Y02001").order_by(DemoPatient.id).offset(14)
        ).all()
        for row in rows[:patients]:
            patient = Patient(
                practice_id=practice.id,
                nhs_number=row.nhs_number,
                clinical_id=row.id,
                given_name=row.given_name,
                family_name=row.family_name,
                date_of_birth=row.date_of_birth,
                online_account_id=f"T{uuid.uuid4().hex[:12].upper()}",
            )
            session.add(patient)
            session.flush()
            ids.append(patient.id)
        slot = session.scalar(
            select(DemoSlot)
            .where(
                DemoSlot.practice_ods == "Y02001",
                DemoSlot.status == "free",
                DemoSlot.slot_type.in_(practice.online_slot_types),
                DemoSlot.start > dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
            )
            .order_by(DemoSlot.start)
        )
        assert slot is not None
        found = (user.id, ids, slot.id, slot.start)
        session.commit()
        db.scoped.remove()
        return found


def _fire(app: Flask, user_id: int, patient_ids: list[int], slot_id: str, at: dt.datetime, key: Any) -> list[Any]:
    """Book the slot from one thread per patient id, all released at once; each result or exception."""
    barrier = threading.Barrier(len(patient_ids))
    results: list[Any] = [None] * len(patient_ids)

    def attempt(index: int, patient_id: int) -> None:
        with app.app_context():
            session = db.session
            try:
                user = session.get_one(User, user_id)
                patient = session.get_one(Patient, patient_id)
                acting = Acting(user, patient, patient.practice, patient_access(session, patient))
                session.commit()
                barrier.wait(timeout=60)
                results[index] = service.book_appointment(uow(), acting, slot_id, "Concurrency", key(index), at)
            except Exception as exc:
                results[index] = exc
            finally:
                db.scoped.remove()

    threads = [threading.Thread(target=attempt, args=(i, pid)) for i, pid in enumerate(patient_ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not any(t.is_alive() for t in threads), "a booking thread hung"
    return results


def test_many_patients_booking_one_slot_at_once_get_it_exactly_once(fresh_app: Flask) -> None:
    user_id, patient_ids, slot_id, at = _setup(fresh_app, THREADS)
    results = _fire(fresh_app, user_id, patient_ids, slot_id, at, key=lambda i: f"race-{i}")

    booked = [r for r in results if isinstance(r, Appointment)]
    refused = [r for r in results if isinstance(r, SlotUnavailable)]
    assert len(booked) == 1, results
    assert len(refused) == THREADS - 1, [r for r in results if not isinstance(r, Appointment | SlotUnavailable)]
    with fresh_app.app_context():
        session = db.session
        rows = session.scalars(select(DemoAppointment).where(DemoAppointment.slot_id == slot_id)).all()
        assert [(r.id, r.status) for r in rows] == [(booked[0].id, "booked")]
        assert session.get_one(DemoSlot, slot_id).status == "booked"
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "appointment.booked")).all()
        assert [e.detail["appointment_id"] for e in events if e.detail.get("slot_id") == slot_id] == [booked[0].id]
        db.scoped.remove()


def test_one_form_submitted_many_times_at_once_books_once(fresh_app: Flask) -> None:
    user_id, patient_ids, slot_id, at = _setup(fresh_app, 1)
    results = _fire(fresh_app, user_id, patient_ids * 8, slot_id, at, key=lambda i: "one-form")

    assert all(isinstance(r, Appointment) for r in results), results
    assert len({r.id for r in results}) == 1
    with fresh_app.app_context():
        count = db.session.scalar(select(func.count()).where(DemoAppointment.slot_id == slot_id))
        assert count == 1
        assert len(_booked_events(slot_id)) == 1
        assert _confirmations() == 1
        db.scoped.remove()


# Outcomes recorded exactly once (issue 19) ---------------------------------------------------------------------
class SlowTemplate:
    """The demo clinical system, but reading a repeat template takes as long as a real practice's link."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def list_repeat_template(self, patient: Any) -> Any:
        time.sleep(0.08)
        return self._inner.list_repeat_template(patient)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


PAIRS = {"sqlite": 10, "postgres": 40}


def _booked_events(slot_id: str) -> list[AuditEvent]:
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "appointment.booked"))
    return [e for e in events if e.detail.get("slot_id") == slot_id]


def _confirmations(template: str = "appointment_booked") -> int:
    return int(db.session.scalar(select(func.count(Notification.id)).where(Notification.template == template)) or 0)


def _more_slots(app: Flask, count: int) -> list[tuple[str, dt.datetime]]:
    """Free online slots of Y02001 a day or more ahead, soonest first."""
    with app.app_context():
        practice = db.session.scalar(select(Practice).where(Practice.ods_code == "Y02001"))
        assert practice is not None
        rows = db.session.scalars(
            select(DemoSlot)
            .where(
                DemoSlot.practice_ods == "Y02001",
                DemoSlot.status == "free",
                DemoSlot.slot_type.in_(practice.online_slot_types),
                DemoSlot.start > dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
            )
            .order_by(DemoSlot.start)
            .limit(count)
        ).all()
        found = [(r.id, r.start) for r in rows]
        db.scoped.remove()
    assert len(found) == count, "the demo seed should leave enough free slots"
    return found


def test_double_clicked_bookings_are_audited_and_confirmed_exactly_once(
    fresh_app: Flask, request: pytest.FixtureRequest
) -> None:
    """Pairs of the same booking form sent at the same instant: every pair answers with one appointment, and
    writes one audit event and one confirmation (the check and the insert were not atomic before)."""
    pairs = PAIRS["postgres" if "postgres" in request.node.name else "sqlite"]
    user_id, [patient_id], _slot, _at = _setup(fresh_app, 1)
    slots = _more_slots(fresh_app, pairs)
    for n, (slot_id, at) in enumerate(slots):
        results = _fire(fresh_app, user_id, [patient_id, patient_id], slot_id, at, key=lambda i, n=n: f"pair-{n}")
        assert all(isinstance(r, Appointment) for r in results), results
        assert len({r.id for r in results}) == 1
    with fresh_app.app_context():
        doubled = {slot_id: len(_booked_events(slot_id)) for slot_id, _ in slots}
        assert {k: v for k, v in doubled.items() if v != 1} == {}
        assert _confirmations() == pairs
        db.scoped.remove()


def test_double_clicked_orders_both_answer_with_the_one_order(fresh_app: Flask, request: pytest.FixtureRequest) -> None:
    """Pairs of the same order form sent at the same instant: the losing click sees the order, never "you have
    already requested this" (the items it asked for, by the twin's hand)."""
    pairs = PAIRS["postgres" if "postgres" in request.node.name else "sqlite"] // 4
    with fresh_app.app_context():
        user = db.session.scalar(select(User).where(User.email == "patient.y02001@example.com"))
        assert user is not None
        user_id = user.id
        practice = db.session.scalar(select(Practice).where(Practice.ods_code == "Y02001"))
        assert practice is not None
        demo = clinical_systems(fresh_app).system_for(practice)
        db.scoped.remove()
    wiring.override_clinical(fresh_app, "Y02001", SlowTemplate(demo))  # as a real practice's link would be

    def order(index: int, key: str, delay: float, barrier: threading.Barrier, results: list[Any]) -> None:
        with fresh_app.app_context():
            try:
                acting = acting_for(db.session, db.session.get_one(User, user_id), None)
                assert acting is not None
                db.session.commit()
                barrier.wait(timeout=60)
                time.sleep(index * delay)  # the second click, a moment after the first
                results[index] = rx.order_repeats(uow(), acting, [AMLODIPINE], "", key)
            except Exception as exc:
                results[index] = exc
            finally:
                db.scoped.remove()

    for n in range(pairs):
        barrier = threading.Barrier(2)
        results: list[Any] = [None, None]
        key = f"order-pair-{n:04d}-{uuid.uuid4().hex}"
        delay = 0.02 + (n % 4) * 0.01  # the second click lands while the first is at the practice
        threads = [threading.Thread(target=order, args=(i, key, delay, barrier, results)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert all(isinstance(r, rx.OrderResult) for r in results), (n, results)
        assert len({r.order.id for r in results}) == 1
        with fresh_app.app_context():  # withdraw it, so the next pair may order the same medicine
            acting = acting_for(db.session, db.session.get_one(User, user_id), None)
            assert acting is not None
            placed = db.session.get_one(PrescriptionOrder, results[0].order.id)
            rx.cancel_request(uow(), acting, placed.external_id)
            db.scoped.remove()
    with fresh_app.app_context():
        assert db.session.scalar(select(func.count(PrescriptionOrder.id))) == pairs
        assert _confirmations("prescription_ordered") == pairs
        db.scoped.remove()
