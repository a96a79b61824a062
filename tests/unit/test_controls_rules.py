"""The limits on a practice's rules and switches (domain.controls): each refusal says what to do and why."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace

import pytest

from patient_online.domain.access import FLAG_ENHANCED_REVIEW, Service
from patient_online.domain.controls import (
    PracticeRules,
    SwitchSetting,
    clean_list,
    next_bank_holidays,
    rule_problems,
    switch_problems,
)
from patient_online.domain.errors import InputError
from patient_online.domain.record import RecordLevel
from patient_online.models import Patient, Practice, StaffMembership, User
from patient_online.services import patient_access
from patient_online.services.patient_access import AccessChange
from tests.fakes import FakeUnitOfWork
from tests.unit.conftest import patient, practice, user

TODAY = dt.date(2026, 6, 1)
GOOD = PracticeRules(
    online_slot_types=("GP appointment", "Blood test"),
    booking_horizon_days=28,
    min_lead_time_hours=2,
    max_future_appointments=2,
    cancellation_allowed=True,
    cancellation_cutoff_hours=24,
    turnaround_working_days=2,
    max_note_length=300,
    never_online=("morphine",),
    record_access_start=dt.date(2023, 10, 31),
)


def test_good_rules_pass() -> None:
    assert rule_problems(GOOD, TODAY) == {}


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("booking_horizon_days", -3, "1 day or more"),
        ("booking_horizon_days", 0, "1 day or more"),
        ("booking_horizon_days", 5 * 365, "90 days or fewer"),
        ("booking_horizon_days", 91, "not set up that far ahead"),
        ("min_lead_time_hours", -1, "cannot be negative"),
        ("min_lead_time_hours", 169, "168 hours (7 days) or fewer"),
        ("max_future_appointments", 0, "switch online appointments off"),
        ("max_future_appointments", 11, "10 or fewer"),
        ("cancellation_cutoff_hours", -2, "cannot be negative"),
        ("cancellation_cutoff_hours", 200, "168 hours"),
        ("turnaround_working_days", 0, "1 working day or more"),
        ("turnaround_working_days", 11, "run out of medicine"),
        ("max_note_length", -1, "cannot be negative"),
        ("max_note_length", 1001, "1000 characters or fewer"),
        ("record_access_start", dt.date(2023, 10, 30), "31 October 2023 or later"),
        ("record_access_start", TODAY + dt.timedelta(days=1), "today or in the past"),
        ("online_slot_types", (), "at least one type"),
        ("never_online", tuple(f"drug {i}" for i in range(51)), "50 medicines or fewer"),
        ("never_online", ("x" * 101,), "100 characters or fewer"),
    ],
)
def test_out_of_bounds_is_refused_with_a_reason(field: str, value: object, words: str) -> None:
    problems = rule_problems(replace(GOOD, **{field: value}), TODAY)
    assert list(problems) == [field]
    assert words in problems[field]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("booking_horizon_days", 1),
        ("booking_horizon_days", 90),
        ("min_lead_time_hours", 0),
        ("min_lead_time_hours", 168),
        ("max_future_appointments", 1),
        ("max_future_appointments", 10),
        ("cancellation_cutoff_hours", 0),
        ("turnaround_working_days", 10),
        ("max_note_length", 0),
        ("record_access_start", TODAY),
    ],
)
def test_limits_are_inclusive(field: str, value: object) -> None:
    assert rule_problems(replace(GOOD, **{field: value}), TODAY) == {}


def test_slot_types_must_come_from_the_clinical_system() -> None:
    problems = rule_problems(replace(GOOD, online_slot_types=("Tarot reading",)), TODAY, frozenset({"GP appointment"}))
    assert "Tarot reading" in problems["online_slot_types"]


def test_changes_from_lists_only_what_changed() -> None:
    new = replace(GOOD, booking_horizon_days=14, cancellation_allowed=False)
    assert new.changes_from(GOOD) == {"booking_horizon_days": (28, 14), "cancellation_allowed": (True, False)}


def test_clean_list() -> None:
    assert clean_list("Morphine\n\n  diazepam \nMORPHINE\n322452000") == ("morphine", "diazepam", "322452000")


@pytest.mark.parametrize("service", [Service.APPOINTMENTS, Service.PRESCRIPTIONS, Service.RECORD])
def test_switching_off_a_contract_service_needs_reason_and_return_date(service: Service) -> None:
    setting = SwitchSetting(service, enabled=False, default_level=RecordLevel.FULL)
    problems = switch_problems(setting, TODAY)
    assert set(problems) == {"off_reason", "expected_return"}
    assert "GP contract" in problems["off_reason"]
    ok = replace(setting, off_reason="System upgrade", expected_return=TODAY)
    assert switch_problems(ok, TODAY) == {}
    past = replace(ok, expected_return=TODAY - dt.timedelta(days=1))
    assert "today or in the future" in switch_problems(past, TODAY)["expected_return"]


def test_proxy_is_not_a_contract_service() -> None:
    assert switch_problems(SwitchSetting(Service.PROXY, enabled=False), TODAY) == {}


def test_no_record_by_default_is_below_contract() -> None:
    setting = SwitchSetting(Service.RECORD, enabled=True, default_level=RecordLevel.NONE)
    assert setting.below_contract
    assert set(switch_problems(setting, TODAY)) == {"off_reason", "expected_return"}
    assert not SwitchSetting(Service.RECORD, enabled=True, default_level=RecordLevel.SUMMARY).below_contract


def test_record_switch_needs_a_default_level() -> None:
    problems = switch_problems(SwitchSetting(Service.RECORD, enabled=True, default_level=None), TODAY)
    assert "newly verified adults" in problems["default_level"]
    hist = switch_problems(SwitchSetting(Service.RECORD, enabled=True, default_level=RecordLevel.HISTORIC), TODAY)
    assert "default_level" in hist


def test_message_length() -> None:
    problems = switch_problems(SwitchSetting(Service.PROXY, enabled=False, message="x" * 301), TODAY)
    assert problems == {"message": "Enter a message of 300 characters or fewer"}


def test_bank_holidays_england_and_wales() -> None:
    days = next_bank_holidays(dt.date(2026, 12, 20))
    assert [d for d, _ in days] == [dt.date(2026, 12, 25), dt.date(2026, 12, 26), dt.date(2026, 12, 28)]


# Rule 8 at reception: an enhanced review refuses new or wider access, never a level the patient already has.
@pytest.fixture
def unit() -> Iterator[FakeUnitOfWork]:
    made = FakeUnitOfWork(settings={"SECRET_KEY": "unit-test-secret"})
    yield made
    made.close()


def _reception(uow: FakeUnitOfWork, where: Practice) -> User:
    staff = user(uow, kind="staff")
    uow.session.add(StaffMembership(user_id=staff.id, practice_id=where.id, role="receptionist"))
    uow.session.flush()
    uow.session.refresh(staff)
    return staff


def _full_patient_with_a_review(uow: FakeUnitOfWork) -> tuple[Practice, User, Patient]:
    """A patient given the full record today, then a 104 recorded today by reception."""
    where = practice(uow)
    staff = _reception(uow, where)
    person = patient(uow, where)
    patient_access.set_patient_access(uow, staff, where, person.id, AccessChange(RecordLevel.FULL, True, True))
    patient_access.record_flag(uow, staff, where, person.id, FLAG_ENHANCED_REVIEW, uow.today())
    return where, staff, person


def test_a_review_recorded_on_the_day_of_a_grant_keeps_it(unit: FakeUnitOfWork) -> None:
    where, staff, person = _full_patient_with_a_review(unit)
    assert person.flags[-1]["level_then"] == RecordLevel.FULL.value
    assert patient_access.access_panel(unit, staff, where, person.id).access.record_level is RecordLevel.FULL
    # Saving the level the patient already has (to change another service) is not new access.
    kept = patient_access.set_patient_access(unit, staff, where, person.id, AccessChange(RecordLevel.FULL, False, True))
    assert kept.record_level is RecordLevel.FULL


def test_a_review_refuses_wider_access(unit: FakeUnitOfWork) -> None:
    where, staff, person = _full_patient_with_a_review(unit)
    with pytest.raises(InputError, match="enhanced review not"):
        patient_access.set_patient_access(unit, staff, where, person.id, AccessChange(RecordLevel.HISTORIC, True, True))
    assert person.record_level == RecordLevel.FULL.value


def test_a_review_refuses_new_access(unit: FakeUnitOfWork) -> None:
    where, staff, person = _full_patient_with_a_review(unit)
    patient_access.set_patient_access(unit, staff, where, person.id, AccessChange(RecordLevel.DETAILED, True, True))
    with pytest.raises(InputError, match="enhanced review not"):
        patient_access.set_patient_access(unit, staff, where, person.id, AccessChange(RecordLevel.FULL, True, True))
    assert patient_access.access_panel(unit, staff, where, person.id).access.record_level is RecordLevel.DETAILED


def test_the_same_lists_in_another_order_are_no_change() -> None:
    reordered = replace(GOOD, online_slot_types=("Blood test", "GP appointment"))
    assert reordered.changes_from(GOOD) == {}
    longer = replace(GOOD, online_slot_types=("Blood test", "GP appointment", "Baby clinic"))
    assert set(longer.changes_from(GOOD)) == {"online_slot_types"}


def test_a_switch_in_words() -> None:
    from patient_online.domain.controls import setting_words

    assert setting_words(SwitchSetting(Service.PROXY, True)) == "Every patient of the practice can use it."
    assert setting_words(SwitchSetting(Service.PROXY, False, " Ask at the desk ")) == (
        "Patients see your message: “Ask at the desk”"
    )
    assert "does not offer it online" in setting_words(SwitchSetting(Service.PROXY, False))
    record = SwitchSetting(Service.RECORD, True, default_level=RecordLevel.SUMMARY)
    assert setting_words(record) == f"Newly verified adults get: {RecordLevel.SUMMARY.label.lower()}."
