"""Appointment reminders with fakes: sent at the set times before the appointment, once however often the job
runs, never for an appointment cancelled meanwhile, skipped when booked after the reminder's time, and by text
(time, place and practice only) for people who chose text messages."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from patient_online.domain.appointments import DeliveryMode, Slot
from patient_online.models import AppointmentReminder, Notification
from patient_online.services import appointments as service
from patient_online.services import contact_preferences as contact
from patient_online.services import reminders
from patient_online.services.access import Acting
from patient_online.services.unit_of_work import FixedClock
from tests.fakes import FakeUnitOfWork
from tests.unit.conftest import acting

REASON = "Painful swollen knee after a fall"


def book(uow: FakeUnitOfWork, who: Acting, sid: str, hours: float) -> tuple[str, dt.datetime]:
    start = uow.now() + dt.timedelta(hours=hours)
    from tests.unit.test_appointment_use_cases import GP

    uow.system.slots[sid] = Slot(
        sid, start, start + dt.timedelta(minutes=10), "Routine", GP, DeliveryMode.FACE_TO_FACE, "Room 4"
    )
    appointment = service.book_appointment(uow, who, sid, REASON, f"key-{sid}", start)
    return appointment.id, start


def at(uow: FakeUnitOfWork, moment: dt.datetime) -> None:
    assert isinstance(uow.clock, FixedClock)
    uow.clock.at = moment


def reminder_mails(uow: FakeUnitOfWork) -> list[Notification]:
    uow.flush()
    return list(
        uow.session.scalars(
            select(Notification).where(Notification.template.like("appointment_reminder%")).order_by(Notification.id)
        )
    )


def test_a_reminder_job_run_twice_sends_each_reminder_once(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    _, start = book(uow, who, "s1", hours=72)
    assert reminders.send_due_reminders(uow).sent == 0  # not due yet
    at(uow, start - dt.timedelta(hours=23))
    assert reminders.send_due_reminders(uow).sent == 1
    assert reminders.send_due_reminders(uow).sent == 0  # run again: nothing twice
    [mail] = reminder_mails(uow)
    assert mail.to == who.user.email and "Reminder: your appointment on" in mail.subject
    assert "Room 4" in mail.body and "cancel" in mail.body and REASON not in mail.body
    assert str(mail.reference).startswith(f"reminder:{who.practice.id}:")
    assert str(mail.reference).endswith(f":24h:{who.user.id}")
    at(uow, start - dt.timedelta(hours=1, minutes=30))
    assert reminders.send_due_reminders(uow).sent == 1  # the 2-hour one
    assert reminders.send_due_reminders(uow).sent == 0
    assert [m.subject for m in reminder_mails(uow)] == [reminder_mails(uow)[0].subject] * 2
    rows = uow.session.scalars(select(AppointmentReminder.hours_before)).all()
    assert sorted(rows) == [2, 24]
    assert uow.audit_actions().count("appointment.reminder_sent") == 2
    at(uow, start + dt.timedelta(minutes=5))
    assert reminders.send_due_reminders(uow).sent == 0  # past


def test_a_cancelled_appointment_gets_no_reminder(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    appointment_id, start = book(uow, who, "s1", hours=72)
    service.cancel_appointment(uow, who, appointment_id, "")
    at(uow, start - dt.timedelta(hours=20))
    report = reminders.send_due_reminders(uow)
    assert report.sent == 0 and reminder_mails(uow) == []


def test_an_appointment_booked_after_the_reminder_time_gets_only_the_later_reminder(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    _, start = book(uow, who, "s1", hours=10)
    assert reminders.send_due_reminders(uow).skipped == 1  # the 24-hour one: booked later than that
    at(uow, start - dt.timedelta(hours=2))
    assert reminders.send_due_reminders(uow).sent == 1
    assert len(reminder_mails(uow)) == 1


def test_reminders_wait_while_the_practice_cannot_be_asked(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    _, start = book(uow, who, "s1", hours=72)
    at(uow, start - dt.timedelta(hours=20))
    uow.system.down = True
    assert reminders.send_due_reminders(uow).unreachable == 1 and reminder_mails(uow) == []
    uow.system.down = False
    assert reminders.send_due_reminders(uow).sent == 1


def test_the_reminder_times_come_from_the_settings(uow: FakeUnitOfWork) -> None:
    uow.settings = {"REMINDER_HOURS": [48]}
    who = acting(uow)
    _, start = book(uow, who, "s1", hours=72)
    at(uow, start - dt.timedelta(hours=47))
    assert reminders.send_due_reminders(uow).sent == 1
    at(uow, start - dt.timedelta(hours=1))
    assert reminders.send_due_reminders(uow).sent == 0


def test_a_reminder_by_text_says_time_place_and_practice_only(uow: FakeUnitOfWork) -> None:
    uow.settings = {"SECRET_KEY": "k"}
    who = acting(uow)
    contact.start_mobile_change(uow, who.user, "07700 900123")
    sms = uow.session.scalars(select(Notification.body).where(Notification.channel == "sms")).one()
    code = re.search(r"\b(\d{6})\b", sms)[1]  # type: ignore[index]
    contact.confirm_mobile(uow, who.user, code)
    contact.set_channels(uow, who.user, {contact.APPOINTMENTS: "both"})
    _, start = book(uow, who, "s1", hours=72)
    at(uow, start - dt.timedelta(hours=20))
    assert reminders.send_due_reminders(uow).sent == 1
    [mail, text] = reminder_mails(uow)  # email and a text: they chose both for appointments
    assert mail.channel == "email" and text.channel == "sms" and text.to == "+447700900123"
    assert who.practice.name in text.body and "Room 4" in text.body and REASON not in text.body
