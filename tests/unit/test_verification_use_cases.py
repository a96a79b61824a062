"""Reception's identity checks and per-patient access with a fake unit of work: each verification method (and
what remote vouching withholds), refusals for staff without the role, rejecting, suspending, finding patients,
and one patient's record level, services and access codes (rules 3, 5 and 8)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from patient_online.domain.access import FLAG_DECLINED, FLAG_ENHANCED_REVIEW, FLAG_REVIEW_NOT_INDICATED, Service
from patient_online.domain.errors import ClinicalSystemUnavailable, InputError, NotAllowed, NotFound
from patient_online.domain.patients import AccessFlag, Demographics, PatientRef
from patient_online.domain.record import RecordLevel
from patient_online.domain.verification import AccountLinkStatus, LinkRequestStatus
from patient_online.models import AccountLink, AuditEvent, LinkRequest, Patient, Practice, StaffMembership, User
from patient_online.models import Verification as Check
from patient_online.services import patient_access, verification
from patient_online.services.access import acting_for
from patient_online.services.patient_access import AccessChange
from tests.fakes import FakeUnitOfWork
from tests.unit.conftest import linked_user, patient, practice, user

NHS = "9434765919"
BORN = dt.date(1984, 3, 15)


@pytest.fixture
def uow() -> Iterator[FakeUnitOfWork]:
    unit = FakeUnitOfWork(settings={"SECRET_KEY": "unit-test-secret"})
    yield unit
    unit.close()


def receptionist(uow: FakeUnitOfWork, where: Practice, role: str = "receptionist") -> User:
    staff = user(uow, kind="staff")
    uow.session.add(StaffMembership(user_id=staff.id, practice_id=where.id, role=role))
    uow.session.flush()
    uow.session.refresh(staff)
    return staff


def settled(uow: FakeUnitOfWork) -> None:
    uow.commit()
    uow.commits = 0


def waiting(uow: FakeUnitOfWork, **practice_rules: Any) -> tuple[Practice, User, User, int]:
    """A practice, its receptionist, and a patient's request to link that matches the clinical system."""
    where = practice(uow, **practice_rules)
    staff = receptionist(uow, where)
    asker = user(uow)
    uow.system.patients[NHS] = Demographics(
        ref=PatientRef(where.ods_code, NHS, "C-1"),
        given_name="Sam",
        family_name="Jones",
        date_of_birth=BORN,
        postcode="LS1 4AP",
        flags=(AccessFlag(FLAG_REVIEW_NOT_INDICATED, dt.date(2025, 1, 6)),),
    )
    request = LinkRequest(
        user_id=asker.id,
        practice_id=where.id,
        nhs_number=NHS,
        given_name="Sam",
        family_name="Jones",
        date_of_birth=BORN,
        postcode="LS1 4AP",
        created_at=uow.now() - dt.timedelta(days=3),
    )
    uow.session.add(request)
    uow.session.flush()
    settled(uow)
    return where, staff, asker, request.id


def approve(
    uow: FakeUnitOfWork,
    staff: User,
    where: Practice,
    request_id: int,
    method: str,
    documents: tuple[str, ...] = (),
    remote: bool = False,
) -> verification.Approved:
    return verification.approve_request(uow, staff, where, request_id, method, list(documents), remote, " Seen ")


def record_level_of(uow: FakeUnitOfWork, asker: User) -> RecordLevel:
    acting = acting_for(uow.session, asker, None)
    assert acting is not None
    return acting.access.record_level


# The queue and one request -----------------------------------------------------------------------------------
def test_the_queue_and_a_request_beside_the_clinical_systems_demographics(uow: FakeUnitOfWork) -> None:
    where, staff, asker, request_id = waiting(uow)
    (queued,) = verification.pending_requests(uow, staff, where)
    assert queued.id == request_id and queued.email == asker.email and queued.status is LinkRequestStatus.PENDING
    pending = verification.get_request(uow, staff, where, request_id)
    assert pending.record is not None and pending.record.postcode == "LS1 4AP" and pending.age_days == 3
    assert uow.system.calls == ["find_patient"] and uow.audit_actions() == ["verification.viewed"]


