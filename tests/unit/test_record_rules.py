"""Rules 8 and 16, table-driven: for every access level and every withholding reason, what is shown."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from patient_online.domain.record import (
    EARLIEST_PROSPECTIVE_START,
    RecordEntry,
    RecordLevel,
    Section,
    Withheld,
    filter_entries,
    free_text_reason,
    sections_for,
    visible_entry,
    withholding_reason,
)

START = dt.date(2023, 10, 31)
AFTER = dt.date(2025, 3, 1)
BEFORE = dt.date(2021, 3, 4)
DAY_BEFORE = START - dt.timedelta(days=1)

N, S, D, F, H = (
    RecordLevel.NONE,
    RecordLevel.SUMMARY,
    RecordLevel.DETAILED,
    RecordLevel.FULL,
    RecordLevel.HISTORIC,
)
LEVELS = [N, S, D, F, H]
SHOWN = None
SEC, TXT, OLD = Withheld.SECTION_NOT_AT_LEVEL, Withheld.FREE_TEXT_NOT_AT_LEVEL, Withheld.BEFORE_ACCESS_START


def at(
    none: Withheld | None,
    summary: Withheld | None,
    detailed: Withheld | None,
    full: Withheld | None,
    historic: Withheld | None,
) -> dict[RecordLevel, Withheld | None]:
    """The expected outcome at none, summary, detailed, full and historic."""
    return dict(zip(LEVELS, (none, summary, detailed, full, historic), strict=True))


def entry(section: Section, when: dt.date = AFTER, **kw: Any) -> RecordEntry:
    return RecordEntry(id=f"{section.value}-{when}", section=section, date=when, term=f"A {section.value} entry", **kw)


ALLERGY = entry(Section.ALLERGIES, code="91936005", reaction="Rash", severity="Moderate")
MEDICINE = entry(Section.MEDICATIONS, code="318901003", dosage="One a day")
PROBLEM = entry(Section.PROBLEMS, code="59621000")
VACCINE = entry(Section.IMMUNISATIONS, code="86198006")
RESULT = entry(Section.TEST_RESULTS, code="1022431000000105", value="131", unit="g/L", filed_on=AFTER)
CONSULTATION = entry(Section.CONSULTATIONS, code="185317003", free_text="Reviewed. Plan agreed.")
NOTES_ONLY = entry(Section.CONSULTATIONS, free_text="Telephone call, no coded entry.")
DOCUMENT = entry(Section.DOCUMENTS, free_text="Discharge letter text.")

# Every withholding reason (and the entries that are shown), at every level: the expected reason, or SHOWN.
TABLE: list[tuple[str, RecordEntry, dict[RecordLevel, Withheld | None]]] = [
    # Flags on the entry: withheld at every level, whatever the section and date (rule 16).
    *[
        (f"confidential {e.section.value}", replace(e, confidential=True), dict.fromkeys(LEVELS, Withheld.CONFIDENTIAL))
        for e in (ALLERGY, MEDICINE, PROBLEM, VACCINE, RESULT, CONSULTATION, NOTES_ONLY, DOCUMENT)
    ],
    *[
        (f"third party {e.section.value}", replace(e, third_party=True), dict.fromkeys(LEVELS, Withheld.THIRD_PARTY))
        for e in (ALLERGY, PROBLEM, RESULT, CONSULTATION, NOTES_ONLY, DOCUMENT)
    ],
    *[
        (f"serious harm {e.section.value}", replace(e, serious_harm=True), dict.fromkeys(LEVELS, Withheld.SERIOUS_HARM))
        for e in (MEDICINE, PROBLEM, RESULT, CONSULTATION, DOCUMENT)
    ],
    ("old and confidential", replace(DOCUMENT, date=BEFORE, confidential=True), at(*[Withheld.CONFIDENTIAL] * 5)),
    # Test results only once filed by a clinician (rule 16).
    ("unfiled result", replace(RESULT, filed=False, filed_on=None), dict.fromkeys(LEVELS, Withheld.NOT_FILED)),
    # Sections by level (rule 8).
    ("allergy", ALLERGY, at(SEC, SHOWN, SHOWN, SHOWN, SHOWN)),
    ("medicine", MEDICINE, at(SEC, SHOWN, SHOWN, SHOWN, SHOWN)),
    *[
        (e.section.value, e, at(SEC, SEC, SHOWN, SHOWN, SHOWN))
        for e in (PROBLEM, VACCINE, RESULT, CONSULTATION)
    ],
    # Coded entries of the detailed record are shown whatever their date.
    *[
        (f"old {e.section.value}", replace(e, date=BEFORE), at(SEC, SEC, SHOWN, SHOWN, SHOWN))
        for e in (PROBLEM, VACCINE, RESULT, CONSULTATION)
    ],
    # Documents: full from the access start date, historic for earlier ones.
    ("document", DOCUMENT, at(SEC, SEC, SEC, SHOWN, SHOWN)),
    ("document before start", replace(DOCUMENT, date=BEFORE), at(SEC, SEC, SEC, OLD, SHOWN)),
    ("document on start day", replace(DOCUMENT, date=START), at(SEC, SEC, SEC, SHOWN, SHOWN)),
    ("document the day before start", replace(DOCUMENT, date=DAY_BEFORE), at(SEC, SEC, SEC, OLD, SHOWN)),
    # A consultation entry that is only free text follows the free-text rule.
    ("notes-only consultation", NOTES_ONLY, at(SEC, SEC, TXT, SHOWN, SHOWN)),
    ("old notes-only consultation", replace(NOTES_ONLY, date=BEFORE), at(SEC, SEC, TXT, OLD, SHOWN)),
]  # fmt: skip


@pytest.mark.parametrize("level", LEVELS, ids=[lv.value for lv in LEVELS])
@pytest.mark.parametrize(("name", "record_entry", "expected"), TABLE, ids=[row[0] for row in TABLE])
def test_withholding_reason_for_every_level(
    name: str, record_entry: RecordEntry, expected: dict[RecordLevel, Withheld | None], level: RecordLevel
) -> None:
    assert withholding_reason(record_entry, level, START) == expected[level]
    shown = visible_entry(record_entry, level, START)
    assert (shown is None) == (expected[level] is not None)
    assert (record_entry.id in {e.id for e in filter_entries([record_entry], level, START)}) == (shown is not None)


# Free text of an entry that is shown: kept only at full (from the start date) and historic.
FREE_TEXT: list[tuple[str, RecordEntry, dict[RecordLevel, Withheld | None]]] = [
    ("consultation notes", CONSULTATION, {D: TXT, F: SHOWN, H: SHOWN}),
    ("old consultation notes", replace(CONSULTATION, date=BEFORE), {D: TXT, F: OLD, H: SHOWN}),
    ("comment on a result", replace(RESULT, free_text="Repeat in 3 months."), {D: TXT, F: SHOWN, H: SHOWN}),
    ("old note on a problem", replace(PROBLEM, date=BEFORE, free_text="Family history."), {D: TXT, F: OLD, H: SHOWN}),
    ("note on an allergy", replace(ALLERGY, free_text="Reported by patient."), {S: TXT, D: TXT, F: SHOWN, H: SHOWN}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "record_entry", "level", "expected"),
    [(n, e, lv, want) for n, e, table in FREE_TEXT for lv, want in table.items()],
    ids=[f"{n}-{lv.value}" for n, _e, table in FREE_TEXT for lv in table],
)
def test_free_text_is_shown_only_where_the_level_allows(
    name: str, record_entry: RecordEntry, level: RecordLevel, expected: Withheld | None
) -> None:
    assert withholding_reason(record_entry, level, START) is None, "the coded entry itself is shown"
    assert free_text_reason(record_entry, level, START) == expected
    shown = visible_entry(record_entry, level, START)
    assert shown is not None
    assert shown.free_text == ("" if expected else record_entry.free_text)
    assert shown.term == record_entry.term and shown.code == record_entry.code


def test_access_start_is_never_earlier_than_31_october_2023() -> None:
    old_document = replace(DOCUMENT, date=dt.date(2022, 6, 1))
    assert withholding_reason(old_document, F, dt.date(2015, 1, 1)) == OLD
    assert EARLIEST_PROSPECTIVE_START == START


def test_a_later_access_start_moves_the_line() -> None:
    later = dt.date(2024, 6, 1)
    assert withholding_reason(replace(DOCUMENT, date=dt.date(2024, 1, 1)), F, later) == OLD
    assert withholding_reason(replace(DOCUMENT, date=later), F, later) is None
    assert visible_entry(replace(CONSULTATION, date=dt.date(2024, 1, 1)), F, later).free_text == ""  # type: ignore[union-attr]


def test_filter_entries_keeps_the_visible_ones_newest_first() -> None:
    entries = [
        replace(RESULT, id="r1", date=dt.date(2024, 1, 1)),
        replace(RESULT, id="r2", date=dt.date(2026, 1, 1)),
        replace(RESULT, id="r3", date=dt.date(2025, 1, 1)),
        replace(RESULT, id="unfiled", date=dt.date(2026, 6, 1), filed=False),
        replace(RESULT, id="secret", date=dt.date(2026, 5, 1), confidential=True),
    ]
    assert [e.id for e in filter_entries(entries, D, START)] == ["r2", "r3", "r1"]
    assert filter_entries(entries, S, START) == []


@pytest.mark.parametrize(
    ("level", "sections"),
    [
        (N, []),
        (S, ["allergies", "medications"]),
        (D, ["allergies", "medications", "problems", "immunisations", "test-results", "consultations"]),
        (F, ["allergies", "medications", "problems", "immunisations", "test-results", "consultations", "documents"]),
        (H, ["allergies", "medications", "problems", "immunisations", "test-results", "consultations", "documents"]),
    ],
)
def test_sections_for_each_level(level: RecordLevel, sections: list[str]) -> None:
    assert [s.value for s in sections_for(level)] == sections


def test_levels_are_ordered_and_explained() -> None:
    assert N < S < D < F < H
    assert sorted([H, N, F, S, D]) == LEVELS
    for level in LEVELS:
        assert level.label and level.description and level.includes
        assert "your" not in level.includes.lower(), "the words must also fit a proxy"


def test_past_entries_are_told_apart() -> None:
    assert replace(MEDICINE, status="stopped").is_past
    assert replace(PROBLEM, status="past").is_past
    assert not replace(MEDICINE, status="current").is_past
    assert not replace(PROBLEM, status="active").is_past
