"""Appointment reminders: at set times before each appointment booked through the gateway (24 and 2 hours by
default, setting ``REMINDER_HOURS``), once each, never for an appointment cancelled meanwhile.

The gateway knows the appointments it booked (``booking_record``), not their times: the practice's clinical
system is asked for each patient's upcoming appointments, with no database transaction open, just before any
reminder is sent, so a cancelled or moved appointment is seen as it is now. A reminder is one row of
``appointment_reminder`` (unique per appointment and time before it) written with its message in one
transaction: a second run, or two workers at once, cannot send it twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from patient_online.domain.appointments import Appointment, AppointmentStatus
from patient_online.domain.errors import ClinicalSystemUnavailable, DomainError
from patient_online.domain.patients import PatientRef
from patient_online.models import AccountLink, AppointmentReminder, BookingRecord, Patient, Practice, User

from .unit_of_work import AbstractUnitOfWork

log = logging.getLogger("patient_online.reminders")

DEFAULT_HOURS = (24, 2)
LOOK_BACK = dt.timedelta(days=120)  # bookings older than this are long past
BOOKED_ACTIONS = ("appointment.booked", "appointment.rescheduled")
SENT = "sent"
SKIPPED = "skipped"  # booked after the reminder's time, or cancelled: never sent


@dataclass(frozen=True)
class ReminderReport:
    sent: int = 0
    skipped: int = 0
    unreachable: int = 0  # patients whose practice could not be asked now: tried on the next run

    def __str__(self) -> str:
        return f"reminders sent {self.sent}, skipped {self.skipped}, practices unreachable for {self.unreachable}"


def reminder_hours(uow: AbstractUnitOfWork) -> list[int]:
    return sorted({int(h) for h in uow.setting("REMINDER_HOURS", DEFAULT_HOURS) or ()}, reverse=True)


def sms_text(practice_name: str, start: dt.datetime, where: str) -> str:
    """A reminder by text: time, place and practice only (never the reason or anything clinical)."""
    from .appointments.common import when

    return (
        f"Reminder from {practice_name}: you have an appointment on {when(start)}, {where}. "
        "To cancel, sign in to Patient Online."
    )


def send_due_reminders(uow: AbstractUnitOfWork) -> ReminderReport:
    """Send every reminder that is due now. Safe to run as often as wanted, by several workers at once."""
    hours = reminder_hours(uow)
    if not hours:
        return ReminderReport()
    now = uow.now()
    done: dict[tuple[int, str], set[int]] = defaultdict(set)
    for practice_id, ref, h in uow.session.execute(
        select(AppointmentReminder.practice_id, AppointmentReminder.appointment_ref, AppointmentReminder.hours_before)
        .join(
            BookingRecord,
            (BookingRecord.practice_id == AppointmentReminder.practice_id)
            & (BookingRecord.appointment_ref == AppointmentReminder.appointment_ref),
        )
        .where(BookingRecord.created_at >= now - LOOK_BACK)
    ).tuples():
        done[(practice_id, ref)].add(h)
    waiting: dict[int, list[BookingRecord]] = defaultdict(list)
    for record in uow.session.scalars(
        select(BookingRecord).where(
            BookingRecord.created_at >= now - LOOK_BACK, BookingRecord.action.in_(BOOKED_ACTIONS)
        )
    ):
        if set(hours) - done[(record.practice_id, record.appointment_ref)]:
            waiting[record.patient_id].append(record)
    patients = {
        p.id: (p, p.practice, PatientRef(p.practice.ods_code, p.nhs_number, p.clinical_id))
        for p in uow.session.scalars(
            select(Patient).options(joinedload(Patient.practice)).where(Patient.id.in_(list(waiting)))
        )
    }
    uow.release()  # the clinical systems are asked with no transaction open

    sent = skipped = unreachable = 0
    for patient_id, records in waiting.items():
        patient, practice, patient_ref = patients[patient_id]
        if uow.in_transaction:
            uow.commit()
        try:
            upcoming = uow.clinical(practice).list_appointments(patient_ref, now)
        except (ClinicalSystemUnavailable, DomainError):
            unreachable += 1
            continue
        by_id = {a.id: a for a in upcoming}
        for record in records:
            appointment = by_id.get(record.appointment_ref)
            for h in hours:
                if h in done[(record.practice_id, record.appointment_ref)]:
                    continue
                outcome = _remind(uow, practice, patient, record, appointment, h, now)
                sent += outcome == SENT
                skipped += outcome == SKIPPED
    return ReminderReport(sent, skipped, unreachable)


def _remind(
    uow: AbstractUnitOfWork,
    practice: Practice,
    patient: Patient,
    record: BookingRecord,
    appointment: Appointment | None,
    hours_before: int,
    now: dt.datetime,
) -> str:
    """Send (or skip for good) one reminder if it is due; "" when it is not due yet."""
    if appointment is None or appointment.status is not AppointmentStatus.BOOKED:
        # Cancelled, or no longer upcoming: no reminder now. Nothing is written: a list that missed it for a
        # moment does not cost the patient their reminder, and past appointments drop out after LOOK_BACK.
        return ""
    start = appointment.slot.start
    if now < start - dt.timedelta(hours=hours_before) or now >= start:
        return ""
    status = SENT
    booked_at = appointment.booked_at or record.created_at
    if booked_at > start - dt.timedelta(hours=hours_before):
        status = SKIPPED  # booked after this reminder's time: the confirmation was reminder enough
    uow.writing()
    try:
        uow.session.add(
            AppointmentReminder(
                practice_id=practice.id,
                appointment_ref=record.appointment_ref,
                patient_id=patient.id,
                hours_before=hours_before,
                starts_at=start,
                status=status,
            )
        )
        uow.flush()
    except IntegrityError:  # another run sent it a moment ago
        uow.rollback()
        return ""
    if status == SENT:
        _send(uow, practice, patient, record, appointment, hours_before)
        uow.audit(
            "appointment.reminder_sent",
            actor_role="system",
            patient_id=patient.id,
            practice_id=practice.id,
            hours_before=hours_before,
        )
    uow.commit()
    return status


def _send(
    uow: AbstractUnitOfWork,
    practice: Practice,
    patient: Patient,
    record: BookingRecord,
    appointment: Appointment,
    hours_before: int,
) -> None:
    """The reminder to each account linked to the patient: by email, and by text where they chose it."""
    from . import contact_preferences as contact
    from .appointments.common import call, describe, when

    key = f"reminder:{practice.id}:{record.appointment_ref}:{hours_before}h"
    where = appointment.slot.location or practice.name
    base = str(uow.setting("SERVICE_URL", "") or "").rstrip("/")
    cancel = (
        f"To cancel it, go to {base}/appointments/{appointment.id}/cancel (you will be asked to sign in)"
        if base
        else "To cancel it, sign in to Patient Online and choose Appointments"
    )
    users = uow.session.scalars(
        select(User)
        .join(AccountLink, AccountLink.user_id == User.id)
        .where(AccountLink.patient_id == patient.id, AccountLink.status == "active", User.active.is_(True))
        .order_by(User.id)
    ).all()
    for user in users:
        if contact.wants(uow, user.id, contact.APPOINTMENTS, "email"):
            body = "\n\n".join(
                [
                    f"This is a reminder of your appointment: {describe(appointment, practice)}.",
                    f"If you cannot come, please cancel it so that someone else can have it. {cancel}, or "
                    f"{call(practice)}.",
                    "If you need help now, use NHS 111 online or call 111. In an emergency, call 999.",
                ]
            )
            uow.send_email(
                user.email,
                "appointment_reminder",
                f"Reminder: your appointment on {when(appointment.slot.start)}",
                body,
                key=f"{key}:{user.id}",
                practice_id=practice.id,
            )
        mobile = contact.verified_mobile(uow, user.id)
        if mobile and contact.wants(uow, user.id, contact.APPOINTMENTS, "sms"):
            uow.send_sms(
                mobile,
                "appointment_reminder_sms",
                sms_text(practice.name, appointment.slot.start, where),
                key=f"{key}:{user.id}:sms",
                practice_id=practice.id,
            )