def test_a_record_the_clinical_system_cannot_give_is_explained(uow: FakeUnitOfWork) -> None:
    where, staff, _asker, request_id = waiting(uow)
    uow.system.down = True
    pending = verification.get_request(uow, staff, where, request_id)
    assert pending.record is None and pending.record_error == ClinicalSystemUnavailable.message
    with pytest.raises(InputError) as refused:
        approve(uow, staff, where, request_id, "vouching")
    assert refused.value.message == ClinicalSystemUnavailable.message and refused.value.field == "method"


# Each way of checking identity --------------------------------------------------------------------------------
def test_documents_link_with_two_documents_one_with_a_photo(uow: FakeUnitOfWork) -> None:
    where, staff, asker, request_id = waiting(uow)
    approved = approve(uow, staff, where, request_id, "documents", ("passport", "utility_bill", "passport"))
    assert approved.patient.full_name == "Sam Jones"
    link = uow.session.scalars(select(AccountLink)).one()
    assert link.user_id == asker.id and link.method == "documents" and not link.remote_vouching_only
    check = uow.session.scalars(select(Check)).one()
    assert check.documents == [{"type": "passport", "photo": True}, {"type": "utility_bill", "photo": False}]
    assert check.staff_id == staff.id and check.notes == "Seen"
    assert uow.session.get_one(LinkRequest, request_id).status == LinkRequestStatus.APPROVED
    assert uow.audit_actions() == ["verification.viewed", "verification.approved"]
    assert [m.template for m in uow.sent] == ["link_approved"] and uow.sent[0].to == asker.email
    assert record_level_of(uow, asker) is RecordLevel.FULL


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        (("passport",), "Select at least 2 documents you have seen"),
        (("passport", "passport"), "Select at least 2 documents you have seen"),
        (("utility_bill", "bank_statement"), "Select at least 1 document with a photo, like a passport or driving"),
        (("passport", "a_napkin"), "Select at least 2 documents you have seen"),
    ],
    ids=["one", "the same twice", "no photo", "unknown document"],
)
def test_documents_refused_without_two_documents_one_with_a_photo(
    uow: FakeUnitOfWork, documents: tuple[str, ...], message: str
) -> None:
    where, staff, _asker, request_id = waiting(uow)
    with pytest.raises(InputError) as refused:
        approve(uow, staff, where, request_id, "documents", documents)
    assert refused.value.message.startswith(message) and refused.value.field == "documents"
    assert uow.session.scalars(select(AccountLink)).all() == []
    assert uow.session.get_one(LinkRequest, request_id).status == LinkRequestStatus.PENDING


@pytest.mark.parametrize("method", ["vouching", "vouching_with_confirmation"])
def test_vouching_face_to_face_needs_no_documents_and_opens_the_practice_default(
    uow: FakeUnitOfWork, method: str
) -> None:
    where, staff, asker, request_id = waiting(uow)
    approve(uow, staff, where, request_id, method, ("passport",))
    link = uow.session.scalars(select(AccountLink)).one()
    assert link.method == method and not link.remote_vouching_only
    assert uow.session.scalars(select(Check)).one().documents == []
    assert record_level_of(uow, asker) is RecordLevel.FULL


@pytest.mark.parametrize("method", ["vouching", "vouching_with_confirmation"])
@pytest.mark.parametrize("granted", [None, RecordLevel.DETAILED, RecordLevel.FULL])
def test_remote_vouching_never_unlocks_the_detailed_or_full_record(
    uow: FakeUnitOfWork, method: str, granted: RecordLevel | None
) -> None:
    where, staff, asker, request_id = waiting(uow)
    approved = approve(uow, staff, where, request_id, method, remote=True)
    assert uow.session.scalars(select(AccountLink)).one().remote_vouching_only
    if granted is not None:
        patient_access.set_patient_access(uow, staff, where, approved.patient.id, AccessChange(granted, True, True))
    assert record_level_of(uow, asker) is RecordLevel.SUMMARY


def test_documents_checked_remotely_are_not_remote_vouching(uow: FakeUnitOfWork) -> None:
    where, staff, asker, request_id = waiting(uow)
    approve(uow, staff, where, request_id, "documents", ("id_card", "council_tax"), remote=True)
    assert not uow.session.scalars(select(AccountLink)).one().remote_vouching_only
    assert record_level_of(uow, asker) is RecordLevel.FULL


