"""The rules of a practice's move between clinical systems: which steps a plan may take, when a patient found
in the new system is safely the same person, and the words patients read meanwhile."""

from __future__ import annotations

import datetime as dt

import pytest

from patient_online.domain.access import AccessInputs, PracticeSwitch, Service, effective_access
from patient_online.domain.patients import Demographics, PatientRef
from patient_online.domain.record import RecordLevel
from patient_online.domain.system_migration import (
    MatchOutcome,
    MigrationRefused,
    MigrationState,
    checking_message,
    freeze_message,
    match_patient,
    require_step,
)

BORN = dt.date(1970, 4, 1)


def found(clinical_id: str = "N1", born: dt.date = BORN, family: str = "Okafor") -> Demographics:
    return Demographics(PatientRef("Y1", "9000000009", clinical_id), "Ada", family, born, "KB1 4RT")


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        (MigrationState.PLANNED, MigrationState.FREEZING),
        (MigrationState.FREEZING, MigrationState.CUT_OVER),
        (MigrationState.CUT_OVER, MigrationState.MATCHING),
        (MigrationState.MATCHING, MigrationState.DONE),
        (MigrationState.FREEZING, MigrationState.ROLLED_BACK),
        (MigrationState.MATCHING, MigrationState.ROLLED_BACK),
    ],
)
def test_the_plan_moves_one_step_at_a_time(current: MigrationState, wanted: MigrationState) -> None:
    require_step(current, wanted)


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        (MigrationState.PLANNED, MigrationState.CUT_OVER),
        (MigrationState.FREEZING, MigrationState.DONE),
        (MigrationState.DONE, MigrationState.ROLLED_BACK),
        (MigrationState.ROLLED_BACK, MigrationState.FREEZING),
    ],
)
def test_a_step_out_of_order_is_refused_in_plain_words(current: MigrationState, wanted: MigrationState) -> None:
    with pytest.raises(MigrationRefused, match=f"The plan is '{current.label}'"):
        require_step(current, wanted)


def test_a_patient_found_by_nhs_number_with_the_same_birth_date_is_matched_with_the_new_id() -> None:
    match = match_patient(BORN, found("NEW-7"), [found("NEW-7")])
    assert (match.outcome, match.new_id) == (MatchOutcome.MATCHED, "NEW-7")


def test_not_found_a_different_birth_date_or_a_second_record_go_to_reception() -> None:
    assert match_patient(BORN, None).outcome is MatchOutcome.NOT_FOUND
    assert match_patient(BORN, found(born=BORN + dt.timedelta(days=1))).outcome is MatchOutcome.BIRTH_DATE_DIFFERS
    twice = match_patient(BORN, found("NEW-7"), [found("NEW-7"), found("NEW-8")])
    assert (twice.outcome, twice.new_id) == (MatchOutcome.FOUND_TWICE, "")
    for outcome in MatchOutcome:
        assert (outcome.reason == "") is (outcome is MatchOutcome.MATCHED)


def test_patients_read_what_still_works_and_whom_to_call_while_changes_pause() -> None:
    words = freeze_message("Riverside Medical Centre", dt.date(2026, 12, 7), "01632 960 101")
    assert words.startswith("Riverside Medical Centre is changing its clinical system until 7 December 2026.")
    assert "You can still see your appointments and GP record online." in words
    assert "call 01632 960 101" in words
    assert "contact the practice" in freeze_message("the practice", None, "")


def access(held: str = "") -> dict[Service, bool]:
    inputs = AccessInputs(
        today=dt.date(2026, 12, 3),
        practice_services={s: PracticeSwitch(True) for s in Service},
        practice_default_level=RecordLevel.FULL,
        practice_access_start=dt.date(2023, 10, 31),
        age=40,
        held_message=held,
    )
    result = effective_access(inputs)
    if held:
        assert set(result.messages.values()) == {held}
    return result.services


def test_a_patient_reception_is_checking_gets_every_service_back_only_when_matched() -> None:
    words = checking_message("Riverside Medical Centre", "01632 960 101")
    assert "We are checking your details after Riverside Medical Centre's system change" in words
    assert not any(access(words).values())
    assert all(access().values())
