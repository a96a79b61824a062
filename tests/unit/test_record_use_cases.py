"""Reading the GP record as use cases, with a fake unit of work and clinical system: each access level shows
its own sections, withheld entries never leave the server, results show only once filed, and every view and
download is audited."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from patient_online.domain.access import Service
from patient_online.domain.errors import ClinicalSystemUnavailable, NotAllowed, ServiceOff
from patient_online.domain.record import RecordEntry, RecordExtract, RecordLevel, RecordNotice, Section
from patient_online.models import AuditEvent
from patient_online.services import record as records
from patient_online.services.access import Acting
from tests.fakes import FakeUnitOfWork
from tests.unit.conftest import acting, patient, practice

BEFORE = dt.date(2022, 5, 1)  # before the earliest access start (31 October 2023)
AFTER = dt.date(2024, 6, 1)

SHOWN = [
    RecordEntry("A1", Section.ALLERGIES, BEFORE, "Penicillin allergy", reaction="Rash"),
    RecordEntry("M1", Section.MEDICATIONS, AFTER, "Amlodipine 5mg tablets", status="current"),
    RecordEntry("P1", Section.PROBLEMS, BEFORE, "Asthma", status="active"),
    RecordEntry("I1", Section.IMMUNISATIONS, AFTER, "Influenza vaccine"),
    RecordEntry("T1", Section.TEST_RESULTS, AFTER, "HbA1c", value="41", unit="mmol/mol", filed_on=AFTER),
    RecordEntry("C1", Section.CONSULTATIONS, AFTER, "Chest pain", code="29857009", free_text="Settled with rest"),
    RecordEntry("C2", Section.CONSULTATIONS, BEFORE, "", free_text="Old note before online access"),
    RecordEntry("D1", Section.DOCUMENTS, AFTER, "Discharge letter", free_text="Letter text"),
]
WITHHELD = [
    RecordEntry("X1", Section.ALLERGIES, AFTER, "Secret allergy", confidential=True),
    RecordEntry("X2", Section.CONSULTATIONS, AFTER, "About a relative", code="1", third_party=True),
    RecordEntry("X3", Section.MEDICATIONS, AFTER, "Harmful medicine", serious_harm=True),
    RecordEntry("X4", Section.TEST_RESULTS, AFTER, "Unfiled result", filed=False),
]
EXPECTED = {
    RecordLevel.SUMMARY: {"A1", "M1"},
    RecordLevel.DETAILED: {"A1", "M1", "P1", "I1", "T1", "C1"},
    RecordLevel.FULL: {"A1", "M1", "P1", "I1", "T1", "C1", "D1"},
    RecordLevel.HISTORIC: {"A1", "M1", "P1", "I1", "T1", "C1", "C2", "D1"},
}


def reader(uow: FakeUnitOfWork, level: RecordLevel) -> Acting:
    """A patient at ``level`` whose practice's system holds every entry above, withheld ones included."""
    whose = patient(uow, practice(uow), record_level=level.value)
    uow.system.record[whose.nhs_number] = RecordExtract(
        entries=[*SHOWN, *WITHHELD],
        notices=[RecordNotice(None, "Some entries could not be shown"), RecordNotice(Section.DOCUMENTS, "Scan")],
    )
    return acting(uow, whose)