@pytest.mark.parametrize("method", ["", "nhs_login", "linkage_letter", "telepathy"])
def test_reception_chooses_one_of_its_own_methods(uow: FakeUnitOfWork, method: str) -> None:
    where, staff, _asker, request_id = waiting(uow)
    with pytest.raises(InputError) as refused:
        approve(uow, staff, where, request_id, method)
    assert refused.value.message == "Choose how you verified this person's identity"
    assert refused.value.field == "method"


def test_a_decided_request_is_not_decided_again(uow: FakeUnitOfWork) -> None:
    where, staff, _asker, request_id = waiting(uow)
    approve(uow, staff, where, request_id, "vouching")
    with pytest.raises(InputError, match="already been decided"):
        approve(uow, staff, where, request_id, "vouching")
    with pytest.raises(InputError, match="already been decided"):
        verification.reject_request(uow, staff, where, request_id, "Too late")
    assert len(uow.session.scalars(select(AccountLink)).all()) == 1


def test_a_record_linked_to_another_account_is_refused_and_nothing_is_kept(uow: FakeUnitOfWork) -> None:
    where, staff, _asker, request_id = waiting(uow)
    existing = Patient(
        practice_id=where.id,
        nhs_number=NHS,
        clinical_id="C-1",
        given_name="Sam",
        family_name="Jones",
        date_of_birth=BORN,
        online_account_id="ACC424242",
    )
    uow.session.add(existing)
    uow.session.flush()
    linked_user(uow, existing)
    settled(uow)
    with pytest.raises(InputError, match="already linked to another account"):
        approve(uow, staff, where, request_id, "vouching")
    assert uow.session.get_one(LinkRequest, request_id).status == LinkRequestStatus.PENDING
    assert uow.session.get_one(Patient, existing.id).flags == []  # the clinical system's codes were not kept


# Staff without the role ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["manager", "other practice"])
def test_staff_without_the_reception_role_here_are_refused(uow: FakeUnitOfWork, who: str) -> None:
    where, _staff, asker, request_id = waiting(uow)
    staff = receptionist(uow, where, role="manager") if who == "manager" else receptionist(uow, practice(uow))
    whose = patient(uow, where)
    link = linked_user(uow, whose)
    link_id = uow.session.scalars(select(AccountLink.id).where(AccountLink.user_id == link.id)).one()
    settled(uow)
    refusals: list[Callable[[], object]] = [
        lambda: verification.pending_requests(uow, staff, where),
        lambda: verification.get_request(uow, staff, where, request_id),
        lambda: approve(uow, staff, where, request_id, "vouching"),
        lambda: verification.reject_request(uow, staff, where, request_id, "No"),
        lambda: verification.search_patients(uow, staff, where, NHS, None),
        lambda: verification.patient_page(uow, staff, where, whose.id),
        lambda: verification.set_suspended(uow, staff, where, whose.id, link_id, True, "Lost phone"),
        lambda: patient_access.access_panel(uow, staff, where, whose.id),
        lambda: patient_access.set_patient_access(uow, staff, where, whose.id, AccessChange(None, False, False)),
        lambda: patient_access.record_flag(uow, staff, where, whose.id, FLAG_DECLINED, dt.date(2026, 1, 5)),
        lambda: patient_access.refresh_flags(uow, staff, where, whose.id),
    ]
    for attempt in refusals:
        with pytest.raises(NotAllowed):
            attempt()
    assert uow.system.calls == [] and uow.sent == [] and uow.audit_actions() == []
    assert uow.session.get_one(LinkRequest, request_id).status == LinkRequestStatus.PENDING
    assert asker.id and uow.session.get_one(AccountLink, link_id).status == AccountLinkStatus.ACTIVE


def test_reception_never_reaches_another_practices_requests_or_patients(uow: FakeUnitOfWork) -> None:
    where, _staff, _asker, request_id = waiting(uow)
    elsewhere = practice(uow)
    staff = receptionist(uow, elsewhere)
    whose = patient(uow, where)
    settled(uow)
    elsewhere_attempts: tuple[Callable[[], object], ...] = (
        lambda: verification.get_request(uow, staff, elsewhere, request_id),
        lambda: verification.reject_request(uow, staff, elsewhere, request_id, "No"),
        lambda: verification.patient_of_practice(uow, staff, elsewhere, whose.id),
        lambda: patient_access.access_panel(uow, staff, elsewhere, whose.id),
    )
    for attempt in elsewhere_attempts:
        with pytest.raises(NotFound):
            attempt()
    assert verification.search_patients(uow, staff, elsewhere, whose.family_name, None) == []


