"""Repeat medication, what may be ordered online, and when it will be ready."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import holidays


class PrescriptionType(enum.StrEnum):
    REPEAT = "repeat"
    REPEAT_DISPENSING = "repeat_dispensing"
    ACUTE = "acute"


class RequestStatus(enum.StrEnum):
    QUEUED = "queued"  # kept in the outbox until the clinical system takes it
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    ISSUED = "issued"
    CANCELLED = "cancelled"
    FAILED = "failed"  # the outbox gave up: the practice never received it

    @property
    def label(self) -> str:
        return {
            "queued": "Waiting to be sent to your GP practice",
            "requested": "Requested",
            "approved": "Approved",
            "rejected": "Rejected",
            "issued": "Sent to pharmacy",
            "cancelled": "Cancelled",
            "failed": "Not sent",
        }[self.value]

    @property
    def tag_colour(self) -> str:
        """The NHS.UK tag modifier that shows the status at a glance."""
        return {
            "queued": "grey",
            "requested": "blue",
            "approved": "green",
            "rejected": "red",
            "issued": "green",
            "cancelled": "grey",
            "failed": "red",
        }[self.value]

    @property
    def outstanding(self) -> bool:
        """Still being dealt with: its items cannot be ordered again yet."""
        return self in (RequestStatus.QUEUED, RequestStatus.REQUESTED, RequestStatus.APPROVED)

    @property
    def cancellable(self) -> bool:
        """Rule 13: the patient may cancel only while the practice has not acted on it: still queued here (the
        gateway withdraws it before it is sent), or received and not yet looked at."""
        return self in (RequestStatus.QUEUED, RequestStatus.REQUESTED)


# Rule 13: queued -> requested (delivered) | failed | cancelled (withdrawn before it was sent);
# requested -> approved | rejected | cancelled; approved -> issued.
TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.QUEUED: frozenset({RequestStatus.REQUESTED, RequestStatus.FAILED, RequestStatus.CANCELLED}),
    RequestStatus.REQUESTED: frozenset({RequestStatus.APPROVED, RequestStatus.REJECTED, RequestStatus.CANCELLED}),
    RequestStatus.APPROVED: frozenset({RequestStatus.ISSUED}),
    RequestStatus.REJECTED: frozenset(),
    RequestStatus.ISSUED: frozenset(),
    RequestStatus.CANCELLED: frozenset(),
    RequestStatus.FAILED: frozenset(),
}


class InvalidTransition(ValueError):
    """A status change the lifecycle does not allow."""


def can_move(current: RequestStatus, new: RequestStatus) -> bool:
    """Whether a request may go from ``current`` to ``new`` (rule 13)."""
    return new in TRANSITIONS[current]


def move(current: RequestStatus, new: RequestStatus) -> RequestStatus:
    """The new status, or InvalidTransition when the lifecycle does not allow the change."""
    if not can_move(current, new):
        raise InvalidTransition(f"A request cannot go from {current.value} to {new.value}")
    return new


class Collection(enum.StrEnum):
    """Where the patient will collect what they ordered; stored as its value."""

    PHARMACY = "pharmacy"  # sent electronically (EPS) to the patient's nominated pharmacy
    SURGERY = "surgery"  # a paper prescription the patient collects from their GP practice

    def label(self, pharmacy_name: str = "", practice_name: str = "") -> str:
        """Where to collect it, in the words the patient reads."""
        if self is Collection.SURGERY:
            return f"Paper prescription to collect from {practice_name or 'your GP practice'}"
        return f"Sent electronically to {pharmacy_name or 'your nominated pharmacy'}"


@dataclass(frozen=True)
class RepeatItem:
    """One line of the patient's repeat template."""

    id: str
    name: str  # includes strength and form, e.g. "Amlodipine 5mg tablets"
    dosage: str
    quantity: str
    prescription_type: PrescriptionType
    code: str = ""
    last_issued: dt.date | None = None
    review_date: dt.date | None = None
    issues_allowed: int | None = None
    issues_used: int = 0
    controlled_drug: bool = False


