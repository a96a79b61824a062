"""The booking rules of design rules 6 and 9-11, and the calendar file across the clock change."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from patient_online.domain.appointments import (
    REASON_MAX_LENGTH,
    Appointment,
    AppointmentRules,
    AppointmentStatus,
    Clinician,
    DeliveryMode,
    ReasonTooLong,
    Slot,
    clean_reason,
    group_by_day,
    in_time_order,
    is_upcoming,
    local_day_bounds,
    split_upcoming,
)

LONDON = ZoneInfo("Europe/London")
NOW = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
GP = Clinician("GP1", "Dr Sarah Mitchell", "GP")
NURSE = Clinician("NU1", "Nurse Janet Hughes", "Practice nurse")
RULES = AppointmentRules(
    online_slot_types=frozenset({"GP appointment", "Nurse appointment"}),
    horizon_days=28,
    lead_time_hours=2,
    max_future_appointments=2,
    cancellation_allowed=True,
    cancellation_cutoff_hours=24,
)


def slot(start: dt.datetime, slot_type: str = "GP appointment", clinician: Clinician = GP, sid: str = "") -> Slot:
    return Slot(
        sid or f"S{start:%Y%m%d%H%M}{clinician.id}",
        start,
        start + dt.timedelta(minutes=10),
        slot_type,
        clinician,
        DeliveryMode.FACE_TO_FACE,
    )


def appointment(
    start: dt.datetime, status: AppointmentStatus = AppointmentStatus.BOOKED, aid: str = "A1"
) -> Appointment:
    return Appointment(aid, slot(start), status)


# Rule 9: what is offered ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("hours", "slot_type", "offered"),
    [
        (1.99, "GP appointment", False),  # inside the lead time
        (2, "GP appointment", True),  # exactly at the lead time
        (24, "Nurse appointment", True),
        (24, "Baby clinic", False),  # not bookable online
        (24 * 28, "GP appointment", True),  # the last moment of the horizon
        (24 * 28 + 0.1, "GP appointment", False),  # beyond the horizon
        (-1, "GP appointment", False),  # in the past
    ],
)
def test_only_online_types_inside_the_window_are_offered(hours: float, slot_type: str, offered: bool) -> None:
    assert RULES.may_offer(slot(NOW + dt.timedelta(hours=hours), slot_type), NOW) is offered


def test_window_is_lead_time_to_horizon() -> None:
    assert RULES.window(NOW) == (NOW + dt.timedelta(hours=2), NOW + dt.timedelta(days=28))


def test_no_online_types_offers_nothing() -> None:
    rules = AppointmentRules(online_slot_types=frozenset())
    assert not rules.may_offer(slot(NOW + dt.timedelta(days=2)), NOW)


# Rule 10: maximum and cutoff ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("booked", "more"), [(0, True), (1, True), (2, False), (3, False)])
def test_maximum_of_future_appointments(booked: int, more: bool) -> None:
    assert RULES.may_book_more(booked) is more


def test_only_booked_future_appointments_count_as_upcoming() -> None:
    assert is_upcoming(appointment(NOW + dt.timedelta(hours=1)), NOW)
    assert not is_upcoming(appointment(NOW - dt.timedelta(hours=1)), NOW)
    assert not is_upcoming(appointment(NOW + dt.timedelta(days=3), AppointmentStatus.CANCELLED), NOW)


@pytest.mark.parametrize(
    ("hours", "status", "allowed", "refusal"),
    [
        (24, AppointmentStatus.BOOKED, True, ""),
        (23.9, AppointmentStatus.BOOKED, False, "it is less than 24 hours away"),
        (48, AppointmentStatus.CANCELLED, False, "it has already been cancelled"),
        (-2, AppointmentStatus.BOOKED, False, "it has already taken place"),
        (-2, AppointmentStatus.FULFILLED, False, "it has already taken place"),
    ],
)
def test_cancelling_is_refused_inside_the_cutoff(
    hours: float, status: AppointmentStatus, allowed: bool, refusal: str
) -> None:
    booked = appointment(NOW + dt.timedelta(hours=hours), status)
    assert RULES.may_cancel(booked, NOW) is allowed
    assert RULES.cancel_refusal(booked, NOW) == refusal


def test_practice_that_takes_no_cancellations_online() -> None:
    rules = AppointmentRules(online_slot_types=RULES.online_slot_types, cancellation_allowed=False)
    refusal = rules.cancel_refusal(appointment(NOW + dt.timedelta(days=10)), NOW)
    assert refusal == "your GP practice does not take cancellations online"


@pytest.mark.parametrize(("hours", "words"), [(1, "1 hour"), (12, "12 hours"), (24, "24 hours"), (72, "3 days")])
def test_cutoff_in_words(hours: int, words: str) -> None:
    rules = AppointmentRules(online_slot_types=frozenset(), cancellation_cutoff_hours=hours)
    assert rules.cancel_refusal(appointment(NOW + dt.timedelta(minutes=30)), NOW) == f"it is less than {words} away"


# Rule 11: the reason ------------------------------------------------------------------------------------------
def test_reason_is_tidied_and_limited_to_100_characters() -> None:
    assert clean_reason("  Sore\n\nknee   ") == "Sore knee"
    assert clean_reason("x" * REASON_MAX_LENGTH) == "x" * 100
    assert clean_reason("  " + "x" * 100 + "  ") == "x" * 100  # spaces around do not count
    with pytest.raises(ReasonTooLong, match="Enter a reason of 100 characters or fewer"):
        clean_reason("x" * 101)


# Lists and grouping ---------------------------------------------------------------------------------------------
def test_upcoming_soonest_first_then_past_and_cancelled_latest_first() -> None:
    a = appointment(NOW + dt.timedelta(days=5), aid="later")
    b = appointment(NOW + dt.timedelta(days=1), aid="soon")
    c = appointment(NOW - dt.timedelta(days=3), AppointmentStatus.FULFILLED, aid="old")
    d = appointment(NOW + dt.timedelta(days=2), AppointmentStatus.CANCELLED, aid="cancelled")
    upcoming, others = split_upcoming([a, b, c, d], NOW)
    assert [x.id for x in upcoming] == ["soon", "later"]
    assert [x.id for x in others] == ["cancelled", "old"]


def test_slots_are_grouped_by_london_day_across_midnight_and_the_clock_change() -> None:
    late_summer = dt.datetime(2026, 7, 1, 23, 30, tzinfo=dt.UTC)  # 00:30 on 2 July in London (BST)
    late_winter = dt.datetime(2026, 12, 1, 23, 30, tzinfo=dt.UTC)  # 23:30 on 1 December in London (GMT)
    days = group_by_day([slot(late_winter), slot(late_summer), slot(late_summer - dt.timedelta(hours=2))])
    assert [d.day for d in days] == [dt.date(2026, 7, 1), dt.date(2026, 7, 2), dt.date(2026, 12, 1)]
    assert [len(d.slots) for d in days] == [1, 1, 1]


def test_local_day_is_25_hours_long_on_the_october_clock_change() -> None:
    start, end = local_day_bounds(dt.date(2026, 10, 25))
    assert end - start == dt.timedelta(hours=25)
    assert start == dt.datetime(2026, 10, 24, 23, 0, tzinfo=dt.UTC)


def test_slots_of_a_day_are_in_time_order_whoever_the_clinician_is() -> None:
    day = dt.datetime(2026, 3, 12, 9, 0, tzinfo=dt.UTC)
    slots = [
        slot(day + dt.timedelta(minutes=30)),
        slot(day + dt.timedelta(minutes=10), "Nurse appointment", NURSE),
        slot(day),
        slot(day + dt.timedelta(minutes=10)),
    ]
    ordered = in_time_order(slots)
    assert [s.start for s in ordered] == sorted(s.start for s in slots)
    at_ten = [s.clinician.name for s in ordered if s.start == day + dt.timedelta(minutes=10)]
    assert at_ten == ["Dr Sarah Mitchell", "Nurse Janet Hughes"], "one time: by clinician's name"
    [whole_day] = group_by_day(slots)
    assert list(whole_day.slots) == ordered


# The calendar file ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("utc_start", "local_text"),
    [
        (dt.datetime(2026, 10, 23, 8, 0, tzinfo=dt.UTC), "20261023T090000"),  # BST: 9am is 08:00 UTC
        (dt.datetime(2026, 10, 26, 9, 0, tzinfo=dt.UTC), "20261026T090000"),  # after the change: GMT
    ],
)
def test_calendar_file_uses_london_time_across_the_clock_change(utc_start: dt.datetime, local_text: str) -> None:
    from patient_online.models import Practice
    from patient_online.services.appointments import appointment_ics

    practice = Practice(
        ods_code="Y02001",
        name="Riverside Medical Centre",
        address="12 Mill Lane, Kingsbridge",
        postcode="KB1 4RT",
        phone="01632 960 101",
    )
    booked = Appointment("A-1", slot(utc_start), AppointmentStatus.BOOKED, reason="Private words")
    content = appointment_ics(booked, practice, now=NOW)
    text = content.decode()
    assert f"DTSTART;TZID=Europe/London:{local_text}" in text
    assert "BEGIN:VTIMEZONE" in text and "TZID:Europe/London" in text
    assert "BEGIN:STANDARD" in text and "BEGIN:DAYLIGHT" in text
    assert "Private words" not in text
    event = Calendar.from_ical(content).walk("VEVENT")[0]
    assert event.decoded("dtstart").astimezone(dt.UTC) == utc_start
    assert "12 Mill Lane" in str(event.get("location")) and "KB1 4RT" in str(event.get("location"))
    assert str(event.get("status")) == "CONFIRMED"