# Rejecting and suspending ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reason", "message"),
    [("  ", "Enter the reason the patient will see"), ("x" * 501, "Reason must be 500 characters or fewer")],
)
def test_a_rejection_needs_a_reason_the_patient_can_read(uow: FakeUnitOfWork, reason: str, message: str) -> None:
    where, staff, _asker, request_id = waiting(uow)
    with pytest.raises(InputError) as refused:
        verification.reject_request(uow, staff, where, request_id, reason)
    assert (refused.value.message, refused.value.field) == (message, "reason") and uow.sent == []


def test_a_rejection_tells_the_patient_why(uow: FakeUnitOfWork) -> None:
    where, staff, _asker, request_id = waiting(uow)
    verification.reject_request(uow, staff, where, request_id, " Bring photo ID ")
    request = uow.session.get_one(LinkRequest, request_id)
    assert request.status == LinkRequestStatus.REJECTED and request.rejection_reason == "Bring photo ID"
    assert request.decided_by_id == staff.id and request.decided_at == uow.now()
    assert uow.sent[0].template == "link_rejected" and "Bring photo ID" in uow.sent[0].body
    assert uow.audit_actions() == ["verification.rejected"] and uow.commits == 1


def test_suspending_and_reinstating_an_account(uow: FakeUnitOfWork) -> None:
    where = practice(uow)
    staff = receptionist(uow, where)
    whose = patient(uow, where)
    person = linked_user(uow, whose)
    link_id = uow.session.scalars(select(AccountLink.id).where(AccountLink.user_id == person.id)).one()
    settled(uow)
    with pytest.raises(InputError, match="Enter a reason"):
        verification.set_suspended(uow, staff, where, whose.id, link_id, True, " ")
    assert verification.set_suspended(uow, staff, where, whose.id, link_id, True, "Lost phone") is (
        AccountLinkStatus.SUSPENDED
    )
    link = uow.session.get_one(AccountLink, link_id)
    assert link.suspended_reason == "Lost phone" and link.suspended_by_id == staff.id
    assert acting_for(uow.session, person, None) is None
    verification.set_suspended(uow, staff, where, whose.id, link_id, False, "Found it")
    assert link.status == AccountLinkStatus.ACTIVE and link.suspended_at is None
    assert [m.template for m in uow.sent] == ["access_suspended", "access_reinstated"]
    assert uow.audit_actions() == ["account.suspended", "account.reinstated"]


def test_a_link_of_another_practice_cannot_be_suspended(uow: FakeUnitOfWork) -> None:
    where, elsewhere = practice(uow), practice(uow)
    staff = receptionist(uow, where)
    mine = patient(uow, where)
    theirs = linked_user(uow, patient(uow, elsewhere))
    link_id = uow.session.scalars(select(AccountLink.id).where(AccountLink.user_id == theirs.id)).one()
    settled(uow)
    with pytest.raises(NotFound):
        verification.set_suspended(uow, staff, where, mine.id, link_id, True, "Because")


# Finding patients ------------------------------------------------------------------------------------------
def test_an_nhs_number_finds_a_patient_the_gateway_has_not_met_yet(uow: FakeUnitOfWork) -> None:
    where, staff, _asker, _request_id = waiting(uow)
    (found,) = verification.search_patients(uow, staff, where, "943 476 5919", None)
    assert found.full_name == "Sam Jones" and found.online_account_id.startswith(where.ods_code)
    stored = uow.session.get_one(Patient, found.id)
    assert stored.flags == [{"code": FLAG_REVIEW_NOT_INDICATED, "date": "2025-01-06"}]
    assert uow.system.calls == ["find_patient"] and uow.audit_actions() == ["patient.searched"]


def test_a_name_or_birth_date_finds_only_patients_already_on_the_gateway(uow: FakeUnitOfWork) -> None:
    where = practice(uow)
    staff = receptionist(uow, where)
    whose = patient(uow, where, born=dt.date(1990, 1, 2))
    settled(uow)
    assert [p.id for p in verification.search_patients(uow, staff, where, whose.family_name.upper(), None)] == [
        whose.id
    ]
    assert [p.id for p in verification.search_patients(uow, staff, where, "", dt.date(1990, 1, 2))] == [whose.id]
    assert verification.search_patients(uow, staff, where, "", None) == []
    assert uow.system.calls == []


