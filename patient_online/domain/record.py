"""The GP record: levels of access, sections, and what is never shown online."""

from __future__ import annotations

import datetime as dt
import enum
import re
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
    def plain_label(self) -> str:
        """The level's name for patients and proxies: the contract's names ("detailed coded record") are for staff."""
        return _PLAIN_LABELS[self]

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]

    @property
    def includes(self) -> str:
        """What the level shows, in words that fit after "you can see" for a patient or a proxy."""
        return _INCLUDES[self]


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
_PLAIN_LABELS = {
    RecordLevel.NONE: "No record access",
    RecordLevel.SUMMARY: "Summary record",
    RecordLevel.DETAILED: "Detailed record",
    RecordLevel.FULL: "Full record",
    RecordLevel.HISTORIC: "Full record, including older entries",
}
_DESCRIPTIONS = {
    RecordLevel.NONE: "You cannot see your GP record online.",
    RecordLevel.SUMMARY: "You can see your allergies, adverse reactions and medicines.",
    RecordLevel.DETAILED: (
        "You can see your allergies, medicines, health problems, vaccinations, test results "
        "and the date and reason of each consultation, without the notes."
    ),
    RecordLevel.FULL: (
        "You can see your detailed record, plus the notes from your consultations and your documents, "
        "for entries added since your access started."
    ),
    RecordLevel.HISTORIC: (
        "You can see your whole record, including notes and documents from before online access began."
    ),
}


