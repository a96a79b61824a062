"""Use-case tests with fakes: a FakeUnitOfWork (no app, no web framework) and a FakeClinicalSystem.

The factories below make the gateway's own rows in the fake's throw-away database, reading like the domain:
``practice(uow, max_future_appointments=1)``, ``patient(uow, practice)``, ``acting(uow, patient)``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from patient_online.domain.access import Service
from patient_online.models import AccountLink, Patient, Practice, ServiceSwitch, StaffMembership, User, Verification
from patient_online.services.access import Acting, acting_for
from tests.fakes import FakeUnitOfWork

_ids = itertools.count(1)


@pytest.fixture
def uow() -> Iterator[FakeUnitOfWork]:
    unit = FakeUnitOfWork()
    yield unit
    unit.close()


def practice(uow: FakeUnitOfWork, *, off: tuple[Service, ...] = (), **rules: Any) -> Practice:
    """A practice with every service switched on (but those in ``off``), the given rules over the defaults."""
    n = next(_ids)
    row = Practice(
        ods_code=f"F{n:05d}",
        name=f"Fake Surgery {n}",
        phone="01632 960000",
        adapter_name="fake",
        online_slot_types=["Routine"],
        **rules,
    )
    row.switches = [ServiceSwitch(service=s.value, enabled=s not in off) for s in Service]
    uow.session.add(row)
    uow.session.flush()
    return row


def user(uow: FakeUnitOfWork, *, email: str = "", kind: str = "patient", **fields: Any) -> User:
    n = next(_ids)
    row = User(email=email or f"person{n}@example.org", kind=kind, given_name="Alex", family_name=f"Fake{n}", **fields)
    uow.session.add(row)
    uow.session.flush()
    return row


def patient(uow: FakeUnitOfWork, where: Practice, *, born: dt.date | None = None, **fields: Any) -> Patient:
    n = next(_ids)
    row = Patient(
        practice=where,
        nhs_number=f"{9000000000 + n}",
        clinical_id=f"P{n}",
        given_name="Alex",
        family_name=f"Fake{n}",
        date_of_birth=born or dt.date(1980, 5, 17),
        online_account_id=f"ACC{n:06d}",
        **fields,
    )
    uow.session.add(row)
    uow.session.flush()
    return row


def staff(uow: FakeUnitOfWork, where: Practice, role: str = "practice_manager") -> User:
    """A staff account with a role at the practice (its manager by default)."""
    person = user(uow, kind="staff")
    uow.session.add(StaffMembership(user_id=person.id, practice_id=where.id, role=role))
    uow.session.flush()
    uow.session.refresh(person)
    return person


def linked_user(uow: FakeUnitOfWork, whose: Patient, *, in_person: bool = True, **fields: Any) -> User:
    """An account linked to the patient after an identity check (documents at the desk by default)."""
    person = user(uow, **fields)
    uow.session.add(AccountLink(user_id=person.id, patient_id=whose.id, method="letter"))
    uow.session.add(Verification(patient_id=whose.id, user_id=person.id, method="documents", remote=not in_person))
    uow.session.flush()
    return person


def acting(uow: FakeUnitOfWork, whose: Patient | None = None, **practice_rules: Any) -> Acting:
    """The signed-in patient acting for themselves (a new practice and patient unless one is given)."""
    if whose is None:
        whose = patient(uow, practice(uow, **practice_rules))
    person = linked_user(uow, whose)
    found = acting_for(uow.session, person, None)
    assert found is not None
    uow.commit()
    uow.commits = 0
    return found
