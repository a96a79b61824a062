"""A practice's move between clinical systems as use cases, with a fake unit of work and two fake systems: the
plan's refusals, the freeze, matching with calls made outside any transaction, and rollback."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import cast

import pytest
from sqlalchemy import select

import patient_online.adapters.gpconnect  # noqa: F401  (registers the GP Connect adapter)
from patient_online.domain.access import Service
from patient_online.domain.controls import SwitchSetting
from patient_online.domain.errors import InputError, ServiceOff
from patient_online.domain.patients import Demographics, PatientRef
from patient_online.domain.system_migration import MatchOutcome, MigrationRefused, MigrationState
from patient_online.models import AuditEvent, Patient, PatientSystemId, Practice
from patient_online.services import controls, practices
from patient_online.services import system_migration as migration
from patient_online.services.access import acting_for
from patient_online.services.unit_of_work import FixedClock
from tests.fakes import FakeClinicalSystem, FakeClinicalSystems, FakeUnitOfWork
from tests.unit.conftest import linked_user, patient, practice, staff

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # the fake unit of work's clock
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def surgery(uow: FakeUnitOfWork) -> Practice:
    found = practice(uow)
    uow.commit()
    return found


@pytest.fixture
def new_system(uow: FakeUnitOfWork) -> FakeClinicalSystem:
    system = FakeClinicalSystem(name="new")
    cast(FakeClinicalSystems, uow.clinical_systems).by_adapter["demo"] = system
    return system


def plan(uow: FakeUnitOfWork, where: Practice, start: dt.datetime = NOW - HOUR) -> migration.MigrationView:
    return migration.plan_migration(uow, 7, where.ods_code, "demo", {"copy": "2"}, start, start + 48 * HOUR)


def known(system: FakeClinicalSystem, person: Patient, new_id: str, **changes: object) -> None:
    demographics = Demographics(
        PatientRef(person.practice.ods_code, person.nhs_number, new_id),
        person.given_name,
        person.family_name,
        person.date_of_birth,
        "KB1 4RT",
    )
    system.patients[person.nhs_number] = replace(demographics, **changes)  # type: ignore[arg-type]


def actions(uow: FakeUnitOfWork) -> list[str]:
    return [a for a in uow.audit_actions() if a.startswith("migration.")]


def test_a_plan_names_a_known_adapter_a_window_that_ends_and_a_new_system(
    uow: FakeUnitOfWork, surgery: Practice
) -> None:
    with pytest.raises(InputError, match="No clinical-system adapter called 'emis'"):
        migration.plan_migration(uow, 7, surgery.ods_code, "emis", {}, NOW, NOW + HOUR)
    with pytest.raises(InputError, match="must end after it starts"):
        migration.plan_migration(uow, 7, surgery.ods_code, "demo", {"copy": "2"}, NOW, NOW)
    with pytest.raises(InputError) as bad:
        migration.plan_migration(uow, 7, surgery.ods_code, "gpconnect", {"base_url": "gp"}, NOW, NOW + HOUR)
    assert "base_url" in bad.value.fields
    view = plan(uow, surgery)
    assert view.state is MigrationState.PLANNED
    assert "changing its clinical system until 4 March 2026" in view.patient_message
    with pytest.raises(InputError, match="already has a clinical system change planned"):
        plan(uow, surgery)
    assert actions(uow) == ["migration.planned"]


def test_gp_connect_can_be_the_target_and_its_secrets_are_never_shown(uow: FakeUnitOfWork, surgery: Practice) -> None:
    options = {
        "base_url": "https://gpconnect.example.org/fhir",
        "provider_asid": "918999198738",
        "consumer_asid": "200000000359",
    }
    view = migration.plan_migration(uow, 7, surgery.ods_code, "gpconnect", options, NOW, NOW + HOUR)
    assert view.target_adapter == "gpconnect"
    assert view.target_options["base_url"] == "https://gpconnect.example.org/fhir"


def test_changes_cannot_pause_before_the_window_starts(uow: FakeUnitOfWork, surgery: Practice) -> None:
    plan(uow, surgery, start=NOW + HOUR)
    with pytest.raises(MigrationRefused, match="changes cannot pause before then"):
        migration.freeze(uow, 7, surgery.ods_code)


def test_the_freeze_pauses_booking_and_ordering_with_the_plan_s_words_and_keeps_the_record(
    uow: FakeUnitOfWork, surgery: Practice
) -> None:
    person = patient(uow, surgery)
    user = linked_user(uow, person)
    plan(uow, surgery)
    migration.freeze(uow, 7, surgery.ods_code)
    acting = acting_for(uow.session, user, None)
    assert acting is not None
    for service in (Service.APPOINTMENTS, Service.PRESCRIPTIONS):
        with pytest.raises(ServiceOff, match="changing its clinical system"):
            acting.require(service)
    acting.require(Service.RECORD)
    assert actions(uow) == ["migration.planned", "migration.freezing"]


def test_cut_over_matches_outside_any_transaction_and_holds_back_who_cannot_be_matched(
    uow: FakeUnitOfWork, surgery: Practice, new_system: FakeClinicalSystem
) -> None:
    same, moved, missing = (patient(uow, surgery) for _ in range(3))
    for person in (same, moved, missing):
        linked_user(uow, person)
    known(new_system, same, "NEW-1")
    known(new_system, moved, "NEW-2", date_of_birth=dt.date(1981, 1, 1))
    old = {p.id: p.clinical_id for p in (same, moved, missing)}
    plan(uow, surgery)
    migration.freeze(uow, 7, surgery.ods_code)

    report = migration.cut_over(uow, 7, surgery.ods_code, batch_size=2)  # the fake system raises if a txn is open

    assert (report.linked, report.matched) == (3, 1)
    assert {w.outcome for w in report.waiting} == {MatchOutcome.BIRTH_DATE_DIFFERS, MatchOutcome.NOT_FOUND}
    assert (same.clinical_id, moved.clinical_id, missing.clinical_id) == ("NEW-1", "", "")
    ids = set(uow.session.execute(select(PatientSystemId.patient_id, PatientSystemId.logical_id)).tuples())
    assert ids >= {(same.id, old[same.id]), (same.id, "NEW-1"), (moved.id, old[moved.id])}
    assert surgery.adapter_name == "demo" and surgery.switch("appointments").enabled  # type: ignore[union-attr]
    listed = migration.checking_list(uow, 9, surgery)
    assert {w.patient_id for w in listed.patients} == {moved.id, missing.id}

    migration.roll_back(uow, 7, surgery.ods_code)
    assert (same.clinical_id, moved.clinical_id, missing.clinical_id) == (old[same.id], old[moved.id], old[missing.id])
    assert surgery.adapter_name == "fake"
    events = uow.session.scalars(select(AuditEvent.action).where(AuditEvent.patient_id == moved.id)).all()
    assert "migration.patient_unmatched" in events


def test_rollback_is_refused_once_the_window_has_ended(uow: FakeUnitOfWork, surgery: Practice) -> None:
    plan(uow, surgery)
    migration.freeze(uow, 7, surgery.ods_code)
    cast(FixedClock, uow.clock).advance(hours=49)
    with pytest.raises(MigrationRefused, match="can no longer be rolled back"):
        migration.roll_back(uow, 7, surgery.ods_code)


def test_a_plan_that_never_started_can_be_cancelled_even_after_its_window(
    uow: FakeUnitOfWork, surgery: Practice
) -> None:
    plan(uow, surgery)
    cast(FixedClock, uow.clock).advance(hours=49)
    assert migration.roll_back(uow, 7, surgery.ods_code).state is MigrationState.ROLLED_BACK
    assert surgery.adapter_name == "fake"


def test_while_changes_are_paused_no_one_switches_them_back_on_or_swaps_the_adapter_by_hand(
    uow: FakeUnitOfWork, surgery: Practice
) -> None:
    manager = staff(uow, surgery)
    plan(uow, surgery)
    with pytest.raises(InputError, match="plan to change its clinical system"):
        practices.set_adapter(uow, surgery.ods_code, "demo", {}, 7)
    migration.freeze(uow, 7, surgery.ods_code)
    for service in (Service.APPOINTMENTS, Service.PRESCRIPTIONS):
        with pytest.raises(InputError) as refused:
            controls.set_switch(uow, surgery, manager, SwitchSetting(service, enabled=True))
        assert "paused while your practice changes its clinical system" in refused.value.fields["enabled"]
        assert surgery.switch(service.value).enabled is False  # type: ignore[union-attr]
    assert controls.set_switch(uow, surgery, manager, SwitchSetting(Service.PROXY, enabled=False)) is True
