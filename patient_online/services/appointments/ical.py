"""An appointment as an iCalendar file, for the patient's own calendar."""

from __future__ import annotations

import datetime as dt

from icalendar import Calendar, Event

from patient_online.domain.appointments import LONDON, Appointment, AppointmentStatus, DeliveryMode
from patient_online.models import Practice

from ..access import Acting
from ..unit_of_work import AbstractUnitOfWork
from .common import call
from .viewing import get_appointment


def calendar_file(uow: AbstractUnitOfWork, acting: Acting, appointment_id: str) -> tuple[str, bytes]:
    """An .ics file for one of the patient's appointments: its file name and content."""
    item = get_appointment(uow, acting, appointment_id, audited=False)
    local = item.appointment.slot.start.astimezone(LONDON)
    return f"appointment-{local:%Y-%m-%d-%H%M}.ics", appointment_ics(item.appointment, acting.practice, uow.now())


def appointment_ics(appointment: Appointment, practice: Practice, now: dt.datetime | None = None) -> bytes:
    """iCalendar for one appointment, in Europe/London time with its VTIMEZONE, without the (clinical) reason."""
    slot = appointment.slot
    address = ", ".join(p for p in (practice.name, practice.address, practice.postcode) if p)
    where = {
        DeliveryMode.FACE_TO_FACE: address,
        DeliveryMode.TELEPHONE: "Telephone appointment: the practice will call you",
        DeliveryMode.VIDEO: "Video appointment: the practice will send you a link",
    }[slot.delivery_mode]
    calendar = Calendar()
    calendar.add("prodid", "-//Patient Online gateway//Appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"{appointment.id}@{practice.ods_code.lower()}.patient-online")
    event.add("dtstamp", now if now is not None else dt.datetime.now(dt.UTC))
    event.add("dtstart", slot.start.astimezone(LONDON))
    event.add("dtend", slot.end.astimezone(LONDON))
    event.add("summary", f"{slot.slot_type} with {slot.clinician.name} ({practice.name})")
    event.add("location", where)
    event.add(
        "description",
        f"{slot.slot_type} with {slot.clinician.name} ({slot.clinician.role}), {slot.delivery_mode.label.lower()}.\n"
        f"To change or cancel it, sign in to Patient Online or {call(practice)}.",
    )
    status = {AppointmentStatus.CANCELLED: "CANCELLED", AppointmentStatus.PENDING: "TENTATIVE"}
    event.add("status", status.get(appointment.status, "CONFIRMED"))  # pending: the practice has not confirmed it
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())
