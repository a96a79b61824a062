"""Slots, appointments and the practice's booking rules."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from .errors import DomainError

REASON_MAX_LENGTH = 100
LONDON = ZoneInfo("Europe/London")


class DeliveryMode(enum.StrEnum):
    FACE_TO_FACE = "face_to_face"
    TELEPHONE = "telephone"
    VIDEO = "video"

    @property
    def label(self) -> str:
        return {"face_to_face": "Face to face", "telephone": "Telephone", "video": "Video"}[self.value]


class AppointmentStatus(enum.StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    FULFILLED = "fulfilled"
    PENDING = "pending"  # asked for, not yet confirmed by the practice (FHIR "proposed" and "pending")
    DID_NOT_ATTEND = "noshow"
    ENTERED_IN_ERROR = "entered-in-error"  # the practice recorded it by mistake: never shown

    @property
    def label(self) -> str:
        """The status as a patient reads it."""
        return _STATUS_LABELS[self]

    @property
    def shown(self) -> bool:
        """Whether the patient sees an appointment in this status at all."""
        return self is not AppointmentStatus.ENTERED_IN_ERROR


_STATUS_LABELS = {
    AppointmentStatus.BOOKED: "Booked",
    AppointmentStatus.CANCELLED: "Cancelled",
    AppointmentStatus.FULFILLED: "Attended",
    AppointmentStatus.PENDING: "Waiting for the practice to confirm",
    AppointmentStatus.DID_NOT_ATTEND: "Did not attend",
    AppointmentStatus.ENTERED_IN_ERROR: "Recorded in error",
}


@dataclass(frozen=True)
class Clinician:
    id: str
    name: str
    role: str  # "GP", "Practice nurse", ...


@dataclass(frozen=True)
class Slot:
    """A bookable time in a practice's appointment book."""

    id: str
    start: dt.datetime  # aware, UTC
    end: dt.datetime
    slot_type: str
    clinician: Clinician
    delivery_mode: DeliveryMode
    location: str = ""


@dataclass(frozen=True)
class SlotQuery:
    start: dt.datetime
    end: dt.datetime
    slot_types: frozenset[str] = field(default_factory=frozenset)
    clinician_id: str | None = None
    delivery_mode: DeliveryMode | None = None


@dataclass(frozen=True)
class Appointment:
    id: str
    slot: Slot
    status: AppointmentStatus
    reason: str = ""
    version: str = "1"
    booked_at: dt.datetime | None = None
    cancellation_reason: str = ""