# One patient's online access ----------------------------------------------------------------------------------
def at_desk(uow: FakeUnitOfWork, *flags: tuple[str, str], **practice_rules: Any) -> tuple[Practice, User, Patient]:
    """A practice, its receptionist and a patient with an account, holding the given (code, date) flags."""
    where = practice(uow, **practice_rules)
    staff = receptionist(uow, where)
    whose = patient(uow, where, flags=[{"code": code, "date": day} for code, day in flags])
    linked_user(uow, whose)
    settled(uow)
    return where, staff, whose


def change(level: RecordLevel | None, appointments: bool = True, prescriptions: bool = True) -> AccessChange:
    return AccessChange(record_level=level, appointments=appointments, prescriptions=prescriptions)


def test_the_panel_shows_settings_codes_and_effective_access_and_its_view_is_audited(uow: FakeUnitOfWork) -> None:
    where, staff, whose = at_desk(uow, (FLAG_REVIEW_NOT_INDICATED, "2025-02-01"))
    panel = patient_access.view_patient_access(uow, staff, where, whose.id)
    assert panel.patient.id == whose.id and panel.record_level is None and panel.practice_default is RecordLevel.FULL
    assert [(f.code, f.from_clinical_system) for f in panel.flags] == [(FLAG_REVIEW_NOT_INDICATED, True)]
    assert panel.access.record_level is RecordLevel.FULL and panel.record_offered
    assert uow.audit_actions() == ["access.viewed"]


@pytest.mark.parametrize("level", [RecordLevel.NONE, RecordLevel.SUMMARY, RecordLevel.DETAILED, RecordLevel.HISTORIC])
def test_reception_sets_a_record_level(uow: FakeUnitOfWork, level: RecordLevel) -> None:
    where, staff, whose = at_desk(uow)
    access = patient_access.set_patient_access(uow, staff, where, whose.id, change(level))
    assert access.record_level is level
    stored = uow.session.get_one(Patient, whose.id)
    assert stored.record_level == level.value and stored.record_level_set_at == uow.now()
    event = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "access.changed")).one()
    assert event.detail["old"] == {"record_level": None} and event.detail["new"] == {"record_level": level.value}


def test_back_to_the_practice_default_and_no_change_writes_nothing(uow: FakeUnitOfWork) -> None:
    where, staff, whose = at_desk(uow)
    patient_access.set_patient_access(uow, staff, where, whose.id, change(RecordLevel.SUMMARY))
    access = patient_access.set_patient_access(uow, staff, where, whose.id, change(None))
    assert access.record_level is RecordLevel.FULL
    assert uow.session.get_one(Patient, whose.id).record_level_set_at is None
    patient_access.set_patient_access(uow, staff, where, whose.id, change(None))
    assert uow.audit_actions() == ["access.changed", "access.changed"]


def test_switching_services_off_for_one_patient(uow: FakeUnitOfWork) -> None:
    where, staff, whose = at_desk(uow)
    access = patient_access.set_patient_access(uow, staff, where, whose.id, change(None, False, True))
    assert not access.services[Service.APPOINTMENTS] and access.services[Service.PRESCRIPTIONS]
    access = patient_access.set_patient_access(uow, staff, where, whose.id, change(None, True, False))
    assert access.services[Service.APPOINTMENTS] and not access.services[Service.PRESCRIPTIONS]


def test_no_record_level_while_the_practice_has_record_access_off(uow: FakeUnitOfWork) -> None:
    where, staff, whose = at_desk(uow, off=(Service.RECORD,))
    with pytest.raises(InputError, match="Record access is switched off for the whole practice") as refused:
        patient_access.set_patient_access(uow, staff, where, whose.id, change(RecordLevel.SUMMARY))
    assert refused.value.field == "record_level"
    patient_access.set_patient_access(uow, staff, where, whose.id, change(RecordLevel.NONE))


