"""Staff views in the patient's activity: recorded at every page view, read as one line per day and practice."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from patient_online.models import AuditEvent, Practice, StaffMembership
from patient_online.services.activity import activity_page
from tests.fakes import FakeUnitOfWork
from tests.unit.conftest import linked_user, patient, practice, user
from tests.unit.test_verification_use_cases import uow

__all__ = ["uow"]

NINE = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def viewed(uow: FakeUnitOfWork, action: str, at: dt.datetime, where: Practice, patient_id: int, **who: int) -> None:
    event = uow.audit(action, actor_role="receptionist", practice_id=where.id, patient_id=patient_id, **who)
    event.at = at
    uow.session.flush()


def test_eight_views_in_one_check_are_one_line(uow: FakeUnitOfWork) -> None:
    where = practice(uow)
    whose = patient(uow, where)
    person = linked_user(uow, whose)
    staff = user(uow, kind="staff")
    uow.session.add(StaffMembership(user_id=staff.id, practice_id=where.id, role="receptionist"))
    for minute in range(8):
        viewed(uow, "verification.viewed", NINE + dt.timedelta(minutes=minute), where, whose.id, actor_id=staff.id)
    viewed(uow, "access.viewed", NINE + dt.timedelta(minutes=9), where, whose.id, actor_id=staff.id)
    viewed(uow, "patient.viewed", NINE + dt.timedelta(days=1), where, whose.id, actor_id=staff.id)
    elsewhere = practice(uow)
    viewed(uow, "patient.viewed", NINE + dt.timedelta(days=1, minutes=5), elsewhere, whose.id, actor_id=staff.id)
    page = activity_page(uow, person)
    staff_lines = [line for line in page.lines if "staff" in line.text]
    assert [line.text for line in staff_lines] == [
        f"{elsewhere.name} staff looked at your details",
        f"{where.name} staff looked at your details",
        f"{where.name} staff looked at your request to link your account and your online access settings",
    ]
    assert staff_lines[-1].at == NINE + dt.timedelta(minutes=9)  # the newest view of the day
    assert page.total == len(page.lines)
    # Every view is still in the audit trail.
    staff_views = select(func.count()).select_from(AuditEvent).where(AuditEvent.actor_user_id == staff.id)
    assert uow.session.scalar(staff_views) == 11