@dataclass(frozen=True)
class AppointmentRules:
    """A practice's rules for online booking (design rule 6)."""

    online_slot_types: frozenset[str]
    horizon_days: int = 28
    lead_time_hours: int = 2
    max_future_appointments: int = 2
    cancellation_allowed: bool = True
    cancellation_cutoff_hours: int = 24

    def window(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """The earliest and latest start a patient may book now."""
        return now + dt.timedelta(hours=self.lead_time_hours), now + dt.timedelta(days=self.horizon_days)

    def may_offer(self, slot: Slot, now: dt.datetime) -> bool:
        """Rule 9: only online-bookable types, inside the horizon and the lead time."""
        return bool(self.offered([slot], now))

    def offered(self, slots: Iterable[Slot], now: dt.datetime) -> list[Slot]:
        """Rule 9 for a whole search at once: the slots that ``may_offer`` allows, in their order."""
        earliest, latest = self.window(now)
        types = self.online_slot_types
        return [s for s in slots if s.slot_type in types and earliest <= s.start <= latest]

    def may_cancel(self, appointment: Appointment, now: dt.datetime) -> bool:
        """Rule 10: cancelling is refused inside the cutoff."""
        if not self.cancellation_allowed or appointment.status != AppointmentStatus.BOOKED:
            return False
        return appointment.slot.start - now >= dt.timedelta(hours=self.cancellation_cutoff_hours)

    def may_amend(self, appointment: Appointment, now: dt.datetime) -> bool:
        """Changing the reason follows the cancellation rules: a booked, future appointment outside the cutoff."""
        return self.may_cancel(appointment, now)

    def may_book_more(self, future_booked: int) -> bool:
        """Rule 10: booking is refused at the patient's maximum of future appointments."""
        return future_booked < self.max_future_appointments

    def cancel_refusal(self, appointment: Appointment, now: dt.datetime) -> str:
        """Why the patient may not cancel (or change) this appointment online, in words; "" when they may."""
        if appointment.status == AppointmentStatus.CANCELLED:
            return "it has already been cancelled"
        if appointment.status == AppointmentStatus.PENDING and appointment.slot.start > now:
            return "your GP practice has not confirmed it yet"
        if appointment.status != AppointmentStatus.BOOKED or appointment.slot.start <= now:
            return "it has already taken place"
        if not self.cancellation_allowed:
            return "your GP practice does not take cancellations online"
        if not self.may_cancel(appointment, now):
            return f"it is less than {_hours(self.cancellation_cutoff_hours)} away"
        return ""


def _hours(hours: int) -> str:
    if hours % 24 == 0 and hours >= 48:
        return f"{hours // 24} days"
    if hours == 24:
        return "24 hours"
    return f"{hours} hour" + ("" if hours == 1 else "s")


class ReasonTooLong(DomainError):
    message = f"Enter a reason of {REASON_MAX_LENGTH} characters or fewer"


class BookingLimitReached(DomainError):
    message = "You have booked the most appointments you can have online at one time."


class CancellationRefused(DomainError):
    message = "You cannot cancel this appointment online. Contact your GP practice."


class AmendmentRefused(DomainError):
    message = "You cannot change the reason for this appointment online. Contact your GP practice."


class AmendmentNotOffered(DomainError):
    """The practice's clinical system cannot change an appointment's reason."""

    message = "Your GP practice's system does not let you change the reason for an appointment online."


class CancellationQueued(DomainError):
    """The clinical system could not take the cancellation now; it is kept and sent when the link returns."""

    message = "Your cancellation will be sent to your GP practice as soon as its system is back."


class BookingFailed(DomainError):
    """The clinical system could not take the booking; nothing was booked (or a retry will find it)."""

    message = "We could not book this appointment. Try again in a few minutes."


class BookingUnconfirmed(DomainError):
    """The clinical system took the booking but the gateway could not record it (its database failed).

    The booking is recorded, with its confirmation, the next time the patient's appointments are looked at.
    """

    message = (
        "Your appointment may have been booked, but we could not confirm it. Check your appointments before you "
        "try again: if it is there, it is booked and we will email you a confirmation."
    )


def clean_reason(text: str) -> str:
    """The reason as it will be stored: spaces and line breaks collapsed; refused above the limit (rule 11)."""
    cleaned = " ".join(text.split())
    if len(cleaned) > REASON_MAX_LENGTH:
        raise ReasonTooLong()
    return cleaned


_HELD = frozenset({AppointmentStatus.BOOKED, AppointmentStatus.PENDING})


def is_upcoming(appointment: Appointment, now: dt.datetime) -> bool:
    """A booked (or awaiting confirmation) appointment that has not started yet: the ones that count towards
    the maximum."""
    return appointment.status in _HELD and appointment.slot.start > now


def split_upcoming(
    appointments: Sequence[Appointment], now: dt.datetime
) -> tuple[list[Appointment], list[Appointment]]:
    """Upcoming appointments soonest first; then past and cancelled ones, most recent first. Appointments the
    practice recorded in error are left out."""
    shown = [a for a in appointments if a.status.shown]
    upcoming = sorted((a for a in shown if is_upcoming(a, now)), key=lambda a: (a.slot.start, a.id))
    others = sorted((a for a in shown if not is_upcoming(a, now)), key=lambda a: (a.slot.start, a.id), reverse=True)
    return upcoming, others


@dataclass(frozen=True)
class SlotDay:
    """The slots of one local calendar day."""

    day: dt.date
    slots: tuple[Slot, ...]


def in_time_order(slots: Iterable[Slot]) -> list[Slot]:
    """Slots as a patient choosing a time reads them: by start, then by clinician, never grouped by clinician
    (grouping put a clinician's 4pm above another's 9am)."""
    return sorted(slots, key=lambda s: (s.start, s.clinician.name, s.id))


def group_by_day(slots: Sequence[Slot], tz: dt.tzinfo = LONDON) -> list[SlotDay]:
    """Slots grouped by their local day (Europe/London by default), days and times in order."""
    days: dict[dt.date, list[Slot]] = {}
    for slot in in_time_order(slots):
        days.setdefault(slot.start.astimezone(tz).date(), []).append(slot)
    return [SlotDay(day, tuple(found)) for day, found in sorted(days.items())]


def local_day_bounds(day: dt.date, tz: dt.tzinfo = LONDON) -> tuple[dt.datetime, dt.datetime]:
    """The first instant of a local day and of the day after, in UTC (23 or 25 hours at a clock change)."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)
