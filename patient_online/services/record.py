"""Reading the GP record online: what the practice has opened, and nothing more (rules 8, 16, 19).

Every entry is filtered here, before any template or download sees it; each view and download is audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from patient_online.domain.access import Service
from patient_online.domain.errors import ClinicalSystemUnavailable, NotAllowed
from patient_online.domain.record import (
    RecordEntry,
    RecordLevel,
    Section,
    filter_entries,
    prospective_start,
    sections_for,
)

from .access import Acting
from .record_fhir import record_bundle
from .unit_of_work import AbstractUnitOfWork


@dataclass(frozen=True)
class SectionView:
    """One section as the patient may see it: visible entries newest first, and the practice's notices."""

    section: Section
    entries: list[RecordEntry]
    notices: list[str] = field(default_factory=list)
    empty_reason: str = ""  # why the practice's list is empty, as it recorded it ("No known allergies")
    note: str = ""  # the practice system's note on the section as a whole

    @property
    def current(self) -> list[RecordEntry]:
        """Current medicines, active problems and allergies (the rest are past)."""
        return [e for e in self.entries if not e.is_past]

    @property
    def past(self) -> list[RecordEntry]:
        return [e for e in self.entries if e.is_past]


@dataclass(frozen=True)
class RecordScope:
    """What the acting person may see of the record, and how to ask for more, without the entries."""

    level: RecordLevel
    access_start: dt.date
    sections: list[Section]
    not_included: list[Section]
    next_level: RecordLevel | None
    is_proxy: bool

    @property
    def shows_notes(self) -> bool:
        """Whether consultation notes and documents are part of this level at all."""
        return self.level >= RecordLevel.FULL

    @property
    def free_text_from(self) -> dt.date | None:
        """The date from which notes and documents are shown, or None when all (or none) are."""
        return self.access_start if self.level == RecordLevel.FULL else None

    def section_intro(self, section: Section) -> str:
        """The line above a section's entries: their order and, where dates matter, exactly what they cover.

        At full access coded consultations are listed whatever their date and only their notes start at the
        access start, so the page must not claim that the whole list starts there (documents do)."""
        start = self.free_text_from
        level_words = "this level of access" if self.is_proxy else "your level of access"
        if section is Section.CONSULTATIONS and not self.shows_notes:
            return (
                "Newest first. You can see the date and reason of each consultation, and who it was with. "
                f"The notes that clinicians wrote are not included at {level_words}."
            )
        if section is Section.CONSULTATIONS and start is not None:
            return (
                f"Newest first. Notes written by clinicians are shown for consultations from {_day(start)}. "
                "Earlier consultations are listed without their notes."
            )
        if section is Section.DOCUMENTS and start is not None:
            return f"Shown from {_day(start)}, newest first. Earlier documents are not shown online."
        if section is Section.TEST_RESULTS:
            return (
                "Newest first. A result outside the normal range does not always mean something is wrong. "
                "Your GP practice will contact you if you need to do anything."
            )
        return "Newest first."


def _day(day: dt.date) -> str:
    return f"{day.day} {day:%B %Y}"


@dataclass(frozen=True)
class RecordOverview:
    scope: RecordScope
    sections: list[SectionView]
    notices: list[str]
    available: bool = True


@dataclass(frozen=True)
class PrintableRecord:
    scope: RecordScope
    sections: list[SectionView]
    notices: list[str]
    printed_on: dt.date


def record_scope(acting: Acting) -> RecordScope:
    """The acting person's record level, its sections and the next level up, from their effective access."""
    level = acting.access.record_level if acting.access.allows(Service.RECORD) else RecordLevel.NONE
    allowed = sections_for(level)
    higher = [lv for lv in RecordLevel if lv > level]
    return RecordScope(
        level=level,
        access_start=prospective_start(acting.access.access_start),
        sections=allowed,
        not_included=[s for s in Section if s not in allowed],
        next_level=higher[0] if higher else None,
        is_proxy=acting.is_proxy,
    )


def _require_record(acting: Acting) -> RecordScope:
    acting.require(Service.RECORD)
    return record_scope(acting)


