"""Earlier appointments (the waitlist): a patient asks to be offered an earlier time, and a free time that
matches what they can do is offered to the first patient in the practice's queue, held for them a few minutes.

The rules, with no database and no clinical system:

- a ``Wish`` is what the patient can do: a type of appointment (or any type the practice offers online), the
  days of the week, the parts of the day, and how far ahead; with the appointment it would replace, if any, a
  time is only worth offering when it is earlier than that one;
- ``matches`` says whether a free slot suits a wish now, within the practice's rules for online booking;
- ``first_in_queue`` picks whom a slot is offered to: the longest waiting patient it suits who holds no other
  offer and was not offered this slot before (an offer not taken in time moves on, and never comes back).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .appointments import LONDON, AppointmentRules, Slot
from .errors import InputError

DEFAULT_HOLD_MINUTES = 15
HOLD_MINUTES_RANGE = (5, 120)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MAX_WEEKS_AHEAD = 8


class DayPart(enum.StrEnum):
    """Parts of the day a patient can come, in London time."""

    MORNING = "morning"  # before noon
    AFTERNOON = "afternoon"  # noon to 5pm
    EVENING = "evening"  # 5pm and later

    @property
    def label(self) -> str:
        return {
            "morning": "Mornings (before 12pm)",
            "afternoon": "Afternoons (12pm to 5pm)",
            "evening": "Evenings (after 5pm)",
        }[self.value]

    @classmethod
    def of(cls, moment: dt.datetime) -> DayPart:
        hour = moment.astimezone(LONDON).hour
        if hour < 12:
            return cls.MORNING
        return cls.AFTERNOON if hour < 17 else cls.EVENING


class EntryStatus(enum.StrEnum):
    WAITING = "waiting"  # in the queue
    OFFERED = "offered"  # holds an offer now
    BOOKED = "booked"  # took an offer: done
    LEFT = "left"  # left the list
    ENDED = "ended"  # the time they could wait has passed, or the practice turned the list off


class OfferStatus(enum.StrEnum):
    HELD = "held"  # offered, waiting for the patient's answer
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"  # not answered in time: moves on to the next patient
    GONE = "gone"  # the time was taken meanwhile (booked at the practice, or changed)


ACTIVE_ENTRY = (EntryStatus.WAITING, EntryStatus.OFFERED)


@dataclass(frozen=True)
class Wish:
    """What a patient can do, as they told us."""

    slot_type: str  # "" for any type the practice offers online
    weekdays: frozenset[int]  # 0 Monday .. 6 Sunday
    parts: frozenset[DayPart]
    until: dt.date  # the last day they would take
    earlier_than: dt.datetime | None = None  # the start of the appointment the offer would replace

    def __post_init__(self) -> None:
        problems = {}
        if not self.weekdays or not all(0 <= d <= 6 for d in self.weekdays):
            problems["weekdays"] = "Choose at least one day you can come"
        if not self.parts:
            problems["parts"] = "Choose at least one time of day you can come"
        if problems:
            raise InputError(next(iter(problems.values())), next(iter(problems)), fields=problems)


def weeks_ahead_choices(horizon_days: int) -> list[int]:
    """How far ahead a patient may ask, in weeks: never past the practice's booking horizon."""
    most = max(1, min(MAX_WEEKS_AHEAD, horizon_days // 7))
    return list(range(1, most + 1))


def wish_until(today: dt.date, weeks: int, horizon_days: int) -> dt.date:
    """The last day of a wish of ``weeks`` ahead, within the horizon."""
    if weeks not in weeks_ahead_choices(horizon_days):
        raise InputError("Choose how far ahead you could come", "weeks")
    return today + dt.timedelta(days=min(weeks * 7, horizon_days))


def matches(slot: Slot, wish: Wish, rules: AppointmentRules, now: dt.datetime) -> bool:
    """Whether a free slot suits the wish, and the practice would let the patient book it online now."""
    if not rules.may_offer(slot, now):
        return False
    if wish.slot_type and slot.slot_type != wish.slot_type:
        return False
    local = slot.start.astimezone(LONDON)
    if local.weekday() not in wish.weekdays or DayPart.of(slot.start) not in wish.parts:
        return False
    if local.date() > wish.until:
        return False
    if wish.earlier_than is None:
        return True
    # Moving an appointment cancels it: once it is inside the practice's cutoff, no offer could move it.
    may_still_move = wish.earlier_than - now >= dt.timedelta(hours=rules.cancellation_cutoff_hours)
    return may_still_move and slot.start < wish.earlier_than


@dataclass(frozen=True)
class Waiting:
    """One patient in the queue, as ``first_in_queue`` sees them."""

    entry_id: int
    wish: Wish
    holds_offer: bool = False
    offered_before: frozenset[str] = field(default_factory=frozenset)  # slot ids offered to them already


def first_in_queue(slot: Slot, queue: Sequence[Waiting], rules: AppointmentRules, now: dt.datetime) -> Waiting | None:
    """Whom the slot is offered to: the first (longest waiting) patient it suits, who holds no other offer and
    was not offered this slot before."""
    return next(
        (
            w
            for w in queue
            if not w.holds_offer and slot.id not in w.offered_before and matches(slot, w.wish, rules, now)
        ),
        None,
    )


def hold_minutes(value: int | None) -> int:
    """The practice's hold, within its limits."""
    low, high = HOLD_MINUTES_RANGE
    return DEFAULT_HOLD_MINUTES if value is None else max(low, min(high, int(value)))


def describe_wish(wish: Wish, type_label: str = "") -> str:
    """The wish in words, for the patient's page and messages: "any appointment, Mondays or Tuesdays,
    mornings, until Friday 18 December"."""
    days = _join(f"{WEEKDAYS[d]}s" for d in sorted(wish.weekdays)) if len(wish.weekdays) < 7 else "any day"
    parts = _join(p.value + "s" for p in DayPart if p in wish.parts) if len(wish.parts) < 3 else "any time of day"
    until = wish.until
    kind = type_label or wish.slot_type or "any type of appointment"
    return f"{kind}, {days}, {parts}, until {until:%A} {until.day} {until:%B}"


def _join(words: Iterable[str]) -> str:
    found = list(words)
    return found[0] if len(found) == 1 else ", ".join(found[:-1]) + " or " + found[-1]
