"""Earlier appointments: the rules with no database. Which free times suit a wish (in London time, across the
clock change), whom a time is offered to, the wish in words, and what a wish must hold."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from patient_online.domain.appointments import AppointmentRules, Clinician, DeliveryMode, Slot
from patient_online.domain.errors import InputError
from patient_online.domain.waitlist import (
    DEFAULT_HOLD_MINUTES,
    DayPart,
    Waiting,
    Wish,
    describe_wish,
    first_in_queue,
    hold_minutes,
    matches,
    weeks_ahead_choices,
    wish_until,
)

# Summer time (BST, UTC+1) runs from 29 March to 25 October 2026; the winter dates are GMT (UTC+0).
NOW = dt.datetime(2026, 7, 6, 8, 0, tzinfo=dt.UTC)  # Monday 6 July, 9am in London
WINTER_NOW = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)  # Monday 5 January, 8am in London
GP = Clinician("GP1", "Dr Sarah Mitchell", "GP")
RULES = AppointmentRules(
    online_slot_types=frozenset({"GP appointment", "Nurse appointment"}),
    horizon_days=28,
    lead_time_hours=2,
)
EVERY_DAY = frozenset(range(7))
ALL_PARTS = frozenset(DayPart)


def slot(start: dt.datetime, slot_type: str = "GP appointment", sid: str = "S1") -> Slot:
    return Slot(sid, start, start + dt.timedelta(minutes=10), slot_type, GP, DeliveryMode.FACE_TO_FACE, "Room 4")


def wish(
    slot_type: str = "",
    weekdays: frozenset[int] = EVERY_DAY,
    parts: frozenset[DayPart] = ALL_PARTS,
    until: dt.date = dt.date(2026, 8, 1),
    earlier_than: dt.datetime | None = None,
) -> Wish:
    return Wish(slot_type, weekdays, parts, until, earlier_than)


def utc(year: int, month: int, day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


# Which free times suit a wish ------------------------------------------------------------------------------
def test_any_type_means_any_type_the_practice_offers_online() -> None:
    start = utc(2026, 7, 8, 9, 0)
    assert matches(slot(start), wish(), RULES, NOW)
    assert matches(slot(start, "Nurse appointment"), wish(), RULES, NOW)
    assert not matches(slot(start, "Baby clinic"), wish(), RULES, NOW), "not bookable online"


def test_a_chosen_type_must_be_that_type() -> None:
    start = utc(2026, 7, 8, 9, 0)
    assert matches(slot(start, "Nurse appointment"), wish("Nurse appointment"), RULES, NOW)
    assert not matches(slot(start, "GP appointment"), wish("Nurse appointment"), RULES, NOW)


def test_weekday_is_the_day_in_london() -> None:
    # 11:30pm UTC on Sunday 12 July is 12:30am on Monday 13 July in London (summer time)
    late_sunday = utc(2026, 7, 12, 23, 30)
    assert matches(slot(late_sunday), wish(weekdays=frozenset({0})), RULES, NOW)
    assert not matches(slot(late_sunday), wish(weekdays=frozenset({6})), RULES, NOW)
    # in winter London is on UTC: 11:30pm on Sunday 11 January is still Sunday
    winter_sunday = utc(2026, 1, 11, 23, 30)
    assert matches(slot(winter_sunday), wish(weekdays=frozenset({6}), until=dt.date(2026, 2, 1)), RULES, WINTER_NOW)
    assert not matches(slot(winter_sunday), wish(weekdays=frozenset({0}), until=dt.date(2026, 2, 1)), RULES, WINTER_NOW)


@pytest.mark.parametrize(
    ("start", "part"),
    [
        # summer (BST): London is an hour ahead of UTC
        (utc(2026, 7, 8, 10, 59), DayPart.MORNING),  # 11:59am
        (utc(2026, 7, 8, 11, 0), DayPart.AFTERNOON),  # noon
        (utc(2026, 7, 8, 15, 59), DayPart.AFTERNOON),  # 4:59pm
        (utc(2026, 7, 8, 16, 0), DayPart.EVENING),  # 5pm
        # winter (GMT): London is on UTC
        (utc(2026, 1, 7, 11, 59), DayPart.MORNING),
        (utc(2026, 1, 7, 12, 0), DayPart.AFTERNOON),
        (utc(2026, 1, 7, 16, 59), DayPart.AFTERNOON),
        (utc(2026, 1, 7, 17, 0), DayPart.EVENING),
    ],
)
def test_part_of_day_is_in_london_time(start: dt.datetime, part: DayPart) -> None:
    assert DayPart.of(start) is part
    now = NOW if start.month == 7 else WINTER_NOW
    until = dt.date(2026, 8, 1) if start.month == 7 else dt.date(2026, 2, 1)
    assert matches(slot(start), wish(parts=frozenset({part}), until=until), RULES, now)
    others = frozenset(ALL_PARTS - {part})
    assert not matches(slot(start), wish(parts=others, until=until), RULES, now)


def test_the_same_utc_hour_is_morning_in_winter_and_afternoon_in_summer() -> None:
    assert DayPart.of(utc(2026, 1, 7, 11, 30)) is DayPart.MORNING
    assert DayPart.of(utc(2026, 7, 8, 11, 30)) is DayPart.AFTERNOON


def test_until_is_the_last_london_day_they_would_take() -> None:
    until = dt.date(2026, 7, 10)
    assert matches(slot(utc(2026, 7, 10, 15, 0)), wish(until=until), RULES, NOW)
    assert not matches(slot(utc(2026, 7, 11, 9, 0)), wish(until=until), RULES, NOW)
    # 11:30pm UTC on the 10th is already the 11th in London (summer time)
    assert not matches(slot(utc(2026, 7, 10, 23, 30)), wish(until=until), RULES, NOW)


def test_a_replacement_must_be_earlier_than_the_appointment_it_replaces() -> None:
    held = utc(2026, 7, 20, 9, 0)
    assert matches(slot(utc(2026, 7, 15, 9, 0)), wish(earlier_than=held), RULES, NOW)
    assert not matches(slot(held), wish(earlier_than=held), RULES, NOW), "the same time is not earlier"
    assert not matches(slot(utc(2026, 7, 21, 9, 0)), wish(earlier_than=held), RULES, NOW)


def test_nothing_is_offered_to_move_an_appointment_inside_the_cancellation_cutoff() -> None:
    """Moving it cancels it: once it is too close to cancel online, no offer could be accepted."""
    rules = dataclasses.replace(RULES, cancellation_cutoff_hours=48)
    earlier = slot(NOW + dt.timedelta(hours=30))
    assert matches(earlier, wish(earlier_than=NOW + dt.timedelta(hours=49)), rules, NOW)
    assert not matches(earlier, wish(earlier_than=NOW + dt.timedelta(hours=47)), rules, NOW)
    assert matches(earlier, wish(), rules, NOW), "a patient not moving an appointment is offered it"


def test_the_practice_rules_window_applies() -> None:
    inside_lead_time = NOW + dt.timedelta(hours=1, minutes=59)
    assert not matches(slot(inside_lead_time), wish(), RULES, NOW)
    assert matches(slot(NOW + dt.timedelta(hours=2)), wish(), RULES, NOW)
    beyond_horizon = NOW + dt.timedelta(days=28, minutes=1)
    assert not matches(slot(beyond_horizon), wish(until=dt.date(2026, 9, 30)), RULES, NOW)
    assert not matches(slot(NOW - dt.timedelta(hours=1)), wish(), RULES, NOW), "a time already past"


# Whom a time is offered to ---------------------------------------------------------------------------------
START = utc(2026, 7, 8, 9, 0)  # Wednesday morning in London
FREED = slot(START, sid="FREED")


def test_the_longest_waiting_patient_it_suits_comes_first() -> None:
    queue = [
        Waiting(1, wish(weekdays=frozenset({0}))),  # Mondays only: does not suit
        Waiting(2, wish()),
        Waiting(3, wish()),
    ]
    chosen = first_in_queue(FREED, queue, RULES, NOW)
    assert chosen is not None and chosen.entry_id == 2


def test_a_patient_holding_an_offer_is_passed_over() -> None:
    queue = [Waiting(1, wish(), holds_offer=True), Waiting(2, wish())]
    chosen = first_in_queue(FREED, queue, RULES, NOW)
    assert chosen is not None and chosen.entry_id == 2


def test_a_time_is_never_offered_twice_to_the_same_patient() -> None:
    queue = [Waiting(1, wish(), offered_before=frozenset({"FREED"})), Waiting(2, wish())]
    chosen = first_in_queue(FREED, queue, RULES, NOW)
    assert chosen is not None and chosen.entry_id == 2
    other = first_in_queue(slot(START, sid="OTHER"), queue, RULES, NOW)
    assert other is not None and other.entry_id == 1, "another time may still go to them"


def test_nobody_when_it_suits_nobody_free() -> None:
    queue = [
        Waiting(1, wish(), holds_offer=True),
        Waiting(2, wish(), offered_before=frozenset({"FREED"})),
        Waiting(3, wish(parts=frozenset({DayPart.EVENING}))),
    ]
    assert first_in_queue(FREED, queue, RULES, NOW) is None
    assert first_in_queue(FREED, [], RULES, NOW) is None


waiting_patients = st.lists(
    st.builds(
        Waiting,
        entry_id=st.integers(1, 1000),
        wish=st.builds(
            Wish,
            slot_type=st.sampled_from(["", "GP appointment", "Nurse appointment"]),
            weekdays=st.frozensets(st.integers(0, 6), min_size=1),
            parts=st.frozensets(st.sampled_from(list(DayPart)), min_size=1),
            until=st.dates(dt.date(2026, 7, 1), dt.date(2026, 8, 31)),
            earlier_than=st.none()
            | st.datetimes(dt.datetime(2026, 7, 1), dt.datetime(2026, 8, 31), timezones=st.just(dt.UTC)),
        ),
        holds_offer=st.booleans(),
        offered_before=st.frozensets(st.sampled_from(["FREED", "OTHER"])),
    ),
    max_size=12,
)


@hypothesis_settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    queue=waiting_patients,
    start=st.datetimes(dt.datetime(2026, 7, 6), dt.datetime(2026, 8, 10), timezones=st.just(dt.UTC)),
    slot_type=st.sampled_from(["GP appointment", "Nurse appointment", "Baby clinic"]),
)
def test_first_in_queue_is_the_first_free_patient_it_suits(
    queue: list[Waiting], start: dt.datetime, slot_type: str
) -> None:
    freed = slot(start, slot_type, sid="FREED")
    chosen = first_in_queue(freed, queue, RULES, NOW)

    def eligible(w: Waiting) -> bool:
        return not w.holds_offer and "FREED" not in w.offered_before and matches(freed, w.wish, RULES, NOW)

    if chosen is None:
        assert not any(eligible(w) for w in queue)
    else:
        assert not chosen.holds_offer, "never a patient who holds an offer"
        assert "FREED" not in chosen.offered_before, "never a patient offered this time before"
        assert matches(freed, chosen.wish, RULES, NOW)
        position = next(i for i, w in enumerate(queue) if w is chosen)
        assert not any(eligible(w) for w in queue[:position]), "nobody ahead of them was passed over"


# The wish in words -----------------------------------------------------------------------------------------
def test_describe_wish() -> None:
    until = dt.date(2026, 12, 18)
    assert (
        describe_wish(wish(weekdays=frozenset({1, 0}), parts=frozenset({DayPart.MORNING}), until=until))
        == "any type of appointment, Mondays or Tuesdays, mornings, until Friday 18 December"
    )
    assert (
        describe_wish(
            wish("Nurse appointment", frozenset({4, 0, 2}), frozenset({DayPart.EVENING, DayPart.MORNING}), until)
        )
        == "Nurse appointment, Mondays, Wednesdays or Fridays, mornings or evenings, until Friday 18 December"
    )
    assert (
        describe_wish(wish(until=until))
        == "any type of appointment, any day, any time of day, until Friday 18 December"
    )
    assert describe_wish(wish("GP appointment", until=dt.date(2026, 1, 1)), "a GP appointment").startswith(
        "a GP appointment, any day"
    )


def test_day_part_labels_say_the_hours() -> None:
    assert [p.label for p in DayPart] == [
        "Mornings (before 12pm)",
        "Afternoons (12pm to 5pm)",
        "Evenings (after 5pm)",
    ]


# What a wish must hold -------------------------------------------------------------------------------------
def test_a_wish_needs_a_day_and_a_time_of_day() -> None:
    with pytest.raises(InputError) as no_day:
        wish(weekdays=frozenset())
    assert no_day.value.field == "weekdays" and str(no_day.value) == "Choose at least one day you can come"
    with pytest.raises(InputError) as no_part:
        wish(parts=frozenset())
    assert no_part.value.field == "parts" and str(no_part.value) == "Choose at least one time of day you can come"
    with pytest.raises(InputError) as neither:
        wish(weekdays=frozenset(), parts=frozenset())
    assert set(neither.value.fields) == {"weekdays", "parts"}


@pytest.mark.parametrize("day", [-1, 7])
def test_a_wish_refuses_a_day_that_is_not_a_weekday(day: int) -> None:
    with pytest.raises(InputError) as refused:
        wish(weekdays=frozenset({0, day}))
    assert refused.value.field == "weekdays"


def test_how_far_ahead_stays_inside_the_booking_horizon() -> None:
    assert weeks_ahead_choices(28) == [1, 2, 3, 4]
    assert weeks_ahead_choices(3) == [1], "at least one week, even with a short horizon"
    assert weeks_ahead_choices(365) == list(range(1, 9)), "at most eight weeks"
    today = dt.date(2026, 7, 6)
    assert wish_until(today, 2, 28) == dt.date(2026, 7, 20)
    assert wish_until(today, 1, 3) == dt.date(2026, 7, 9), "one week, cut to a 3-day horizon"
    for refused in (0, 5, -1):
        with pytest.raises(InputError) as error:
            wish_until(today, refused, 28)
        assert error.value.field == "weeks"


def test_hold_minutes_within_the_limits() -> None:
    assert hold_minutes(None) == DEFAULT_HOLD_MINUTES == 15
    assert hold_minutes(30) == 30
    assert hold_minutes(1) == 5
    assert hold_minutes(500) == 120
