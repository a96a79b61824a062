"""Finding a free time (rule 9), two ways over the same searches: on a phone, a type, then a day from a short
list of days with times, then a time in time order; on a wide screen, a week at a time with filters. Both say
what to do when nothing fits."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

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
    in_time_order,
    is_upcoming,
)
from patient_online.domain.ports import ClinicalSystem

from .. import waitlist
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


@dataclass(frozen=True)
class _Search:
    """What every page of finding a time starts from: the practice's rules and window, a way to search its book
    (through the few seconds' memory of searches), and the patient's own upcoming bookings."""

    now: dt.datetime
    rules: AppointmentRules
    contact: PracticeContact
    system: ClinicalSystem
    cache: SlotSearchCache
    mine: frozenset[str]  # slots the patient already holds: a recent search may still show them free
    held: frozenset[str]  # slots held for other patients' earlier-appointment offers (see services/waitlist.py)
    others: int  # upcoming appointments that count towards the maximum
    limit: str
    replacing: Appointment | None
    # Searches made while the patient's bookings were read (London days -> the book's free slots offered).
    prefetched: Mapping[tuple[dt.date, dt.date], list[Slot]] = field(default_factory=dict)

    @property
    def first_day(self) -> dt.date:
        return local_day(self.rules.window(self.now)[0])

    @property
    def last_day(self) -> dt.date:
        return local_day(self.rules.window(self.now)[1])

    def weeks(self) -> list[tuple[dt.date, dt.date]]:
        """The window in weeks from its first day, each as its first and last London day."""
        weeks: list[tuple[dt.date, dt.date]] = []
        day, last = self.first_day, self.last_day
        while day <= last:
            weeks.append((day, min(day + dt.timedelta(days=WEEK_DAYS - 1), last)))
            day += dt.timedelta(days=WEEK_DAYS)
        return weeks

    def clip(self, day: dt.date | None) -> dt.date:
        """The day asked for if it is inside the window, else the window's first day."""
        return day if day is not None and self.first_day <= day <= self.last_day else self.first_day

    def offered(self, first: dt.date, last: dt.date) -> list[Slot]:
        """The free slots the patient may book on the London days ``first`` to ``last``, in the book's order.

        The days' bounds are compared as UTC instants: that costs no time-zone conversion for every slot.
        """
        days_start, days_end = day_start(first), day_start(last + dt.timedelta(days=1))
        found = self.prefetched.get((first, last))
        if found is None:
            found = self.search_book(first, last)
        return [
            s for s in found if s.id not in self.mine and s.id not in self.held and days_start <= s.start < days_end
        ]

    def search_book(self, first: dt.date, last: dt.date) -> list[Slot]:
        """The book's free slots offered on those London days (the patient's own bookings not yet left out)."""
        earliest, latest = self.rules.window(self.now)
        days_start, days_end = day_start(first), day_start(last + dt.timedelta(days=1))
        return _offered(
            self.cache,
            self.system,
            self.rules,
            self.now,
            max(earliest, days_start),
            min(latest, days_end),
            self.contact.ods_code,
        )


Days = Callable[["_Search"], tuple[dt.date, dt.date]]


def _search(
    uow: AbstractUnitOfWork, acting: Acting, replacing: str | None = None, ahead: Days | None = None
) -> _Search:
    """Check the service is on, end the request's reads, and find the patient's upcoming bookings (one call).

    ``ahead`` names the days the page will search first: that search of the book is made at the same time as
    the bookings are read, so a slow practice link costs the page one wait, not two.
    """
    acting.require(Service.APPOINTMENTS)
    now = uow.now()
    practice = acting.practice
    rules = rules_for(practice)
    held = waitlist.held_slot_ids(uow, practice.id, acting.patient.id)
    system = clinical(uow, acting)
    search = _Search(
        now=now,
        rules=rules,
        contact=PracticeContact.of(practice),
        system=system,
        cache=uow.slot_cache,
        mine=frozenset(),
        held=held,
        others=0,
        limit="",
        replacing=None,
    )
    prefetched: dict[tuple[dt.date, dt.date], list[Slot]] = {}
    if ahead is None:
        upcoming = _upcoming(uow, system, acting, now)
    else:
        days = ahead(search)
        upcoming, prefetched[days] = uow.clinical_systems.concurrently(
            practice, lambda: _upcoming(uow, system, acting, now), lambda: search.search_book(*days)
        )
    old: Appointment | None = None
    if replacing is not None:
        old = changeable(upcoming, replacing, rules, practice, now)
    others = [a for a in upcoming if old is None or a.id != old.id]
    return replace(
        search,
        mine=frozenset(a.slot.id for a in upcoming),
        others=len(others),
        limit="" if rules.may_book_more(len(others)) else limit_message(rules, practice),
        replacing=old,
        prefetched=prefetched,
    )


def _upcoming(uow: AbstractUnitOfWork, system: ClinicalSystem, acting: Acting, now: dt.datetime) -> list[Appointment]:
    """The patient's upcoming appointments, as read in the last few seconds for these pages only (booking,
    cancelling and rescheduling read them afresh): see appointment_memory."""
    read = uow.slot_cache.appointments.appointments(acting.ref, lambda: system.list_appointments(acting.ref, now))
    return [a for a in read if is_upcoming(a, now)]


def _week_from(day: dt.date | None) -> Days:
    """The week the slot and day pages search first: from the day asked for (or the first bookable day)."""

    def days(search: _Search) -> tuple[dt.date, dt.date]:
        first = search.clip(day)
        return first, min(first + dt.timedelta(days=WEEK_DAYS - 1), search.last_day)

    return days


def _clinicians(slots: Iterable[Slot]) -> list[Clinician]:
    return sorted({s.clinician for s in slots}, key=lambda c: (c.role != "GP", c.role, c.name))


def find_slots(uow: AbstractUnitOfWork, acting: Acting, wanted: SlotFilter, replacing: str | None = None) -> SlotPage:
    """Free slots the patient may book (rule 9) for one week, filtered.

    One search covers the week shown; only when nothing there fits is the rest of the horizon searched, for the
    next available time. Searching the whole horizon every time made this the slowest patient page.

    With ``replacing`` (an appointment id) the page is for rescheduling that appointment.
    """
    search = _search(uow, acting, replacing, ahead=_week_from(wanted.start_day))
    start_day = search.clip(wanted.start_day)
    end_day = min(start_day + dt.timedelta(days=WEEK_DAYS - 1), search.last_day)
    in_week = search.offered(start_day, end_day)
    shown = [s for s in in_week if _matches(s, wanted)]
    later: list[Slot] = []
    if not shown and end_day < search.last_day:
        later = search.offered(end_day + dt.timedelta(days=1), search.last_day)
    next_match = next((s for s in later if _matches(s, wanted)), None)
    by_type = Counter(s.slot_type for s in in_week if _matches(s, wanted, by_type=False))
    return SlotPage(
        practice=search.contact,
        wanted=wanted,
        start_day=start_day,
        end_day=end_day,
        days=group_by_day(shown),
        weeks=search.weeks(),
        slot_types=sorted(search.rules.online_slot_types),
        clinicians=_clinicians([*in_week, *later]),
        next_match=next_match,
        other_types=sorted((t, n) for t, n in by_type.items() if t != wanted.slot_type),
        any_in_range=len(in_week),
        upcoming_count=search.others,
        max_future=search.rules.max_future_appointments,
        replacing=search.replacing,
        limit_message=search.limit,
    )


# The phone-first journey: a type, then a day, then a time ------------------------------------------------------
DAYS_SHOWN = 10  # days with times on one page: the next fortnight or so, short enough for a phone


@dataclass(frozen=True)
class BookingStart:
    """The first step of booking: the types of appointment the practice offers online, unless the patient may
    not book (more) online, which they learn here rather than after choosing a time."""

    practice: PracticeContact
    slot_types: list[str]
    limit_message: str = ""
    replacing: Appointment | None = None

    @property
    def offers_nothing(self) -> bool:
        return not self.slot_types


@dataclass(frozen=True)
class DayChoice:
    day: dt.date
    count: int


@dataclass(frozen=True)
class DayPage:
    """Days with times that match what the patient asked for, from ``start_day``, with how many times each has."""

    practice: PracticeContact
    wanted: SlotFilter
    start_day: dt.date
    days: list[DayChoice]
    later_start: dt.date | None  # the next day with times after those shown
    first_day: dt.date  # the window's first day, for "back to the first available days"
    weeks: list[tuple[dt.date, dt.date]]
    slot_types: list[str]
    clinicians: list[Clinician]
    any_in_range: int  # times of any type, with anyone, any way, in the days searched
    limit_message: str = ""
    replacing: Appointment | None = None

    @property
    def offers_nothing(self) -> bool:
        return not self.slot_types


@dataclass(frozen=True)
class TimePage:
    """The times of one day that match what the patient asked for, in time order (then by clinician)."""

    practice: PracticeContact
    wanted: SlotFilter
    day: dt.date
    slots: list[Slot]
    limit_message: str = ""
    replacing: Appointment | None = None

    @property
    def offers_nothing(self) -> bool:
        return False


def start_booking(uow: AbstractUnitOfWork, acting: Acting, replacing: str | None = None) -> BookingStart:
    """The types of appointment to choose from, or why the patient cannot book online (at their maximum)."""
    search = _search(uow, acting, replacing)
    return BookingStart(search.contact, sorted(search.rules.online_slot_types), search.limit, search.replacing)


def find_days(uow: AbstractUnitOfWork, acting: Acting, wanted: SlotFilter, replacing: str | None = None) -> DayPage:
    """The next ``DAYS_SHOWN`` days with matching times, from the day asked for (or the first bookable day).

    The book is searched a week at a time, from the same days as the week pages (so a recent search of either
    serves both), and only until one more day than is shown has turned up: that day starts the "later" link.
    """
    search = _search(uow, acting, replacing, ahead=_week_from(wanted.start_day))
    start_day = search.clip(wanted.start_day)
    counts: Counter[dt.date] = Counter()
    seen: list[Slot] = []
    first = start_day
    while first <= search.last_day and len(counts) <= DAYS_SHOWN and not search.limit:
        last = min(first + dt.timedelta(days=WEEK_DAYS - 1), search.last_day)
        found = search.offered(first, last)
        seen += found
        counts.update(local_day(s.start) for s in found if _matches(s, wanted))
        first = last + dt.timedelta(days=1)
    days = sorted(counts)
    return DayPage(
        practice=search.contact,
        wanted=wanted,
        start_day=start_day,
        days=[DayChoice(day, counts[day]) for day in days[:DAYS_SHOWN]],
        later_start=days[DAYS_SHOWN] if len(days) > DAYS_SHOWN else None,
        first_day=search.first_day,
        weeks=search.weeks(),
        slot_types=sorted(search.rules.online_slot_types),
        clinicians=_clinicians(seen),
        any_in_range=len(seen),
        limit_message=search.limit,
        replacing=search.replacing,
    )


def find_times(
    uow: AbstractUnitOfWork, acting: Acting, wanted: SlotFilter, day: dt.date, replacing: str | None = None
) -> TimePage:
    """One day's matching times in time order, each with its clinician and how it happens (one search)."""
    search = _search(uow, acting, replacing, ahead=lambda _search: (day, day))
    slots: list[Slot] = []
    if not search.limit and search.first_day <= day <= search.last_day:
        slots = in_time_order(s for s in search.offered(day, day) if _matches(s, wanted))
    return TimePage(search.contact, wanted, day, slots, search.limit, search.replacing)


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