_INCLUDES = {
    RecordLevel.NONE: "nothing of the GP record online",
    RecordLevel.SUMMARY: "allergies, adverse reactions and medicines",
    RecordLevel.DETAILED: (
        "allergies, medicines, health problems, vaccinations, test results "
        "and the date and reason of each consultation, without the notes"
    ),
    RecordLevel.FULL: "the detailed record, plus notes from consultations and documents added since access started",
    RecordLevel.HISTORIC: "the whole record, including notes and documents from before online access began",
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
    not_given: bool = False  # a vaccination recorded as not given
    not_given_reason: str = ""

    @property
    def range_flag(self) -> RangeFlag | None:
        """Below or above the reference range, when the value and the range can both be read."""
        return range_flag(self.value, self.reference_range)

    @property
    def is_past(self) -> bool:
        """A stopped medicine, a past problem, a resolved allergy: shown apart from current ones."""
        return self.status.lower() in _PAST_STATUSES


_PAST_STATUSES = frozenset({"past", "stopped", "resolved", "inactive", "completed", "ended"})


class RangeFlag(enum.StrEnum):
    """Which side of its reference range a result falls."""

    LOW = "low"
    HIGH = "high"

    @property
    def label(self) -> str:
        return "Below the normal range" if self is RangeFlag.LOW else "Above the normal range"


@dataclass(frozen=True)
class ReferenceRange:
    """A result's normal range: both limits ("3.5 - 5.0", limits inside), or one ("> 60", "< 48")."""

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True

    def flag(self, value: float) -> RangeFlag | None:
        if self.low is not None and (value < self.low or (value == self.low and not self.low_inclusive)):
            return RangeFlag.LOW
        if self.high is not None and (value > self.high or (value == self.high and not self.high_inclusive)):
            return RangeFlag.HIGH
        return None


_NUMBER = r"-?\d+(?:\.\d+)?"
_BETWEEN = re.compile(rf"^({_NUMBER})\s*(?:-|–|to)\s*({_NUMBER})$")
_ONE_SIDED = re.compile(rf"^(>=|<=|≥|≤|>|<)\s*({_NUMBER})$")
_PLAIN_VALUE = re.compile(rf"^{_NUMBER}$")


def parse_reference_range(text: str) -> ReferenceRange | None:
    """Read a laboratory's range as clinical systems print it, or None when it is words or malformed.

    A range is only trusted when it reads one way: "5 - 1" or "1 - 2 - 3" give no range, hence no flag."""
    words = " ".join(text.split())
    if between := _BETWEEN.match(words):
        low, high = float(between[1]), float(between[2])
        return ReferenceRange(low=low, high=high) if low <= high else None
    if one_sided := _ONE_SIDED.match(words):
        sign, limit = one_sided[1], float(one_sided[2])
        inclusive = sign in (">=", "<=", "≥", "≤")
        if sign in (">", ">=", "≥"):
            return ReferenceRange(low=limit, low_inclusive=inclusive)
        return ReferenceRange(high=limit, high_inclusive=inclusive)
    return None


def range_flag(value: str, reference_range: str) -> RangeFlag | None:
    """Low or high against the range, or None when inside it or when either cannot be read as a number:
    a value such as "<5" or "Negative" is never guessed at."""
    found = parse_reference_range(reference_range)
    words = value.strip()
    if found is None or not _PLAIN_VALUE.match(words):
        return None
    return found.flag(float(words))


@dataclass(frozen=True)
class RecordNotice:
    """Something the practice's system told us about what it could not send."""

    section: Section | None
    text: str


@dataclass(frozen=True)
class SectionNote:
    """What the practice recorded about a section as a whole: why it is empty ("No known allergies"), in words
    a patient reads, and the practice system's own note on it."""

    section: Section
    empty_reason: str = ""
    note: str = ""


@dataclass
class RecordExtract:
    """What the clinical system returned for one patient."""

    entries: list[RecordEntry] = field(default_factory=list)
    notices: list[RecordNotice] = field(default_factory=list)
    section_notes: list[SectionNote] = field(default_factory=list)


# "No known allergy" (SNOMED CT 716186003) and its children: a statement about the section, not an allergy.
NO_KNOWN_ALLERGY_CODES = frozenset({"716186003", "409137002", "429625007", "428607008"})
NO_CONTENT_RECORDED_NOTE = "information not available"  # the note GP Connect requires on every empty list

_EMPTY_REASONS = {
    "nilknown": "none known",
    "nil-known": "none known",
    "notasked": "the practice has not asked about this",
    "withheld": "your GP practice has chosen not to share this online",
    "unavailable": "this information is not available",
    "notstarted": "the practice has not started recording this",
    "closed": "this list has been closed",
    "no-content-recorded": "nothing has been recorded",
}


def empty_reason_words(section: Section, code: str, words: str = "") -> str:
    """Why a section is empty, as the practice recorded it, in words a patient reads: "No known allergies" for
    an allergy list that is nil known, else "Nothing to show: <reason>". ``words`` is the sender's own text,
    used for a code this list does not know."""
    key = code.strip().lower()
    if key in ("nilknown", "nil-known"):
        return "No known allergies" if section is Section.ALLERGIES else f"No known {section.label.lower()}"
    reason = _EMPTY_REASONS.get(key) or words.strip() or "the practice's system gave no reason"
    return f"Nothing to show: {reason}."


def split_no_known_allergies(entries: Iterable[RecordEntry]) -> tuple[list[RecordEntry], list[SectionNote]]:
    """Entries coded "no known allergy" are what the practice recorded about the allergy list, not allergies:
    they become the section's note (when no allergy is recorded beside them) and are taken out of the entries."""
    kept: list[RecordEntry] = []
    statements: list[RecordEntry] = []
    for entry in entries:
        is_statement = entry.section is Section.ALLERGIES and entry.code in NO_KNOWN_ALLERGY_CODES
        (statements if is_statement else kept).append(entry)
    has_allergies = any(e.section is Section.ALLERGIES and not e.is_past for e in kept)
    if not statements or has_allergies:
        return kept, []
    newest = max(statements, key=lambda e: (e.date, e.id))
    return kept, [SectionNote(Section.ALLERGIES, empty_reason=_no_known_words(newest))]


def _no_known_words(entry: RecordEntry) -> str:
    term = " ".join(entry.term.split())
    if term.lower().startswith("no known") and term.lower() != "no known allergy":
        return term[:1].upper() + term[1:]
    return "No known allergies"


def prospective_start(access_start: dt.date) -> dt.date:
    """Rule 8: full access is prospective from the access start date, and never earlier than 31 Oct 2023."""
    return max(access_start, EARLIEST_PROSPECTIVE_START)


def free_text_allowed(entry_date: dt.date, level: RecordLevel, access_start: dt.date) -> bool:
    """Free text (consultation notes, comments, documents) is shown at ``full`` from the access start,
    and at ``historic`` whatever its date."""
    if level >= RecordLevel.HISTORIC:
        return True
    return level == RecordLevel.FULL and entry_date >= prospective_start(access_start)


def _free_text_reason(entry: RecordEntry, level: RecordLevel, access_start: dt.date) -> Withheld | None:
    if free_text_allowed(entry.date, level, access_start):
        return None
    return Withheld.BEFORE_ACCESS_START if level >= RecordLevel.FULL else Withheld.FREE_TEXT_NOT_AT_LEVEL


def is_free_text_only(entry: RecordEntry) -> bool:
    """Documents, and consultation entries with no coded part, are free text through and through."""
    return entry.section is Section.DOCUMENTS or (entry.section is Section.CONSULTATIONS and not entry.code)


def withholding_reason(entry: RecordEntry, level: RecordLevel, access_start: dt.date) -> Withheld | None:
    """Rules 8 and 16: why ``entry`` must not be shown at all at ``level``, or None when it may be.

    Flags on the entry win over everything; then filing; then the level. Coded entries of the detailed
    record are shown whatever their date; entries that are only free text follow the free-text rule.
    """
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
    if is_free_text_only(entry):
        return _free_text_reason(entry, level, access_start)
    return None


def free_text_reason(entry: RecordEntry, level: RecordLevel, access_start: dt.date) -> Withheld | None:
    """Why the free text of an entry that is shown must be left out, or None when it may be shown."""
    if not entry.free_text:
        return None
    return _free_text_reason(entry, level, access_start)


def visible_entry(entry: RecordEntry, level: RecordLevel, access_start: dt.date) -> RecordEntry | None:
    """The entry as the patient may see it: None when withheld, free text removed where not allowed."""
    if withholding_reason(entry, level, access_start) is not None:
        return None
    if free_text_reason(entry, level, access_start) is not None:
        return replace(entry, free_text="")
    return entry


def filter_entries(entries: Iterable[RecordEntry], level: RecordLevel, access_start: dt.date) -> list[RecordEntry]:
    """Every entry the patient may see, newest first."""
    shown = [v for e in entries if (v := visible_entry(e, level, access_start)) is not None]
    return sorted(shown, key=lambda e: (e.date, e.id), reverse=True)