def test_a_declined_code_103_refuses_any_record_until_removed(uow: FakeUnitOfWork) -> None:
    where, staff, whose = at_desk(uow, (FLAG_DECLINED, "2026-02-01"))
    with pytest.raises(InputError) as refused:
        patient_access.set_patient_access(uow, staff, where, whose.id, change(RecordLevel.SUMMARY))
    assert refused.value.message == (
        "This patient declined online record access on 1 February 2026. Remove that code before giving record access"
    )
    assert patient_access.set_patient_access(uow, staff, where, whose.id, change(RecordLevel.NONE)).record_level is (
        RecordLevel.NONE
    )
    assert uow.session.get_one(Patient, whose.id).record_level == "none"


@pytest.mark.parametrize(
    ("flags", "full_allowed"),
    [
        (((FLAG_ENHANCED_REVIEW, "2026-01-10"),), False),
        (((FLAG_ENHANCED_REVIEW, "2026-01-10"), (FLAG_REVIEW_NOT_INDICATED, "2026-01-10")), False),
        (((FLAG_ENHANCED_REVIEW, "2026-01-10"), (FLAG_REVIEW_NOT_INDICATED, "2026-01-11")), True),
        (((FLAG_REVIEW_NOT_INDICATED, "2026-01-09"), (FLAG_ENHANCED_REVIEW, "2026-01-10")), False),
    ],
    ids=["104", "104 and 106 the same day", "106 after 104", "104 after 106"],
)
def test_an_enhanced_review_104_holds_back_the_full_record_until_a_later_106(
    uow: FakeUnitOfWork, flags: tuple[tuple[str, str], ...], full_allowed: bool
) -> None:
    where, staff, whose = at_desk(uow, *flags)
    patient_access.set_patient_access(uow, staff, where, whose.id, change(RecordLevel.DETAILED))
    for level in (RecordLevel.FULL, RecordLevel.HISTORIC):
        if full_allowed:
            assert patient_access.set_patient_access(uow, staff, where, whose.id, change(level)).record_level is level
        else:
            with pytest.raises(InputError, match="An enhanced review is indicated") as refused:
                patient_access.set_patient_access(uow, staff, where, whose.id, change(level))
            assert refused.value.field == "record_level"


@pytest.mark.parametrize(
    ("code", "day", "message", "field"),
    [
        ("123", dt.date(2026, 1, 5), "Choose which code to record", "code"),
        (FLAG_DECLINED, None, "Enter the date the code was recorded", "recorded_on"),
        (FLAG_DECLINED, dt.date(2026, 3, 3), "Date must be today or in the past", "recorded_on"),
        (FLAG_DECLINED, dt.date(1999, 12, 31), "Date must be in 2000 or later", "recorded_on"),
    ],
)
def test_recording_a_code_needs_a_known_code_and_a_sensible_date(
    uow: FakeUnitOfWork, code: str, day: dt.date | None, message: str, field: str
) -> None:
    where, staff, whose = at_desk(uow)
    with pytest.raises(InputError) as refused:
        patient_access.record_flag(uow, staff, where, whose.id, code, day)
    assert (refused.value.message, refused.value.field) == (message, field)
    assert uow.session.get_one(Patient, whose.id).flags == []


def test_a_code_reception_records_steers_access_and_can_be_removed_again(uow: FakeUnitOfWork) -> None:
    where, staff, whose = at_desk(uow, (FLAG_REVIEW_NOT_INDICATED, "2025-01-06"))
    patient_access.record_flag(uow, staff, where, whose.id, FLAG_DECLINED, dt.date(2026, 3, 2))
    panel = patient_access.access_panel(uow, staff, where, whose.id)
    assert panel.access.record_level is RecordLevel.NONE
    assert [(f.index, f.from_clinical_system) for f in panel.flags] == [(0, True), (1, False)]
    with pytest.raises(InputError, match="comes from the clinical system"):
        patient_access.remove_flag(uow, staff, where, whose.id, 0)
    with pytest.raises(InputError, match="comes from the clinical system"):
        patient_access.remove_flag(uow, staff, where, whose.id, 7)
    patient_access.remove_flag(uow, staff, where, whose.id, 1)
    assert uow.session.get_one(Patient, whose.id).flags == [{"code": FLAG_REVIEW_NOT_INDICATED, "date": "2025-01-06"}]
    assert uow.audit_actions() == ["access.changed", "access.changed"]


