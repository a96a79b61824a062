"""Online appointments: find free slots, book, cancel, reschedule, add to a calendar (design rules 6, 9-11).

Everything goes through the practice's appointment-book port, so the demo and GP Connect adapters behave
alike. Each use case ends its read transaction before it calls the clinical system, and records the outcome
(audit event and confirmation message) in one transaction afterwards.

- ``finding`` (a type, a day, a time; or a week at a time), ``booking``, ``viewing``, ``cancelling``,
  ``rescheduling``, ``amending`` (the reason): the patient's use cases;
- ``queued_cancellation``: a cancellation kept in the outbox while the practice's link is down;
- ``ical``: an appointment as a calendar file;
- ``reception``: the practice's online bookings, from the audit trail.
"""

from __future__ import annotations

from patient_online.domain.appointments import LONDON

from .amending import amend_appointment
from .booking import book_appointment, prepare_booking
from .cancelling import cancel_appointment
from .common import BOOKING_ACTIONS, HISTORY_DAYS, WEEK_DAYS, PracticeContact, describe, rules_for
from .finding import (
    DAYS_SHOWN,
    BookingStart,
    DayChoice,
    DayPage,
    SlotFilter,
    SlotPage,
    TimePage,
    find_days,
    find_slots,
    find_times,
    start_booking,
)
from .ical import appointment_ics, calendar_file
from .queued_cancellation import CANCEL_KIND
from .reception import RECEPTION_ACTIONS, BookingDay, BookingLine, practice_bookings
from .rescheduling import RescheduleOutcome, reschedule_appointment
from .viewing import AppointmentItem, AppointmentList, get_appointment, list_appointments

__all__ = [
    "BOOKING_ACTIONS",
    "CANCEL_KIND",
    "DAYS_SHOWN",
    "HISTORY_DAYS",
    "LONDON",
    "RECEPTION_ACTIONS",
    "WEEK_DAYS",
    "AppointmentItem",
    "AppointmentList",
    "BookingDay",
    "BookingLine",
    "BookingStart",
    "DayChoice",
    "DayPage",
    "PracticeContact",
    "RescheduleOutcome",
    "SlotFilter",
    "SlotPage",
    "TimePage",
    "amend_appointment",
    "appointment_ics",
    "book_appointment",
    "calendar_file",
    "cancel_appointment",
    "describe",
    "find_days",
    "find_slots",
    "find_times",
    "get_appointment",
    "list_appointments",
    "practice_bookings",
    "prepare_booking",
    "reschedule_appointment",
    "rules_for",
    "start_booking",
]
