"""Changing the reason of an appointment: the practice's rules (as for cancelling), the optional port, the audit
trail without the reason, and no clinical call made with a transaction open. Also the statuses a patient sees."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from patient_online.domain.appointments import (
    AmendmentNotOffered,
    AmendmentRefused,
    AppointmentStatus,
    ReasonTooLong,
    split_upcoming,
)
from patient_online.domain.errors import ClinicalSystemUnavailable, InputError, NotFound, ServiceOff
from patient_online.domain.ports import AppointmentAmendment
from patient_online.models import AuditEvent, Practice
from patient_online.services import appointments as service
from tests.fakes import FakeClinicalSystem, FakeClinicalSystems, FakeUnitOfWork
from tests.unit.conftest import acting, patient, practice
from tests.unit.test_appointment_use_cases import PHONE, book


def reason_of(uow: FakeUnitOfWork, appointment_id: str) -> str:
    return next(a.reason for _, a in uow.system.appointments.values() if a.id == appointment_id)


def test_the_reason_is_changed_audited_without_it_and_confirmed(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    appointment = book(uow, who, "s1")
    amended = service.amend_appointment(uow, who, appointment.id, "  Sore   knee and\nback ")
    assert amended.reason == "Sore knee and back" == reason_of(uow, appointment.id)
    assert amended.version == "2"
    assert uow.audit_actions() == ["appointment.booked", "appointment.amended"]
    assert uow.sent[-1].template == "appointment_amended"
    assert "back" not in uow.sent[-1].body  # the reason may be clinical: never in an email
    event = uow.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event is not None and "back" not in str(event.detail)


def test_the_same_reason_again_changes_nothing(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    appointment = book(uow, who, "s1")
    service.amend_appointment(uow, who, appointment.id, "Sore knee")
    assert "amend" not in uow.system.calls
    assert uow.audit_actions() == ["appointment.booked"]


def test_changing_the_reason_inside_the_cutoff_is_refused(uow: FakeUnitOfWork) -> None:
    who = acting(uow, cancellation_cutoff_hours=30)
    appointment = book(uow, who, "s1", hours=26)
    with pytest.raises(AmendmentRefused, match=f"less than 30 hours away.*{PHONE}"):
        service.amend_appointment(uow, who, appointment.id, "Back pain")
    assert "amend" not in uow.system.calls and reason_of(uow, appointment.id) == "Sore knee"


def test_a_practice_that_takes_no_changes_online_refuses(uow: FakeUnitOfWork) -> None:
    who = acting(uow, cancellation_allowed=False)
    appointment = book(uow, who, "s1")
    with pytest.raises(AmendmentRefused, match="does not take cancellations online"):
        service.amend_appointment(uow, who, appointment.id, "Back pain")
    listed = service.list_appointments(uow, who)
    assert not listed.upcoming[0].may_amend


def test_a_cancelled_appointment_keeps_its_reason(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    appointment = book(uow, who, "s1")
    service.cancel_appointment(uow, who, appointment.id)
    with pytest.raises(AmendmentRefused, match="already been cancelled"):
        service.amend_appointment(uow, who, appointment.id, "Back pain")


def test_someone_elses_appointment_cannot_be_changed(uow: FakeUnitOfWork) -> None:
    owner, other = acting(uow), acting(uow)
    appointment = book(uow, owner, "s1")
    with pytest.raises(NotFound):
        service.amend_appointment(uow, other, appointment.id, "Back pain")
    assert reason_of(uow, appointment.id) == "Sore knee"


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_empty_reason_is_refused_on_its_field(uow: FakeUnitOfWork, reason: str) -> None:
    who = acting(uow)
    appointment = book(uow, who, "s1")
    with pytest.raises(InputError) as refused:
        service.amend_appointment(uow, who, appointment.id, reason)
    assert refused.value.field == "reason"


def test_a_reason_too_long_is_refused(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    appointment = book(uow, who, "s1")
    with pytest.raises(ReasonTooLong):
        service.amend_appointment(uow, who, appointment.id, "x" * 101)


def test_appointments_switched_off_refuses(uow: FakeUnitOfWork) -> None:
    who = acting(uow, patient(uow, practice(uow), appointments_enabled=False))
    with pytest.raises(ServiceOff):
        service.amend_appointment(uow, who, "A1", "Back pain")
    assert uow.system.calls == []


class WithoutAmend:
    """A clinical system without the optional port (everything else is the fake's)."""

    def __init__(self, inner: FakeClinicalSystem) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "amend":
            raise AttributeError(name)
        return getattr(self.inner, name)


def test_a_system_without_the_port_refuses_and_offers_no_link(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    appointment = book(uow, who, "s1")
    plain = WithoutAmend(uow.system)
    assert not isinstance(plain, AppointmentAmendment)
    uow.clinical_systems = FakeClinicalSystems(plain)  # type: ignore[arg-type]
    with pytest.raises(AmendmentNotOffered, match=PHONE):
        service.amend_appointment(uow, who, appointment.id, "Back pain")
    assert not service.list_appointments(uow, who).upcoming[0].may_amend


def test_the_list_offers_the_change_where_allowed(uow: FakeUnitOfWork) -> None:
    who = acting(uow, cancellation_cutoff_hours=30)
    near = book(uow, who, "s1", hours=26)
    far = book(uow, who, "s2", hours=72)
    items = {i.id: i for i in service.list_appointments(uow, who).upcoming}
    assert items[far.id].may_amend and not items[near.id].may_amend


def test_the_clinical_system_is_never_called_inside_a_transaction(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    appointment = book(uow, who, "s1")
    uow.session.scalar(select(Practice).where(Practice.id == who.practice.id))  # a read opens a transaction
    service.amend_appointment(uow, who, appointment.id, "Back pain")  # would raise TransactionStillOpen
    assert uow.system.calls[-1] == "amend"


def test_a_link_that_is_down_changes_nothing(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    appointment = book(uow, who, "s1")
    uow.system.fail_next["amend"] = ClinicalSystemUnavailable()
    with pytest.raises(ClinicalSystemUnavailable):
        service.amend_appointment(uow, who, appointment.id, "Back pain")
    assert uow.audit_actions() == ["appointment.booked"] and reason_of(uow, appointment.id) == "Sore knee"


# Statuses a patient sees -----------------------------------------------------------------------------------
def test_pending_appointments_are_upcoming_but_not_changeable(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    appointment = book(uow, who, "s1")
    key = next(iter(uow.system.appointments))
    owner, _ = uow.system.appointments[key]
    uow.system.appointments[key] = (owner, replace(appointment, status=AppointmentStatus.PENDING))
    listed = service.list_appointments(uow, who)
    (item,) = listed.upcoming
    assert not item.may_change and not item.may_amend
    assert "has not confirmed it yet" in item.refusal


def test_entered_in_error_never_shown_and_noshow_is_past(uow: FakeUnitOfWork) -> None:
    who = acting(uow)
    first, second = book(uow, who, "s1"), book(uow, who, "s2", hours=30)
    keys = list(uow.system.appointments)
    owner = uow.system.appointments[keys[0]][0]
    uow.system.appointments[keys[0]] = (owner, replace(first, status=AppointmentStatus.ENTERED_IN_ERROR))
    listed = service.list_appointments(uow, who)
    assert [i.id for i in listed.upcoming] == [second.id] and listed.past == []
    with pytest.raises(NotFound):
        service.get_appointment(uow, who, first.id)
    upcoming, past = split_upcoming([replace(second, status=AppointmentStatus.DID_NOT_ATTEND)], uow.now())
    assert upcoming == [] and past[0].status.label == "Did not attend"