def test_reading_the_codes_again_keeps_receptions_own_and_replaces_the_clinical_systems(
    uow: FakeUnitOfWork,
) -> None:
    where, staff, whose = at_desk(uow, (FLAG_ENHANCED_REVIEW, "2025-01-06"))
    patient_access.record_flag(uow, staff, where, whose.id, FLAG_DECLINED, dt.date(2026, 1, 5))
    uow.system.patients[whose.nhs_number] = Demographics(
        ref=PatientRef(where.ods_code, whose.nhs_number, whose.clinical_id),
        given_name=whose.given_name,
        family_name=whose.family_name,
        date_of_birth=whose.date_of_birth,
        postcode="LS1 4AP",
        flags=(AccessFlag(FLAG_REVIEW_NOT_INDICATED, dt.date(2026, 2, 1)),),
    )
    assert patient_access.refresh_flags(uow, staff, where, whose.id) == 1
    stored = uow.session.get_one(Patient, whose.id)
    assert [(f["code"], f["source"]) for f in stored.flags] == [
        (FLAG_REVIEW_NOT_INDICATED, "clinical"),
        (FLAG_DECLINED, "practice"),
    ]
    assert stored.flags_read_at == uow.now() and uow.system.calls == ["find_patient"]


def test_reading_the_codes_again_when_the_patient_or_the_link_is_missing(uow: FakeUnitOfWork) -> None:
    where, staff, whose = at_desk(uow, (FLAG_ENHANCED_REVIEW, "2025-01-06"))
    with pytest.raises(InputError, match="not found in the clinical system"):
        patient_access.refresh_flags(uow, staff, where, whose.id)
    uow.system.down = True
    with pytest.raises(ClinicalSystemUnavailable):
        patient_access.refresh_flags(uow, staff, where, whose.id)
    assert uow.session.get_one(Patient, whose.id).flags == [{"code": FLAG_ENHANCED_REVIEW, "date": "2025-01-06"}]
    assert uow.audit_actions() == []


# Requests whose details did not match (they reach the queue so the patient cannot tell) ------------------------
def test_the_queue_shows_whether_a_request_matched_the_clinical_system(uow: FakeUnitOfWork) -> None:
    where, staff, _asker, request_id = waiting(uow)
    uow.session.get_one(LinkRequest, request_id).matched = False
    settled(uow)
    (queued,) = verification.pending_requests(uow, staff, where)
    assert queued.id == request_id and queued.matched is False


@pytest.mark.parametrize(
    "changes",
    [{"family_name": "Jonas"}, {"date_of_birth": dt.date(1984, 3, 16)}, {"postcode": "LS1 4AQ"}],
    ids=["family name", "birth date", "postcode"],
)
def test_a_request_that_does_not_match_the_record_is_never_approved(
    uow: FakeUnitOfWork, changes: dict[str, Any]
) -> None:
    """Before, a mismatch never reached reception; now it does, so approving it must not link the record."""
    where, staff, _asker, request_id = waiting(uow)
    request = uow.session.get_one(LinkRequest, request_id)
    for name, value in changes.items():
        setattr(request, name, value)
    request.matched = False
    settled(uow)
    with pytest.raises(InputError) as refused:
        approve(uow, staff, where, request_id, "documents", ("passport", "utility_bill"))
    assert refused.value.message.startswith("The details in this request do not match your clinical system")
    assert uow.session.scalars(select(AccountLink)).all() == []
    assert uow.session.scalars(select(Check)).all() == []
    assert uow.session.get_one(LinkRequest, request_id).status == LinkRequestStatus.PENDING


def test_approving_records_exactly_the_check_made(uow: FakeUnitOfWork) -> None:
    where, staff, asker, request_id = waiting(uow)
    verification.approve_request(
        uow, staff, where, request_id, "vouching_with_confirmation", ["passport"], True, "  Asked about last visit  "
    )
    check = uow.session.scalars(select(Check)).one()
    assert (check.method, check.documents, check.remote, check.notes) == (
        "vouching_with_confirmation",
        [],
        True,
        "Asked about last visit",
    )
    assert (check.user_id, check.staff_id) == (asker.id, staff.id)


def test_notes_longer_than_the_limit_are_refused_not_cut(uow: FakeUnitOfWork) -> None:
    where, staff, _asker, request_id = waiting(uow)
    with pytest.raises(InputError) as refused:
        verification.approve_request(uow, staff, where, request_id, "vouching", [], False, "x" * 2001)
    assert refused.value.field == "notes"
    assert uow.session.scalars(select(Check)).all() == []
