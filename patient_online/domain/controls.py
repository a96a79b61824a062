"""A practice's service switches and rules, and the limits that keep them sensible (design rules 5-8)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

from .access import Service
from .record import EARLIEST_PROSPECTIVE_START, RecordLevel
from .waitlist import DEFAULT_HOLD_MINUTES, HOLD_MINUTES_RANGE

MESSAGE_MAX_LENGTH = 300
REASON_MAX_LENGTH = 500
NEVER_ONLINE_MAX_ITEMS = 50
NEVER_ONLINE_ITEM_MAX_LENGTH = 100
DEFAULT_LEVEL_CHOICES = (RecordLevel.NONE, RecordLevel.SUMMARY, RecordLevel.DETAILED, RecordLevel.FULL)


@dataclass(frozen=True)
class Limit:
    """The allowed range of one numeric rule, and why each end is where it is."""

    low: int
    high: int
    unit: str
    too_low: str
    too_high: str


LIMITS: dict[str, Limit] = {
    "booking_horizon_days": Limit(
        1,
        90,
        "days",
        "Booking horizon must be 1 day or more, so patients can book at least a day ahead",
        "Booking horizon must be 90 days or fewer: appointment books are not set up that far ahead, "
        "so patients would be offered slots that may change",
    ),
    "min_lead_time_hours": Limit(
        0,
        168,
        "hours",
        "Minimum lead time cannot be negative. Enter 0 to let patients book up to the start of an appointment",
        "Minimum lead time must be 168 hours (7 days) or fewer, or patients could not book anything this week",
    ),
    "max_future_appointments": Limit(
        1,
        10,
        "appointments",
        "Maximum future appointments must be 1 or more. To stop online booking, switch online appointments off "
        "on the services page",
        "Maximum future appointments must be 10 or fewer, so one patient cannot hold many slots",
    ),
    "cancellation_cutoff_hours": Limit(
        0,
        168,
        "hours",
        "Cancellation cutoff cannot be negative. Enter 0 to let patients cancel up to the start of an appointment",
        "Cancellation cutoff must be 168 hours (7 days) or fewer, or patients could not cancel appointments "
        "booked for this week",
    ),
    "turnaround_working_days": Limit(
        1,
        10,
        "working days",
        "Turnaround must be 1 working day or more: the practice needs time to check each request",
        "Turnaround must be 10 working days or fewer, so patients do not run out of medicine",
    ),
    "max_note_length": Limit(
        0,
        1000,
        "characters",
        "Maximum note length cannot be negative. Enter 0 if patients cannot add a note",
        "Maximum note length must be 1000 characters or fewer",
    ),
    "waitlist_hold_minutes": Limit(
        HOLD_MINUTES_RANGE[0],
        HOLD_MINUTES_RANGE[1],
        "minutes",
        f"An offer must be held for {HOLD_MINUTES_RANGE[0]} minutes or more, so patients have time to read the "
        "message and accept it",
        f"An offer must be held for {HOLD_MINUTES_RANGE[1]} minutes or fewer, or a freed time could go unused "
        "while it waits",
    ),
}

LABELS = {
    "online_slot_types": "Appointment types patients can book online",
    "booking_horizon_days": "Booking horizon",
    "min_lead_time_hours": "Minimum lead time",
    "max_future_appointments": "Maximum future appointments per patient",
    "cancellation_allowed": "Patients can cancel online",
    "cancellation_cutoff_hours": "Cancellation cutoff",
    "turnaround_working_days": "Turnaround",
    "max_note_length": "Maximum note length",
    "never_online": "Medicines never orderable online",
    "record_access_start": "Earliest date of record entries shown",
    "waitlist_enabled": "Freed times offered to patients waiting for an earlier appointment",
    "waitlist_hold_minutes": "How long an offer is held (minutes)",
}


@dataclass(frozen=True)
class PracticeRules:
    """Everything a practice manager sets on /manage/rules."""

    online_slot_types: tuple[str, ...]
    booking_horizon_days: int
    min_lead_time_hours: int
    max_future_appointments: int
    cancellation_allowed: bool
    cancellation_cutoff_hours: int
    turnaround_working_days: int
    max_note_length: int
    never_online: tuple[str, ...]
    record_access_start: dt.date
    waitlist_enabled: bool = False  # earlier appointments: freed times offered to patients waiting
    waitlist_hold_minutes: int = DEFAULT_HOLD_MINUTES

    def changes_from(self, old: PracticeRules) -> dict[str, tuple[object, object]]:
        """The fields that really differ from ``old``, as (old, new) pairs.

        The lists are compared as sets: the same appointment types or medicines in another order (the form lists
        them sorted, the practice may have stored them as first typed) are no change."""
        return {
            f.name: (getattr(old, f.name), getattr(self, f.name))
            for f in fields(self)
            if not _same(f.name, getattr(old, f.name), getattr(self, f.name))
        }


UNORDERED_RULES = frozenset({"online_slot_types", "never_online"})


def _same(name: str, old: object, new: object) -> bool:
    if name in UNORDERED_RULES and isinstance(old, tuple) and isinstance(new, tuple):
        return set(old) == set(new)
    return old == new


def clean_list(lines: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """One entry a line, trimmed, lower-cased, without blanks or repeats, in the order typed."""
    items = lines.splitlines() if isinstance(lines, str) else list(lines)
    seen: dict[str, None] = {}
    for item in items:
        word = " ".join(item.split()).lower()
        if word:
            seen.setdefault(word, None)
    return tuple(seen)


def rule_problems(rules: PracticeRules, today: dt.date, offered_types: frozenset[str] | None = None) -> dict[str, str]:
    """Each rule that is out of bounds, with a message that says what to do and why (empty when all is well)."""
    problems: dict[str, str] = {}
    for name, limit in LIMITS.items():
        value = getattr(rules, name)
        if value < limit.low:
            problems[name] = limit.too_low
        elif value > limit.high:
            problems[name] = limit.too_high
    if not rules.online_slot_types:
        problems["online_slot_types"] = (
            "Choose at least one type of appointment patients can book online, "
            "or switch online appointments off on the services page"
        )
    elif offered_types is not None and not set(rules.online_slot_types) <= offered_types:
        unknown = sorted(set(rules.online_slot_types) - offered_types)
        problems["online_slot_types"] = f"Choose from the appointment types in your clinical system ({unknown[0]})"
    if len(rules.never_online) > NEVER_ONLINE_MAX_ITEMS:
        problems["never_online"] = f"Enter {NEVER_ONLINE_MAX_ITEMS} medicines or fewer"
    elif any(len(item) > NEVER_ONLINE_ITEM_MAX_LENGTH for item in rules.never_online):
        problems["never_online"] = f"Enter each medicine in {NEVER_ONLINE_ITEM_MAX_LENGTH} characters or fewer"
    if rules.record_access_start < EARLIEST_PROSPECTIVE_START:
        problems["record_access_start"] = (
            "Earliest date must be 31 October 2023 or later: prospective record access started on that date"
        )
    elif rules.record_access_start > today:
        problems["record_access_start"] = "Earliest date must be today or in the past"
    return problems


@dataclass(frozen=True)
class SwitchSetting:
    """One service switch as the practice manager wants it."""

    service: Service
    enabled: bool
    message: str = ""
    off_reason: str = ""
    expected_return: dt.date | None = None
    default_level: RecordLevel | None = None  # record access only

    @property
    def below_contract(self) -> bool:
        """Off (or, for the record, no access by default) for a service the GP contract requires."""
        if not self.service.contractual:
            return False
        return not self.enabled or (self.service is Service.RECORD and self.default_level is RecordLevel.NONE)


def switch_problems(setting: SwitchSetting, today: dt.date) -> dict[str, str]:
    """What must be fixed before the switch can be saved: keyed by field name."""
    problems: dict[str, str] = {}
    label = setting.service.phrase
    if len(setting.message) > MESSAGE_MAX_LENGTH:
        problems["message"] = f"Enter a message of {MESSAGE_MAX_LENGTH} characters or fewer"
    if setting.service is Service.RECORD and setting.default_level not in DEFAULT_LEVEL_CHOICES:
        problems["default_level"] = "Choose what newly verified adults see of their record"
    if setting.below_contract:
        if not setting.off_reason.strip():
            problems["off_reason"] = f"Enter why {label} will be below what the GP contract requires"
        elif len(setting.off_reason) > REASON_MAX_LENGTH:
            problems["off_reason"] = f"Enter a reason of {REASON_MAX_LENGTH} characters or fewer"
        if setting.expected_return is None:
            problems["expected_return"] = f"Enter the date you expect {label} to be back"
        elif setting.expected_return < today:
            problems["expected_return"] = "Expected date of return must be today or in the future"
    return problems


def next_bank_holidays(today: dt.date, count: int = 3) -> list[tuple[dt.date, str]]:
    """The next England and Wales bank holidays, which never count as working days for a turnaround."""
    import holidays

    found = holidays.country_holidays("GB", subdiv="ENG", years=(today.year, today.year + 1))
    upcoming = sorted((day, str(name)) for day, name in found.items() if day >= today)
    return upcoming[:count]


OFF_MEANS = {
    Service.APPOINTMENTS: "Patients cannot book, change or cancel appointments online.",
    Service.PRESCRIPTIONS: "Patients cannot order repeat prescriptions online.",
    Service.RECORD: "Patients cannot see any of their GP record online.",
    Service.PROXY: "Nobody can act online for someone else, and no one can ask to.",
}


def setting_words(setting: SwitchSetting) -> str:
    """A switch as it stands, in one line a practice manager reads (the summary of the services page)."""
    if not setting.enabled:
        if setting.message.strip():
            return f"Patients see your message: “{setting.message.strip()}”"
        return "Patients are told the practice does not offer it online."
    if setting.service is Service.RECORD and setting.default_level is not None:
        return f"Newly verified adults get: {setting.default_level.label.lower()}."
    return "Every patient of the practice can use it."