@dataclass(frozen=True)
class RepeatRequest:
    id: str
    item_ids: tuple[str, ...]
    item_names: tuple[str, ...]
    status: RequestStatus
    requested_at: dt.datetime
    note: str = ""
    rejection_reason: str = ""
    pharmacy_ods: str = ""
    collection: Collection = Collection.PHARMACY


class NotOrderable(enum.StrEnum):
    """Why an item cannot be ordered online, in the words the patient reads."""

    ACUTE = "This was a one-off prescription. Contact your GP practice if you need it again."
    REVIEW_DUE = "This medicine is due for review. Contact your GP practice to arrange a review."
    ISSUES_USED = "You have had all the issues allowed. Contact your GP practice for a new prescription."
    ALREADY_REQUESTED = "You have already requested this. It is being dealt with."
    NOT_ONLINE = "Your GP practice does not allow this medicine to be ordered online. Contact the practice."


@dataclass(frozen=True)
class PrescriptionRules:
    """A practice's rules for repeat requests (design rule 7)."""

    turnaround_working_days: int = 2
    max_note_length: int = 300
    never_online: frozenset[str] = frozenset()  # lower-case names or codes
    block_controlled_drugs: bool = True

    def never_online_matches(self, item: RepeatItem) -> bool:
        name = item.name.lower()
        return any(entry and (entry == item.code or entry in name) for entry in self.never_online)


def why_not_orderable(
    item: RepeatItem, rules: PrescriptionRules, outstanding_item_ids: Iterable[str], today: dt.date
) -> NotOrderable | None:
    """Rule 12: the reason an item cannot be ordered online, or None when it can."""
    if item.prescription_type == PrescriptionType.ACUTE:
        return NotOrderable.ACUTE
    if (item.controlled_drug and rules.block_controlled_drugs) or rules.never_online_matches(item):
        return NotOrderable.NOT_ONLINE
    if item.review_date is not None and item.review_date < today:
        return NotOrderable.REVIEW_DUE
    if item.issues_allowed is not None and item.issues_used >= item.issues_allowed:
        return NotOrderable.ISSUES_USED
    if item.id in set(outstanding_item_ids):
        return NotOrderable.ALREADY_REQUESTED
    return None


@dataclass(frozen=True)
class TemplateLine:
    """A template item with the reason it cannot be ordered online (None when it can)."""

    item: RepeatItem
    reason: NotOrderable | None

    @property
    def orderable(self) -> bool:
        return self.reason is None


def outstanding_item_ids(requests: Iterable[RepeatRequest]) -> frozenset[str]:
    """Items in requests the practice is still dealing with (queued, requested or approved)."""
    return frozenset(i for r in requests if r.status.outstanding for i in r.item_ids)


def template_lines(
    items: Iterable[RepeatItem], rules: PrescriptionRules, requests: Iterable[RepeatRequest], today: dt.date
) -> list[TemplateLine]:
    """Every template item with its orderability; orderable items first, then by name."""
    outstanding = outstanding_item_ids(requests)
    lines = [TemplateLine(item, why_not_orderable(item, rules, outstanding, today)) for item in items]
    return sorted(lines, key=lambda line: (not line.orderable, line.item.name.lower()))


def note_problem(note: str, rules: PrescriptionRules) -> str | None:
    """The error message for a note over the practice's limit, or None."""
    if len(note) > rules.max_note_length:
        return f"Enter a note of {rules.max_note_length} characters or fewer"
    return None


def ready_by(submitted: dt.date, rules: PrescriptionRules) -> dt.date:
    """Rule 13: submission date plus the practice's turnaround in working days."""
    return add_working_days(submitted, rules.turnaround_working_days)


@lru_cache(maxsize=16)
def _bank_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("GB", subdiv="ENG", years=year)


def is_working_day(day: dt.date) -> bool:
    """Monday to Friday, not an England bank holiday."""
    return day.weekday() < 5 and day not in _bank_holidays(day.year)


def add_working_days(start: dt.date, days: int) -> dt.date:
    """The date ``days`` working days after ``start`` (weekends and England bank holidays skipped)."""
    day = start
    remaining = days
    while remaining > 0:
        day += dt.timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    return day