def audited(uow: FakeUnitOfWork) -> list[tuple[str, dict[str, object]]]:
    uow.session.flush()
    return [(e.action, e.detail) for e in uow.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


@pytest.mark.parametrize("level", list(EXPECTED))
def test_each_level_shows_its_own_sections_and_nothing_withheld(uow: FakeUnitOfWork, level: RecordLevel) -> None:
    current = reader(uow, level)
    overview = records.view_overview(uow, current)
    assert overview.available and overview.scope.level is level
    assert [v.section for v in overview.sections] == overview.scope.sections
    assert {e.id for v in overview.sections for e in v.entries} == EXPECTED[level]
    assert set(overview.scope.not_included) == set(Section) - set(overview.scope.sections)
    asked = {s for s in Section if s.minimum_level <= level}
    assert set(overview.scope.sections) == asked


@pytest.mark.parametrize("level", list(EXPECTED))
def test_withheld_entries_never_leave_in_any_view_or_download(uow: FakeUnitOfWork, level: RecordLevel) -> None:
    current = reader(uow, level)
    seen = [records.view_overview(uow, current).sections, records.printable_record(uow, current).sections]
    seen += [[records.view_section(uow, current, s)[1]] for s in records.record_scope(current).sections]
    for views in seen:
        ids = {e.id for v in views for e in v.entries}
        assert ids <= EXPECTED[level] and not ids & {e.id for e in WITHHELD}
    bundle = json.dumps(records.export_fhir_bundle(uow, current))
    for entry in WITHHELD:
        assert entry.term not in bundle
    assert all(entry.term in bundle for entry in SHOWN if entry.id in EXPECTED[level] and entry.term)


def test_free_text_follows_the_level_and_the_access_start(uow: FakeUnitOfWork) -> None:
    detailed = reader(uow, RecordLevel.DETAILED)
    _scope, consultations = records.view_section(uow, detailed, Section.CONSULTATIONS)
    assert [(e.id, e.free_text) for e in consultations.entries] == [("C1", "")]
    full = reader(uow, RecordLevel.FULL)
    _scope, consultations = records.view_section(uow, full, Section.CONSULTATIONS)
    assert [(e.id, e.free_text) for e in consultations.entries] == [("C1", "Settled with rest")]


def test_results_show_only_once_filed(uow: FakeUnitOfWork) -> None:
    current = reader(uow, RecordLevel.DETAILED)
    _scope, results = records.view_section(uow, current, Section.TEST_RESULTS)
    assert [(e.id, e.value, e.unit) for e in results.entries] == [("T1", "41", "mmol/mol")]


def test_every_view_and_download_is_audited_in_its_own_commit(uow: FakeUnitOfWork) -> None:
    current = reader(uow, RecordLevel.FULL)
    records.view_overview(uow, current)
    records.view_section(uow, current, Section.DOCUMENTS)
    printable = records.printable_record(uow, current)
    records.export_fhir_bundle(uow, current)
    assert not uow.in_transaction
    assert audited(uow) == [
        ("record.viewed", {"section": "overview"}),
        ("record.viewed", {"section": "documents"}),
        ("record.downloaded", {"format": "print"}),
        ("record.downloaded", {"format": "fhir-json"}),
    ]
    event = uow.session.scalars(select(AuditEvent)).first()
    assert event is not None
    assert (event.actor_user_id, event.actor_role, event.patient_id, event.practice_id) == (
        current.user.id,
        "patient",
        current.patient.id,
        current.practice.id,
    )
    assert printable.printed_on == dt.date(2026, 3, 2)
    assert uow.commits == 8  # each read leaves its transaction before the system is called, then audits
    assert uow.system.calls == ["get_record"] * 4


def test_notices_are_kept_apart_from_the_entries(uow: FakeUnitOfWork) -> None:
    current = reader(uow, RecordLevel.FULL)
    overview = records.view_overview(uow, current)
    assert overview.notices == ["Some entries could not be shown"]
    (documents,) = [v for v in overview.sections if v.section is Section.DOCUMENTS]
    assert documents.notices == ["Scan"]
    _scope, section = records.view_section(uow, current, Section.DOCUMENTS)
    assert section.notices == ["Scan", "Some entries could not be shown"]


def test_a_section_above_the_level_is_refused_without_asking_the_system(uow: FakeUnitOfWork) -> None:
    current = reader(uow, RecordLevel.SUMMARY)
    with pytest.raises(NotAllowed) as refused:
        records.view_section(uow, current, Section.TEST_RESULTS)
    assert "Your record access (summary record) does not include test results." in refused.value.message
    assert "You can see allergies, adverse reactions and medicines." in refused.value.message
    assert uow.system.calls == [] and audited(uow) == [] and uow.commits == 0


def test_no_record_access_refuses_every_view(uow: FakeUnitOfWork) -> None:
    whose = patient(uow, practice(uow, off=(Service.RECORD,)))
    current = acting(uow, whose)
    for view in (records.view_overview, records.printable_record, records.export_fhir_bundle):
        with pytest.raises(ServiceOff):
            view(uow, current)
    none = acting(uow, patient(uow, practice(uow), record_level="none"))
    with pytest.raises(ServiceOff):
        records.view_overview(uow, none)
    assert uow.system.calls == [] and audited(uow) == []


def test_the_overview_explains_the_level_when_the_system_is_down(uow: FakeUnitOfWork) -> None:
    current = reader(uow, RecordLevel.DETAILED)
    uow.system.down = True
    overview = records.view_overview(uow, current)
    assert not overview.available and overview.sections == [] and overview.scope.level is RecordLevel.DETAILED
    with pytest.raises(ClinicalSystemUnavailable):
        records.view_section(uow, current, Section.ALLERGIES)
    with pytest.raises(ClinicalSystemUnavailable):
        records.export_fhir_bundle(uow, current)
    assert not uow.in_transaction
    assert audited(uow) == []


def test_the_scope_names_the_next_level_and_the_free_text_start(uow: FakeUnitOfWork) -> None:
    summary = records.record_scope(reader(uow, RecordLevel.SUMMARY))
    assert summary.next_level is RecordLevel.DETAILED and not summary.shows_notes and summary.free_text_from is None
    full = records.record_scope(reader(uow, RecordLevel.FULL))
    assert full.shows_notes and full.free_text_from == dt.date(2023, 10, 31) and not full.is_proxy
