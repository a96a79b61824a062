"""Slots, appointments and the practice's booking rules."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

REASON_MAX_LENGTH = 100


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
        earliest, latest = self.window(now)
        return slot.slot_type in self.online_slot_types and earliest <= slot.start <= latest

    def may_cancel(self, appointment: Appointment, now: dt.datetime) -> bool:
        """Rule 10: cancelling is refused inside the cutoff."""
        if not self.cancellation_allowed or appointment.status != AppointmentStatus.BOOKED:
            return False
        return appointment.slot.start - now >= dt.timedelta(hours=self.cancellation_cutoff_hours)
