"""The GP record: levels of access, sections, and what is never shown online."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

EARLIEST_PROSPECTIVE_START = dt.date(2023, 10, 31)


class RecordLevel(enum.StrEnum):
    NONE = "none"
    SUMMARY = "summary"
    DETAILED = "detailed"
    FULL = "full"
    HISTORIC = "historic"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, RecordLevel):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, RecordLevel):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, RecordLevel):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, RecordLevel):
            return NotImplemented
        return self.rank >= other.rank

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_RANKS = {
    RecordLevel.NONE: 0,
    RecordLevel.SUMMARY: 1,
    RecordLevel.DETAILED: 2,
    RecordLevel.FULL: 3,
    RecordLevel.HISTORIC: 4,
}
_LABELS = {
    RecordLevel.NONE: "No record access",
    RecordLevel.SUMMARY: "Summary record",
    RecordLevel.DETAILED: "Detailed coded record",
    RecordLevel.FULL: "Full record",
    RecordLevel.HISTORIC: "Full record including historic entries",
}
_DESCRIPTIONS = {
    RecordLevel.NONE: "You cannot see your GP record online.",
    RecordLevel.SUMMARY: "You can see your allergies, adverse reactions and medicines.",
    RecordLevel.DETAILED: (
        "You can see your allergies, medicines, health problems, vaccinations, test results "
        "and the coded entries of your consultations."
    ),
    RecordLevel.FULL: (
        "You can see your detailed record, plus the notes from your consultations and your documents, "
        "for entries added since your access started."
    ),
    RecordLevel.HISTORIC: (
        "You can see your whole record, including notes and documents from before online access began."
    ),
}


class Section(enum.StrEnum):
    ALLERGIES = "allergies"
    MEDICATIONS = "medications"
    PROBLEMS = "problems"
    IMMUNISATIONS = "immunisations"
    TEST_RESULTS = "test-results"
    CONSULTATIONS = "consultations"
    DOCUMENTS = "documents"

    @property
    def label(self) -> str:
        return {
            "allergies": "Allergies and adverse reactions",
            "medications": "Medicines",
            "problems": "Health problems",
            "immunisations": "Vaccinations",
            "test-results": "Test results",
            "consultations": "Consultations",
            "documents": "Documents",
        }[self.value]

    @property
    def minimum_level(self) -> RecordLevel:
        if self in (Section.ALLERGIES, Section.MEDICATIONS):
            return RecordLevel.SUMMARY
        if self is Section.DOCUMENTS:
            return RecordLevel.FULL
        return RecordLevel.DETAILED


def sections_for(level: RecordLevel) -> list[Section]:
    """The sections a patient at ``level`` may open, in reading order."""
    return [s for s in Section if level >= s.minimum_level]


class Withheld(enum.StrEnum):
    """Why an entry never leaves the server."""

    CONFIDENTIAL = "confidential"
    THIRD_PARTY = "third_party"
    SERIOUS_HARM = "serious_harm"
    NOT_FILED = "not_filed"
    BEFORE_ACCESS_START = "before_access_start"
    FREE_TEXT_NOT_AT_LEVEL = "free_text_not_at_level"
    SECTION_NOT_AT_LEVEL = "section_not_at_level"


@dataclass(frozen=True)
class RecordEntry:
    """One entry of the GP record as the clinical system holds it, flags and all."""

    id: str
    section: Section
    date: dt.date
    term: str
    code: str = ""
    free_text: str = ""
    status: str = ""  # "active" / "past" / "current" / "stopped"
    value: str = ""
    unit: str = ""
    reference_range: str = ""
    outside_range: bool = False
    filed_on: dt.date | None = None
    clinician: str = ""
    confidential: bool = False
    third_party: bool = False
    serious_harm: bool = False
    filed: bool = True
    severity: str = ""
    reaction: str = ""
    dosage: str = ""


@dataclass(frozen=True)
class RecordNotice:
    """Something the practice's system told us about what it could not send."""

    section: Section | None
    text: str


@dataclass
class RecordExtract:
    """What the clinical system returned for one patient."""

    entries: list[RecordEntry] = field(default_factory=list)
    notices: list[RecordNotice] = field(default_factory=list)


def withholding_reason(entry: RecordEntry, level: RecordLevel, access_start: dt.date) -> Withheld | None:
    """Rule 16 and rule 8: why ``entry`` must not be shown at ``level``, or None when it may be."""
    if entry.confidential:
        return Withheld.CONFIDENTIAL
    if entry.third_party:
        return Withheld.THIRD_PARTY
    if entry.serious_harm:
        return Withheld.SERIOUS_HARM
    if not entry.filed:
        return Withheld.NOT_FILED
    if level < entry.section.minimum_level:
        return Withheld.SECTION_NOT_AT_LEVEL
    if entry.section is Section.DOCUMENTS and level == RecordLevel.FULL and entry.date < access_start:
        return Withheld.BEFORE_ACCESS_START
    return None


def visible_entry(entry: RecordEntry, level: RecordLevel, access_start: dt.date) -> RecordEntry | None:
    """The entry as the patient may see it: None when withheld, free text removed where not allowed."""
    if withholding_reason(entry, level, access_start) is not None:
        return None
    show_free_text = level == RecordLevel.HISTORIC or (level == RecordLevel.FULL and entry.date >= access_start)
    if entry.free_text and not show_free_text:
        if entry.section is Section.CONSULTATIONS and not entry.code:
            return None  # a consultation entry that is only free text
        return replace(entry, free_text="")
    return entry


def filter_entries(entries: Iterable[RecordEntry], level: RecordLevel, access_start: dt.date) -> list[RecordEntry]:
    """Every entry the patient may see, newest first."""
    shown = [v for e in entries if (v := visible_entry(e, level, access_start)) is not None]
    return sorted(shown, key=lambda e: (e.date, e.id), reverse=True)
