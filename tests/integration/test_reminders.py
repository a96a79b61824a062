"""Appointment reminders on the real database (SQLite and PostgreSQL): the unique reminder row makes each
reminder once even when two runs race; a cancelled appointment gets none; `flask reminders run` sends them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from patient_online import wiring
from patient_online.domain.appointments import Appointment, AppointmentStatus, Clinician, DeliveryMode, Slot
from patient_online.domain.patients import PatientRef
from patient_online.models import AppointmentReminder, BookingRecord, Notification, Patient
from patient_online.services import reminders
from patient_online.services.unit_of_work import FixedClock
from tests.fakes import FakeClinicalSystem

PATIENT = "patient.y02001@example.com"
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
START = NOW + dt.timedelta(hours=20)


@pytest.fixture
def fake(app: Any) -> Iterator[FakeClinicalSystem]:
    system = FakeClinicalSystem(now=lambda: NOW)
    wiring.override_clinical(app, "Y02001", system)
    yield system
    wiring.override_clinical(app, "Y02001", None)


def booked(session: Any, fake: FakeClinicalSystem, status: AppointmentStatus = AppointmentStatus.BOOKED) -> Patient:
    patient = session.scalars(select(Patient).where(Patient.clinical_id == "Y02001-P001")).one()
    slot = Slot(
        "S1",
        START,
        START + dt.timedelta(minutes=10),
        "Routine",
        Clinician("C1", "Dr Amara Okafor", "GP"),
        DeliveryMode.FACE_TO_FACE,
        "Room 4",
    )
    appointment = Appointment("A1", slot, status, reason="Sore knee", booked_at=NOW - dt.timedelta(days=3))
    fake.appointments["k1"] = (PatientRef("Y02001", patient.nhs_number, patient.clinical_id), appointment)
    session.add(
        BookingRecord(
            practice_id=patient.practice_id,
            appointment_ref="A1",
            patient_id=patient.id,
            action="appointment.booked",
            created_at=NOW - dt.timedelta(days=3),
        )
    )
    session.commit()
    return patient


def reminder_count(session: Any) -> int:
    return int(
        session.scalar(select(func.count(Notification.id)).where(Notification.template == "appointment_reminder")) or 0
    )


def test_a_reminder_job_run_twice_sends_once(app_ctx: Any, uow: Any, session: Any, fake: FakeClinicalSystem) -> None:
    booked(session, fake)
    uow.clock = FixedClock(NOW)
    assert reminders.send_due_reminders(uow).sent == 1
    assert reminders.send_due_reminders(uow).sent == 0
    [mail] = session.scalars(select(Notification).where(Notification.template == "appointment_reminder")).all()
    assert mail.to == PATIENT and "Room 4" in mail.body and "Sore knee" not in mail.body
    assert session.scalar(select(AppointmentReminder.hours_before)) == 24


def test_two_runs_racing_for_one_reminder_send_it_once(
    app_ctx: Any, uow: Any, session: Any, fake: FakeClinicalSystem
) -> None:
    patient = booked(session, fake)
    uow.clock = FixedClock(NOW)
    record = session.scalars(select(BookingRecord)).one()
    [(_, appointment)] = fake.appointments.values()
    first = reminders._remind(uow, patient.practice, patient, record, appointment, 24, NOW)
    second = reminders._remind(uow, patient.practice, patient, record, appointment, 24, NOW)  # lost the race
    assert (first, second) == (reminders.SENT, "")
    assert reminder_count(session) == 1


def test_a_cancelled_appointment_gets_no_reminder(
    app_ctx: Any, uow: Any, session: Any, fake: FakeClinicalSystem
) -> None:
    booked(session, fake, AppointmentStatus.CANCELLED)
    uow.clock = FixedClock(NOW)
    assert reminders.send_due_reminders(uow).sent == 0
    assert reminder_count(session) == 0


def test_flask_reminders_run(app: Any, session: Any, fake: FakeClinicalSystem) -> None:
    with app.app_context():
        booked(session, fake)
    app.config["REMINDER_HOURS"] = [24 * 365]  # due now, whatever the real time
    result = app.test_cli_runner().invoke(args=["reminders", "run"])
    assert result.exit_code == 0 and "reminders sent" in result.output
