"""Finding a free time: the slots page, one week at a time, with what to do when nothing fits (rule 9)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from patient_online.domain.access import Service
from patient_online.domain.appointments import (
    Appointment,
    AppointmentRules,
    Clinician,
    DeliveryMode,
    Slot,
    SlotDay,
    SlotQuery,
    group_by_day,
)
from patient_online.domain.ports import ClinicalSystem

from ..access import Acting
from ..slot_cache import SlotSearchCache
from ..unit_of_work import AbstractUnitOfWork
from .common import (
    WEEK_DAYS,
    PracticeContact,
    changeable,
    clinical,
    day_start,
    limit_message,
    local_day,
    rules_for,
    upcoming_of,
)


@dataclass(frozen=True)
class SlotFilter:
    """What the patient asked for on the slots page; empty means any."""

    start_day: dt.date | None = None
    slot_type: str = ""
    clinician_id: str = ""
    delivery_mode: DeliveryMode | None = None

    @property
    def narrowed(self) -> bool:
        return bool(self.slot_type or self.clinician_id or self.delivery_mode)


@dataclass(frozen=True)
class SlotPage:
    """One page of free slots, grouped by day, with what the patient can do when nothing fits."""

    practice: PracticeContact
    wanted: SlotFilter
    start_day: dt.date
    end_day: dt.date
    days: list[SlotDay]
    weeks: list[tuple[dt.date, dt.date]]
    slot_types: list[str]
    clinicians: list[Clinician]
    next_match: Slot | None
    other_types: list[tuple[str, int]]
    any_in_range: int
    upcoming_count: int
    max_future: int
    replacing: Appointment | None = None
    limit_message: str = ""

    @property
    def count(self) -> int:
        return sum(len(d.slots) for d in self.days)

    @property
    def at_limit(self) -> bool:
        return bool(self.limit_message)

    @property
    def previous_start(self) -> dt.date | None:
        earlier = [w for w, _ in self.weeks if w < self.start_day]
        return earlier[-1] if earlier else None

    @property
    def next_start(self) -> dt.date | None:
        return next((w for w, _ in self.weeks if w > self.start_day), None)

    @property
    def offers_nothing(self) -> bool:
        return not self.slot_types

    @property
    def next_match_week(self) -> dt.date | None:
        """The first day of the week holding the next matching time after this one."""
        if self.next_match is None:
            return None
        day = local_day(self.next_match.start)
        return next((start for start, end in self.weeks if start <= day <= end), None)


def _matches(slot: Slot, wanted: SlotFilter, *, by_type: bool = True) -> bool:
    return (
        (not by_type or not wanted.slot_type or slot.slot_type == wanted.slot_type)
        and (not wanted.clinician_id or slot.clinician.id == wanted.clinician_id)
        and (wanted.delivery_mode is None or slot.delivery_mode == wanted.delivery_mode)
    )


def find_slots(uow: AbstractUnitOfWork, acting: Acting, wanted: SlotFilter, replacing: str | None = None) -> SlotPage:
    """Free slots the patient may book (rule 9) for one week, filtered.

    One search covers the week shown; only when nothing there fits is the rest of the horizon searched, for the
    next available time. Searching the whole horizon every time made this the slowest patient page.

    With ``replacing`` (an appointment id) the page is for rescheduling that appointment.
    """
    acting.require(Service.APPOINTMENTS)
    now = uow.now()
    practice = acting.practice
    rules = rules_for(practice)
    earliest, latest = rules.window(now)
    first_day, last_day = local_day(earliest), local_day(latest)
    weeks: list[tuple[dt.date, dt.date]] = []
    day = first_day
    while day <= last_day:
        weeks.append((day, min(day + dt.timedelta(days=WEEK_DAYS - 1), last_day)))
        day += dt.timedelta(days=WEEK_DAYS)
    start_day = wanted.start_day if wanted.start_day and first_day <= wanted.start_day <= last_day else first_day
    end_day = min(start_day + dt.timedelta(days=WEEK_DAYS - 1), last_day)
    contact = PracticeContact.of(practice)

    system = clinical(uow, acting)
    upcoming = upcoming_of(system, acting, now)
    old: Appointment | None = None
    if replacing is not None:
        old = changeable(upcoming, replacing, rules, practice, now)
    others = [a for a in upcoming if old is None or a.id != old.id]
    limit = "" if rules.may_book_more(len(others)) else limit_message(rules, practice)
    week_start = max(earliest, day_start(start_day))
    week_end = min(latest, day_start(end_day + dt.timedelta(days=1)))
    # The search may be a few seconds old (the slot search memory), perhaps from before this patient's own latest
    # booking made through another node: never offer them a time they already hold.
    mine = {a.slot.id for a in upcoming}
    cache, ods = uow.slot_cache, contact.ods_code
    offered = [s for s in _offered(cache, system, rules, now, week_start, week_end, ods) if s.id not in mine]

    # The week's London days as UTC instants: comparing those costs no time-zone conversion for every slot.
    days_start, days_end = day_start(start_day), day_start(end_day + dt.timedelta(days=1))
    in_week = [s for s in offered if days_start <= s.start < days_end]
    shown = [s for s in in_week if _matches(s, wanted)]
    later: list[Slot] = []
    if not shown and week_end < latest:
        later = [s for s in _offered(cache, system, rules, now, week_end, latest, ods) if s.id not in mine]
    next_match = next((s for s in later if s.start >= days_end and _matches(s, wanted)), None)
    by_type = Counter(s.slot_type for s in in_week if _matches(s, wanted, by_type=False))
    clinicians = sorted({s.clinician for s in [*offered, *later]}, key=lambda c: (c.role != "GP", c.role, c.name))
    return SlotPage(
        practice=contact,
        wanted=wanted,
        start_day=start_day,
        end_day=end_day,
        days=group_by_day(shown),
        weeks=weeks,
        slot_types=sorted(rules.online_slot_types),
        clinicians=clinicians,
        next_match=next_match,
        other_types=sorted((t, n) for t, n in by_type.items() if t != wanted.slot_type),
        any_in_range=len(in_week),
        upcoming_count=len(others),
        max_future=rules.max_future_appointments,
        replacing=old,
        limit_message=limit,
    )


def _offered(
    cache: SlotSearchCache,
    system: ClinicalSystem,
    rules: AppointmentRules,
    now: dt.datetime,
    start: dt.datetime,
    end: dt.datetime,
    practice_ods: str,
) -> list[Slot]:
    """What the slots page offers: a recent search of the practice's book may serve (see slot_cache)."""
    if not rules.online_slot_types or start >= end:
        return []
    query = SlotQuery(start=start, end=end, slot_types=rules.online_slot_types)
    return rules.offered(cache.search(practice_ods, query, system.search_slots), now)
