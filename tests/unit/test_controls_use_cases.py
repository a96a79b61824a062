"""Practice controls and the uptake report as use cases, with a fake unit of work and clinical system: only a
manager of the practice changes anything, a contractual service goes off only with a reason and a return date,
every change is audited with what it was and what it became, and report periods are checked."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from patient_online.adapters.resilience import resilient
from patient_online.domain.access import Service
from patient_online.domain.appointments import Clinician, DeliveryMode, Slot
from patient_online.domain.controls import PracticeRules, SwitchSetting
from patient_online.domain.errors import InputError, NotAllowed
from patient_online.domain.ports import ReportFigures
from patient_online.domain.record import RecordLevel
from patient_online.domain.reports import ClinicalFigures, Period
from patient_online.models import AuditEvent, Practice
from patient_online.services import controls, reports
from patient_online.services.unit_of_work import TransactionStillOpen
from tests.fakes import FakeClinicalSystem, FakeClinicalSystems, FakeUnitOfWork
from tests.unit.conftest import practice, staff, user

TODAY = dt.date(2026, 3, 2)  # the fake unit of work's clock
BACK = TODAY + dt.timedelta(days=14)


def events(uow: FakeUnitOfWork, action: str) -> list[AuditEvent]:
    uow.session.flush()
    return list(uow.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


@pytest.fixture
def surgery(uow: FakeUnitOfWork) -> Practice:
    found = practice(uow)
    uow.commit()
    uow.commits = 0
    return found


# Switches --------------------------------------------------------------------------------------------------
def test_only_a_manager_of_this_practice_may_switch_a_service(uow: FakeUnitOfWork, surgery: Practice) -> None:
    setting = SwitchSetting(Service.PROXY, enabled=False)
    for person in (staff(uow, surgery, "receptionist"), staff(uow, practice(uow)), user(uow)):
        with pytest.raises(NotAllowed, match="Only a practice manager of this practice"):
            controls.set_switch(uow, surgery, person, setting)
    assert surgery.switch("proxy").enabled is True  # type: ignore[union-attr]
    assert events(uow, controls.SWITCHED) == [] and uow.commits == 0


def test_a_contract_service_goes_off_only_with_a_reason_and_a_return_date(
    uow: FakeUnitOfWork, surgery: Practice
) -> None:
    manager = staff(uow, surgery)
    with pytest.raises(InputError) as refused:
        controls.set_switch(uow, surgery, manager, SwitchSetting(Service.APPOINTMENTS, enabled=False))
    assert refused.value.fields == {
        "off_reason": "Enter why online appointments will be below what the GP contract requires",
        "expected_return": "Enter the date you expect online appointments to be back",
    }
    assert refused.value.field == "off_reason" and refused.value.message == refused.value.fields["off_reason"]
    late = SwitchSetting(Service.APPOINTMENTS, False, "", "Telephony outage", TODAY - dt.timedelta(days=1))
    with pytest.raises(InputError) as past:
        controls.set_switch(uow, surgery, manager, late)
    assert past.value.fields == {"expected_return": "Expected date of return must be today or in the future"}
    assert surgery.switch("appointments").enabled is True  # type: ignore[union-attr]
    assert events(uow, controls.SWITCHED) == [] and uow.commits == 0


def test_switching_off_is_audited_with_old_new_and_reason(uow: FakeUnitOfWork, surgery: Practice) -> None:
    manager = staff(uow, surgery)
    setting = SwitchSetting(Service.APPOINTMENTS, False, " Call us on 01632 960000 ", " Telephony outage ", BACK)
    assert controls.set_switch(uow, surgery, manager, setting) is True
    assert uow.commits == 1
    row = surgery.switch("appointments")
    assert row is not None and (row.enabled, row.message, row.off_reason) == (
        False,
        "Call us on 01632 960000",
        "Telephony outage",
    )
    assert (row.updated_by_id, row.updated_at) == (manager.id, uow.now())
    (event,) = events(uow, controls.SWITCHED)
    assert (event.actor_user_id, event.actor_role, event.practice_id) == (manager.id, "practice_manager", surgery.id)
    assert event.detail["old"] == {"enabled": True, "message": "", "reason": "", "expected_return": None}
    assert event.detail["new"] == {
        "enabled": False,
        "message": "Call us on 01632 960000",
        "reason": "Telephony outage",
        "expected_return": BACK.isoformat(),
    }
    assert event.detail["reason"] == "Telephony outage" and event.detail["below_contract"] is True
    shortfalls = controls.contract_shortfalls(uow, surgery)
    assert [(s.service, s.off_reason, s.expected_return) for s in shortfalls] == [
        (Service.APPOINTMENTS, "Telephony outage", BACK)
    ]


def test_the_same_setting_twice_changes_nothing_and_audits_nothing(uow: FakeUnitOfWork, surgery: Practice) -> None:
    manager = staff(uow, surgery)
    setting = SwitchSetting(Service.PROXY, enabled=False, message="Ask at the desk")
    assert controls.set_switch(uow, surgery, manager, setting) is True
    assert controls.set_switch(uow, surgery, manager, setting) is False
    assert len(events(uow, controls.SWITCHED)) == 1 and uow.commits == 1


def test_a_non_contract_service_needs_no_reason_and_keeps_none(uow: FakeUnitOfWork, surgery: Practice) -> None:
    manager = staff(uow, surgery)
    controls.set_switch(uow, surgery, manager, SwitchSetting(Service.PROXY, False, "", "ignored", BACK))
    row = surgery.switch("proxy")
    assert row is not None and (row.off_reason, row.expected_return) == ("", None)
    assert controls.contract_shortfalls(uow, surgery) == []


def test_no_record_by_default_is_below_contract_and_changes_the_default_level(
    uow: FakeUnitOfWork, surgery: Practice
) -> None:
    manager = staff(uow, surgery)
    none = SwitchSetting(Service.RECORD, True, default_level=RecordLevel.NONE)
    with pytest.raises(InputError) as refused:
        controls.set_switch(uow, surgery, manager, none)
    assert set(refused.value.fields) == {"off_reason", "expected_return"}
    controls.set_switch(uow, surgery, manager, replace(none, off_reason="Records audit", expected_return=BACK))
    assert surgery.default_record_level == "none"
    (event,) = events(uow, controls.SWITCHED)
    assert (event.detail["old"]["default_level"], event.detail["new"]["default_level"]) == ("full", "none")


def test_history_reads_each_change_in_words(uow: FakeUnitOfWork, surgery: Practice) -> None:
    manager = staff(uow, surgery)
    controls.set_switch(uow, surgery, manager, SwitchSetting(Service.APPOINTMENTS, False, "Call us", "Outage", BACK))
    (line,) = controls.control_history(uow, surgery, controls.SWITCHED)
    assert (line.who, line.what, line.before, line.why) == (manager.display_name, "Online appointments", "On", "Outage")
    assert line.after == f"Off; back by {BACK.day} {BACK:%B %Y}; message: “Call us”"


# Rules -----------------------------------------------------------------------------------------------------
def rules_of(where: Practice, **changes: Any) -> PracticeRules:
    return replace(controls.current_rules(where), **changes)


def test_only_a_manager_may_change_the_rules(uow: FakeUnitOfWork, surgery: Practice) -> None:
    with pytest.raises(NotAllowed):
        controls.set_rules(uow, surgery, staff(uow, surgery, "receptionist"), rules_of(surgery, max_note_length=100))
    assert events(uow, controls.RULES_CHANGED) == [] and uow.commits == 0


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"booking_horizon_days": 0}, "booking_horizon_days", "Booking horizon must be 1 day or more"),
        ({"booking_horizon_days": 91}, "booking_horizon_days", "Booking horizon must be 90 days or fewer"),
        ({"max_future_appointments": 0}, "max_future_appointments", "Maximum future appointments must be 1 or more"),
        ({"record_access_start": TODAY + dt.timedelta(days=1)}, "record_access_start", "today or in the past"),
        ({"online_slot_types": ("Home visit",)}, "online_slot_types", "Choose from the appointment types"),
    ],
)
def test_rules_outside_the_limits_are_refused_field_by_field(
    uow: FakeUnitOfWork, surgery: Practice, changes: dict[str, Any], field: str, message: str
) -> None:
    before = controls.current_rules(surgery)
    with pytest.raises(InputError) as refused:
        controls.set_rules(uow, surgery, staff(uow, surgery), rules_of(surgery, **changes), frozenset({"Routine"}))
    assert list(refused.value.fields) == [field] and refused.value.field == field
    assert message in refused.value.fields[field]
    assert controls.current_rules(surgery) == before
    assert events(uow, controls.RULES_CHANGED) == [] and uow.commits == 0


def test_changed_rules_are_saved_and_audited_with_old_and_new(uow: FakeUnitOfWork, surgery: Practice) -> None:
    manager = staff(uow, surgery)
    old = controls.current_rules(surgery)
    wanted = rules_of(surgery, booking_horizon_days=14, never_online=(" Morphine ", "", "morphine"))
    changes = controls.set_rules(uow, surgery, manager, wanted)
    assert changes == {
        "booking_horizon_days": (old.booking_horizon_days, 14),
        "never_online": (old.never_online, ("morphine",)),
    }
    assert (surgery.booking_horizon_days, surgery.never_online) == (14, ["morphine"])
    (event,) = events(uow, controls.RULES_CHANGED)
    assert event.actor_user_id == manager.id and event.practice_id == surgery.id
    assert event.detail["changes"] == {
        "booking_horizon_days": {"old": old.booking_horizon_days, "new": 14},
        "never_online": {"old": list(old.never_online), "new": ["morphine"]},
    }
    assert uow.commits == 1
    assert controls.set_rules(uow, surgery, manager, controls.current_rules(surgery)) == {}
    assert uow.commits == 1


def test_saving_the_rules_unchanged_writes_no_history(uow: FakeUnitOfWork, surgery: Practice) -> None:
    manager = staff(uow, surgery)
    surgery.online_slot_types = ["Nurse appointment", "GP appointment"]  # stored as first typed, not sorted
    surgery.never_online = ["morphine", "diazepam"]
    as_the_form_sends = rules_of(
        surgery, online_slot_types=("GP appointment", "Nurse appointment"), never_online=("diazepam", "Morphine")
    )
    assert controls.set_rules(uow, surgery, manager, as_the_form_sends) == {}
    assert events(uow, controls.RULES_CHANGED) == [] and uow.commits == 0
    assert controls.control_history(uow, surgery, controls.RULES_CHANGED) == []


def test_a_changed_rule_is_recorded_alone_in_words(uow: FakeUnitOfWork, surgery: Practice) -> None:
    manager = staff(uow, surgery)
    old = controls.current_rules(surgery)
    controls.set_rules(uow, surgery, manager, rules_of(surgery, cancellation_allowed=not old.cancellation_allowed))
    (line,) = controls.control_history(uow, surgery, controls.RULES_CHANGED)
    assert line.what == "Patients can cancel online"
    assert (line.before, line.after) == (("Yes", "No") if old.cancellation_allowed else ("No", "Yes"))


def test_saving_a_switch_unchanged_writes_no_history(uow: FakeUnitOfWork, surgery: Practice) -> None:
    manager = staff(uow, surgery)
    for view in controls.practice_switch_views(uow, surgery):
        assert controls.set_switch(uow, surgery, manager, view.setting) is False
    assert events(uow, controls.SWITCHED) == [] and uow.commits == 0
    assert controls.control_history(uow, surgery, controls.SWITCHED) == []


def _slot(slot_id: str, slot_type: str, at: dt.datetime) -> Slot:
    end = at + dt.timedelta(minutes=10)
    return Slot(slot_id, at, end, slot_type, Clinician("C1", "Dr Fake", "GP"), DeliveryMode.FACE_TO_FACE)


def test_rules_page_offers_the_clinical_systems_types_asked_with_no_transaction_open(
    uow: FakeUnitOfWork, surgery: Practice
) -> None:
    soon = uow.now() + dt.timedelta(days=3)
    uow.system.slots = {"S1": _slot("S1", "Blood test", soon), "S2": _slot("S2", "Routine", soon)}
    page = controls.rules_page(uow, surgery)
    assert page.offered.names == ["Blood test", "Routine"] and page.offered.from_clinical_system
    assert page.offered_types == frozenset({"Blood test", "Routine"}) and page.today == TODAY
    assert uow.system.calls == ["search_slots"]


def test_rules_page_keeps_the_chosen_types_when_the_clinical_system_is_down(
    uow: FakeUnitOfWork, surgery: Practice
) -> None:
    uow.system.down = True
    page = controls.rules_page(uow, surgery)
    assert page.offered.names == ["Routine"] and not page.offered.from_clinical_system
    assert page.offered_types is None


# The uptake report -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("start", "end", "field", "message"),
    [
        (TODAY, TODAY + dt.timedelta(days=1), "end", "End date must be today or in the past"),
        (TODAY, TODAY - dt.timedelta(days=1), "start", "Start date must be the same as or before the end date"),
        (TODAY - dt.timedelta(days=366), TODAY, "start", "Choose a period of 366 days or fewer"),
    ],
)
def test_report_periods_are_checked(
    uow: FakeUnitOfWork, start: dt.date, end: dt.date, field: str, message: str
) -> None:
    with pytest.raises(InputError) as refused:
        reports.choose_period(uow, start, end)
    assert (refused.value.field, refused.value.message) == (field, message)


def test_report_periods_that_fit(uow: FakeUnitOfWork) -> None:
    assert reports.choose_period(uow) == Period(TODAY - dt.timedelta(days=27), TODAY)
    assert reports.choose_period(uow, TODAY - dt.timedelta(days=365), TODAY).days == 366
    assert reports.choose_period(uow, TODAY, TODAY).days == 1
    assert reports.choose_period(uow, end=TODAY - dt.timedelta(days=1)).start == TODAY - dt.timedelta(days=27)


def test_only_a_manager_sees_the_report(uow: FakeUnitOfWork, surgery: Practice) -> None:
    with pytest.raises(NotAllowed):
        reports.view_uptake_report(uow, surgery, staff(uow, surgery, "receptionist"), reports.choose_period(uow))
    assert events(uow, "practice.report_viewed") == []


def test_a_system_without_the_reporting_port_gives_no_clinical_figures(uow: FakeUnitOfWork, surgery: Practice) -> None:
    manager = staff(uow, surgery)
    report = reports.view_uptake_report(uow, surgery, manager, reports.choose_period(uow), fmt="csv")
    assert report.clinical is None and report.list_size is None and report.registered_percent is None
    assert (report.practice_name, report.practice_ods) == (surgery.name, surgery.ods_code)
    rows = {measure: figure for measure, figure, _note in reports.report_rows(report)}
    assert rows["Patients on the practice list"] == reports.NOT_AVAILABLE
    (event,) = events(uow, "practice.report_viewed")
    assert event.detail == {"start": "2026-02-03", "end": "2026-03-02", "format": "csv"}
    assert uow.commits == 1  # no system to ask: the figures and the audit in one transaction


class ReportingSystem(FakeClinicalSystem):
    """A fake clinical system that also offers the reporting port."""

    asked: list[tuple[dt.datetime, dt.datetime, tuple[str, ...]]]

    def report_figures(
        self, start: dt.datetime, end: dt.datetime, online_slot_types: Any, flag_codes: Any
    ) -> ClinicalFigures:
        self._call("report_figures")
        self.asked = [(start, end, tuple(online_slot_types))]
        return ClinicalFigures(200, 40, 10, 80, 30, dict.fromkeys(flag_codes, 1))


def test_a_system_with_the_reporting_port_is_asked_outside_the_transaction() -> None:
    reporting = FakeUnitOfWork(ReportingSystem())
    try:
        where = practice(reporting)
        manager = staff(reporting, where)
        report = reports.uptake_report(reporting, where, manager, Period(TODAY, TODAY))
        system = reporting.system
        assert isinstance(system, ReportingSystem) and system.calls == ["report_figures"]
        assert system.asked[0][2] == ("Routine",)
        assert system.asked[0][1] - system.asked[0][0] == dt.timedelta(days=1)
        assert report.clinical is not None and report.list_size == 200
        assert (report.online_booking_percent, report.bookable_percent) == (25.0, 37.5)
        assert not reporting.in_transaction and reporting.commits == 1
    finally:
        reporting.close()


def test_a_reporting_system_that_is_down_gives_no_clinical_figures() -> None:
    reporting = FakeUnitOfWork(ReportingSystem(down=True))
    try:
        where = practice(reporting)
        report = reports.uptake_report(reporting, where, staff(reporting, where), Period(TODAY, TODAY))
        assert report.clinical is None
    finally:
        reporting.close()


def test_the_reporting_port_is_found_through_the_resilience_layer_and_the_guard(
    uow: FakeUnitOfWork, surgery: Practice
) -> None:
    assert reports.reporting_port(FakeClinicalSystem()) is None
    assert reports.reporting_port(resilient(FakeClinicalSystem(), "F00001")) is None
    inner = ReportingSystem()
    assert isinstance(inner, ReportFigures)
    wrapped = reports.reporting_port(resilient(inner, "F00001"))
    assert wrapped is not None
    assert wrapped.report_figures(uow.now(), uow.now(), ["Routine"], ["X"]).flag_counts == {"X": 1}
    assert isinstance(uow.clinical_systems, FakeClinicalSystems)
    uow.clinical_systems.by_practice[surgery.ods_code] = resilient(inner, surgery.ods_code)
    guarded = reports.reporting_port(uow.clinical(surgery))
    assert guarded is not None
    uow.session.scalar(select(Practice.id))  # a transaction is open
    with pytest.raises(TransactionStillOpen):
        guarded.report_figures(uow.now(), uow.now(), [], [])


def test_report_rows_agree_in_number_and_name_codes_with_their_terms(uow: FakeUnitOfWork, surgery: Practice) -> None:
    from patient_online.domain.access import FLAG_DECLINED, FLAG_ENHANCED_REVIEW
    from patient_online.domain.reports import SNOMED_TERMS

    report = reports.uptake_report(uow, surgery, staff(uow, surgery), reports.choose_period(uow))
    one = replace(report, repeat_orders=1, repeat_patients=1, pending=1, pending_oldest_days=1)
    text = " | ".join(" ".join(row) for row in reports.report_rows(one))
    assert "from 1 patient" in text and "the oldest has waited 1 day" in text
    assert "1 patients" not in text and "1 days" not in text
    more = replace(one, repeat_patients=2, pending_oldest_days=3)
    many = " ".join(" ".join(row) for row in reports.report_rows(more))
    assert "from 2 patients" in many and "waited 3 days" in many
    for code in (FLAG_DECLINED, FLAG_ENHANCED_REVIEW):
        assert f"‘{SNOMED_TERMS[code]}’ (SNOMED CT {code})" in text