def _require_section(acting: Acting, scope: RecordScope, section: Section) -> None:
    if section not in scope.sections:
        whose = "What you can see as a proxy" if scope.is_proxy else "Your record access"
        practice = acting.practice
        contact = f"{practice.name} on {practice.phone}" if practice.phone else practice.name
        raise NotAllowed(
            f"{whose} ({scope.level.plain_label.lower()}) does not include {section.label.lower()}. "
            f"You can see {scope.level.includes}. To ask for more, contact {contact}."
        )


def _fetch(
    uow: AbstractUnitOfWork, acting: Acting, scope: RecordScope, sections: list[Section]
) -> tuple[list[SectionView], list[str]]:
    """Ask the practice's system for ``sections`` and keep only what the patient may see, per section,
    with the notices about the whole record apart. No database transaction is held open during the call."""
    system, ref = uow.clinical(acting.practice), acting.ref
    uow.release()
    extract = system.get_record(ref, frozenset(sections))
    notes = {n.section: n for n in extract.section_notes}
    views = []
    for section in sections:
        entries = filter_entries((e for e in extract.entries if e.section is section), scope.level, scope.access_start)
        recorded = notes.get(section)
        views.append(
            SectionView(
                section,
                entries,
                _unique(n.text for n in extract.notices if n.section is section),
                # An empty reason only speaks for an empty section: entries the patient sees contradict it.
                empty_reason=recorded.empty_reason if recorded and not entries else "",
                note=recorded.note if recorded else "",
            )
        )
    return views, _unique(n.text for n in extract.notices if n.section is None)


def _unique(texts: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(texts))


def _audit(uow: AbstractUnitOfWork, acting: Acting, action: str, **detail: Any) -> None:
    uow.audit(
        action,
        actor_id=acting.user.id,
        actor_role=acting.actor_role,
        patient_id=acting.patient.id,
        practice_id=acting.practice.id,
        **detail,
    )
    uow.commit()


def view_overview(uow: AbstractUnitOfWork, acting: Acting) -> RecordOverview:
    """The sections the acting person may open, with how many entries each holds; still explains the
    level when the practice's system cannot be reached."""
    scope = _require_record(acting)
    try:
        views, general = _fetch(uow, acting, scope, scope.sections)
    except ClinicalSystemUnavailable:
        return RecordOverview(scope, [], [], available=False)
    _audit(uow, acting, "record.viewed", section="overview")
    return RecordOverview(scope, views, general)


def view_section(uow: AbstractUnitOfWork, acting: Acting, section: Section) -> tuple[RecordScope, SectionView]:
    """One section of the record, refused (403) when the acting person's level does not include it."""
    scope = _require_record(acting)
    _require_section(acting, scope, section)
    (view,), general = _fetch(uow, acting, scope, [section])
    _audit(uow, acting, "record.viewed", section=section.value)
    return scope, replace(view, notices=[*view.notices, *general])


def printable_record(uow: AbstractUnitOfWork, acting: Acting) -> PrintableRecord:
    """Everything the acting person may see, on one page made for printing or saving as PDF."""
    scope = _require_record(acting)
    views, general = _fetch(uow, acting, scope, scope.sections)
    _audit(uow, acting, "record.downloaded", format="print")
    return PrintableRecord(scope, views, general, uow.today())


def export_fhir_bundle(uow: AbstractUnitOfWork, acting: Acting) -> dict[str, Any]:
    """Everything the acting person may see as a FHIR R4 Bundle (type collection), and nothing withheld."""
    scope = _require_record(acting)
    views, _general = _fetch(uow, acting, scope, scope.sections)
    _audit(uow, acting, "record.downloaded", format="fhir-json")
    patient = acting.patient
    return record_bundle(
        nhs_number=patient.nhs_number,
        given_name=patient.given_name,
        family_name=patient.family_name,
        date_of_birth=patient.date_of_birth,
        practice_ods=acting.practice.ods_code,
        practice_name=acting.practice.name,
        entries=[e for v in views for e in v.entries],
    )
