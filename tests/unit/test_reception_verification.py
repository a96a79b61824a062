"""The verification detail: each detail marked as matching the clinical system or not, and the notes of
earlier identity checks shown again."""

from __future__ import annotations

import datetime as dt

from patient_online.models import LinkRequest, Patient, Verification
from patient_online.services import verification
from tests.fakes import FakeUnitOfWork
from tests.unit.test_verification_use_cases import BORN, NHS, settled, uow, waiting

__all__ = ["uow"]


def marks(pending: verification.PendingRequest) -> dict[str, bool | None]:
    return {c.label: c.matches for c in pending.comparison}


def test_each_detail_is_marked_as_matching_or_not(uow: FakeUnitOfWork) -> None:
    where, staff, _asker, request_id = waiting(uow)
    pending = verification.get_request(uow, staff, where, request_id)
    assert marks(pending) == {
        "NHS number": True,
        "First name": True,
        "Surname": True,
        "Date of birth": True,
        "Postcode": True,
        "Address": None,  # not asked for: reception checks it against the documents
    }
    request = uow.session.get_one(LinkRequest, request_id)
    request.given_name, request.postcode, request.date_of_birth = "Samuel", "ls14ap", BORN - dt.timedelta(days=1)
    settled(uow)
    pending = verification.get_request(uow, staff, where, request_id)
    assert marks(pending)["First name"] is False and marks(pending)["Postcode"] is True
    assert marks(pending)["Date of birth"] is False
    first_name = next(c for c in pending.comparison if c.label == "First name")
    assert "shortened" in first_name.hint and (first_name.entered, first_name.record) == ("Samuel", "Sam")


def test_nothing_is_compared_when_the_record_cannot_be_read(uow: FakeUnitOfWork) -> None:
    where, staff, _asker, request_id = waiting(uow)
    uow.system.down = True
    assert verification.get_request(uow, staff, where, request_id).comparison == ()


def test_notes_of_earlier_checks_are_shown_again(uow: FakeUnitOfWork) -> None:
    where, staff, _asker, request_id = waiting(uow)
    record = uow.system.patients[NHS]
    known = Patient(
        practice_id=where.id,
        nhs_number=NHS,
        clinical_id=record.ref.clinical_id,
        given_name="Sam",
        family_name="Jones",
        date_of_birth=BORN,
        online_account_id="ACC-NOTES",
    )
    uow.session.add(known)
    uow.session.flush()
    uow.session.add(
        Verification(
            patient_id=known.id,
            method="documents",
            documents=[{"type": "passport", "photo": True}],
            staff_id=staff.id,
            verified_at=uow.now() - dt.timedelta(days=30),
            notes="Passport seen; address on the bill was the old one",
        )
    )
    settled(uow)
    pending = verification.get_request(uow, staff, where, request_id)
    (earlier,) = pending.earlier_checks
    assert earlier.notes == "Passport seen; address on the bill was the old one" and earlier.method == "documents"
    page = verification.patient_page(uow, staff, where, known.id)
    assert [c.notes for c in page.checks] == ["Passport seen; address on the bill was the old one"]
