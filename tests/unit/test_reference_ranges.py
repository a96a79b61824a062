"""Test results are flagged from their own reference range ("> 60", "0 - 5", "< 48"), low or high."""

from __future__ import annotations

import datetime as dt

import pytest

from patient_online.domain.record import (
    RangeFlag,
    RecordEntry,
    ReferenceRange,
    Section,
    parse_reference_range,
    range_flag,
)
from patient_online.services.record_fhir import record_bundle

LOW, HIGH, IN = RangeFlag.LOW, RangeFlag.HIGH, None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0 - 5", ReferenceRange(low=0, high=5)),
        ("3.5 - 5.0", ReferenceRange(low=3.5, high=5.0)),
        ("0.35-5.5", ReferenceRange(low=0.35, high=5.5)),
        ("115 – 165", ReferenceRange(low=115, high=165)),
        ("20 to 41", ReferenceRange(low=20, high=41)),
        ("-2 - 2", ReferenceRange(low=-2, high=2)),
        ("> 60", ReferenceRange(low=60, low_inclusive=False)),
        (">=60", ReferenceRange(low=60)),
        ("≥ 60", ReferenceRange(low=60)),
        ("< 48", ReferenceRange(high=48, high_inclusive=False)),
        ("<= 5.2", ReferenceRange(high=5.2)),
        ("≤5.2", ReferenceRange(high=5.2)),
    ],
)
def test_reference_ranges_parse(text: str, expected: ReferenceRange) -> None:
    assert parse_reference_range(text) == expected


@pytest.mark.parametrize("text", ["", "Normal", "see report", "5 - 1", "> ", "- 5", "1 - 2 - 3", "60 >"])
def test_what_is_not_a_range_gives_no_range(text: str) -> None:
    assert parse_reference_range(text) is None


@pytest.mark.parametrize(
    ("value", "reference", "expected"),
    [
        ("49", "> 60", LOW),  # the eGFR
        ("60", "> 60", LOW),  # "more than 60": 60 itself is not
        ("61", "> 60", IN),
        ("60", ">= 60", IN),
        ("5.4", "0 - 5", HIGH),  # the cholesterol
        ("5", "0 - 5", IN),  # the limits of "a - b" are inside it
        ("0", "0 - 5", IN),
        ("3.4", "3.5 - 5.0", LOW),
        ("5.1", "3.5 - 5.0", HIGH),
        ("47", "< 48", IN),
        ("48", "< 48", HIGH),
        ("48", "<= 48", IN),
        ("-3", "-2 - 2", LOW),
        (" 4.20 ", "3.5 - 5.0", IN),
    ],
)
def test_values_are_flagged_low_or_high_against_their_range(value: str, reference: str, expected: object) -> None:
    assert range_flag(value, reference) is expected


@pytest.mark.parametrize(("value", "reference"), [("", "0 - 5"), ("Negative", "0 - 5"), ("<5", "0 - 5"), ("4", "")])
def test_no_flag_when_the_value_or_the_range_cannot_be_read(value: str, reference: str) -> None:
    assert range_flag(value, reference) is None


def test_an_entry_says_which_side_of_its_range_it_is() -> None:
    egfr = RecordEntry("t1", Section.TEST_RESULTS, dt.date(2026, 1, 5), "eGFR", value="49")
    assert egfr.range_flag is None  # no range given: nothing to say
    flagged = RecordEntry(
        "t2", Section.TEST_RESULTS, egfr.date, "eGFR", value="49", reference_range="> 60", outside_range=True
    )
    assert flagged.range_flag is RangeFlag.LOW and flagged.range_flag.label == "Below the normal range"
    assert RangeFlag.HIGH.label == "Above the normal range"


def test_the_fhir_download_says_low_or_high_when_the_range_says_which() -> None:
    day = dt.date(2026, 1, 5)

    def result(id_: str, value: str, reference: str) -> RecordEntry:
        return RecordEntry(
            id_, Section.TEST_RESULTS, day, "Test", value=value, reference_range=reference, outside_range=True
        )

    bundle = record_bundle(
        nhs_number="9990001000",
        given_name="Ann",
        family_name="Example",
        date_of_birth=dt.date(1980, 1, 1),
        practice_ods="Y02001",
        practice_name="Riverside Medical Centre",
        entries=[result("t1", "49", "> 60"), result("t2", "5.4", "0 - 5"), result("t3", "Trace", "Negative")],
    )
    codes = {
        r["resource"]["id"]: r["resource"]["interpretation"][0]["coding"][0]["code"]  # type: ignore[index]
        for r in bundle["entry"]  # type: ignore[union-attr]
        if r["resource"]["resourceType"] == "Observation"  # type: ignore[index]
    }
    assert sorted(codes.values()) == ["A", "H", "L"]
