"""Linking an account to the GP record with a fake unit of work: linkage letters (right and wrong ODS code,
Account ID and key, expiry, a revoked earlier letter) and requests matched against the clinical system."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from patient_online.domain.errors import ClinicalSystemUnavailable, InputError, NotAllowed, NotFound
from patient_online.domain.patients import Demographics, PatientRef
from patient_online.domain.verification import IdentityCheck, LinkRequestStatus, identity_check
from patient_online.models import (
    AccountLink,
    AuditEvent,
    LinkageLetter,
    LinkRequest,
    Patient,
    Practice,
    StaffMembership,
    User,
)
from patient_online.models import Verification as Check
from patient_online.services import linking
from patient_online.services.unit_of_work import FixedClock
from tests.fakes import FakeUnitOfWork
from tests.unit.conftest import patient, practice, user

SECRET = {"SECRET_KEY": "unit-test-secret"}
WRONG = "The details do not match a current linkage letter"
NHS = "9434765919"  # a valid NHS number
AT_THE_DESK = identity_check("documents", ["passport", "utility_bill"], False, " Seen at the desk ")


@pytest.fixture
def uow() -> Iterator[FakeUnitOfWork]:
    unit = FakeUnitOfWork(settings=SECRET)
    yield unit
    unit.close()


def receptionist(uow: FakeUnitOfWork, where: Practice, role: str = "receptionist") -> User:
    staff = user(uow, kind="staff")
    uow.session.add(StaffMembership(user_id=staff.id, practice_id=where.id, role=role))
    uow.session.flush()
    uow.session.refresh(staff)
    return staff


def settled(uow: FakeUnitOfWork) -> None:
    """End the set-up's transaction and forget its commits, so a test counts only the use case's."""
    uow.commit()
    uow.commits = 0


def letter_for(uow: FakeUnitOfWork) -> tuple[Patient, User, str]:
    """A patient, the receptionist who checked them, and a fresh Linkage Key."""
    where = practice(uow)
    whose = patient(uow, where)
    staff = receptionist(uow, where)
    settled(uow)
    return whose, staff, linking.issue_letter(uow, staff, where, whose.id, AT_THE_DESK)


def links_of(uow: FakeUnitOfWork, whose: Patient) -> list[AccountLink]:
    return list(uow.session.scalars(select(AccountLink).where(AccountLink.patient_id == whose.id)))


# Linkage letters --------------------------------------------------------------------------------------------
def test_issuing_a_letter_stores_only_the_keys_hash_and_audits(uow: FakeUnitOfWork) -> None:
    _whose, staff, key = letter_for(uow)
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", key)
    letter = uow.session.scalars(select(LinkageLetter)).one()
    assert letter.key_hash != key.replace("-", "") and letter.issued_by_id == staff.id
    assert letter.expires_at == uow.now() + dt.timedelta(days=30)
    assert uow.audit_actions() == ["linkage_letter.issued"] and uow.commits == 1


@pytest.mark.parametrize(
    ("check", "documents"),
    [
        (AT_THE_DESK, [{"type": "passport", "photo": True}, {"type": "utility_bill", "photo": False}]),
        (identity_check("vouching", ["passport"], False, ""), []),  # documents are not what vouching rests on
        (identity_check("vouching_with_confirmation", [], True, "Phoned, asked about her last visit"), []),
    ],
    ids=["documents", "vouching", "remote vouching with confirmation"],
)
def test_issuing_a_letter_records_exactly_the_check_reception_made(
    uow: FakeUnitOfWork, check: IdentityCheck, documents: list[dict[str, object]]
) -> None:
    where = practice(uow)
    whose = patient(uow, where)
    staff = receptionist(uow, where)
    settled(uow)
    linking.issue_letter(uow, staff, where, whose.id, check)
    (recorded,) = uow.session.scalars(select(Check).where(Check.patient_id == whose.id))
    assert (recorded.method, recorded.documents, recorded.remote) == (check.method.value, documents, check.remote)
    assert (recorded.staff_id, recorded.verified_at, recorded.notes) == (staff.id, uow.now(), check.notes)
    assert recorded.user_id is None  # no account yet
    assert "Linkage letter" not in recorded.notes  # no stock note claiming a check
    event = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "linkage_letter.issued")).one()
    assert event.detail["method"] == check.method.value and event.detail["remote"] == check.remote
    assert uow.commits == 1


@pytest.mark.parametrize(
    ("method", "documents", "message", "field"),
    [
        ("", [], "Choose how you verified this person's identity", "method"),
        ("linkage_letter", [], "Choose how you verified this person's identity", "method"),
        ("documents", ["passport"], "Select at least 2 documents you have seen", "documents"),
        ("documents", ["utility_bill", "bank_statement"], "Select at least 1 document with a photo", "documents"),
    ],
    ids=["no method", "not a reception method", "one document", "no photo"],
)
def test_no_letter_without_a_check_that_meets_rule_3(
    method: str, documents: list[str], message: str, field: str
) -> None:
    with pytest.raises(InputError) as refused:
        identity_check(method, documents, False, "")
    assert refused.value.message.startswith(message) and refused.value.field == field


def test_issuing_a_letter_needs_the_check(uow: FakeUnitOfWork) -> None:
    where = practice(uow)
    whose = patient(uow, where)
    staff = receptionist(uow, where)
    with pytest.raises(TypeError):
        linking.issue_letter(uow, staff, where, whose.id)  # type: ignore[call-arg]
    assert uow.session.scalars(select(LinkageLetter)).all() == []
    assert uow.session.scalars(select(Check)).all() == []


def test_a_letter_issued_on_remote_vouching_links_with_the_summary_cap(uow: FakeUnitOfWork) -> None:
    where = practice(uow)
    whose = patient(uow, where)
    staff = receptionist(uow, where)
    key = linking.issue_letter(uow, staff, where, whose.id, identity_check("vouching", [], True, ""))
    person = user(uow)
    linking.link_with_letter(uow, person, where.ods_code, whose.online_account_id, key)
    (link,) = links_of(uow, whose)
    assert link.remote_vouching_only


def test_only_reception_of_the_patients_practice_issues_letters(uow: FakeUnitOfWork) -> None:
    where, elsewhere = practice(uow), practice(uow)
    whose = patient(uow, where)
    manager = receptionist(uow, where, role="manager")
    other_reception = receptionist(uow, elsewhere)
    with pytest.raises(NotAllowed):
        linking.issue_letter(uow, manager, where, whose.id, AT_THE_DESK)
    with pytest.raises(NotFound):
        linking.issue_letter(uow, other_reception, elsewhere, whose.id, AT_THE_DESK)
    assert uow.session.scalars(select(LinkageLetter)).all() == []


def test_the_right_letter_links_and_verifies_at_once(uow: FakeUnitOfWork) -> None:
    whose, staff, key = letter_for(uow)
    person = user(uow)
    settled(uow)
    linked = linking.link_with_letter(uow, person, f" {whose.practice.ods_code.lower()} ", whose.online_account_id, key)
    assert linked.id == whose.id and linked.full_name == whose.full_name
    (link,) = links_of(uow, whose)
    assert link.user_id == person.id and link.method == "linkage_letter" and link.linked_at == uow.now()
    # The check is the one reception recorded when issuing the letter; using it claims no further check.
    (check,) = uow.session.scalars(select(Check).where(Check.patient_id == whose.id))
    assert check.method == "documents" and check.staff_id == staff.id and check.notes == "Seen at the desk"
    assert len(check.documents) == 2 and not link.remote_vouching_only
    letter = uow.session.scalars(select(LinkageLetter)).one()
    assert letter.used_at == uow.now() and letter.used_by_id == person.id
    assert uow.audit_actions()[-1] == "link.letter_used" and uow.commits == 1


def test_the_key_may_be_typed_in_lower_case_with_spaces(uow: FakeUnitOfWork) -> None:
    whose, _staff, key = letter_for(uow)
    person = user(uow)
    typed = key.lower().replace("-", " ")
    linking.link_with_letter(uow, person, whose.practice.ods_code, whose.online_account_id.lower(), typed)
    assert [link.user_id for link in links_of(uow, whose)] == [person.id]


@pytest.mark.parametrize("wrong", ["ods", "account", "key"])
def test_a_wrong_ods_code_account_id_or_key_gets_the_same_answer_and_is_audited(
    uow: FakeUnitOfWork, wrong: str
) -> None:
    whose, _staff, key = letter_for(uow)
    other = practice(uow)
    person = user(uow)
    settled(uow)
    ods = other.ods_code if wrong == "ods" else whose.practice.ods_code
    account = "ACC999999" if wrong == "account" else whose.online_account_id
    typed = "AAAA-BBBB-CCCC" if wrong == "key" else key
    with pytest.raises(InputError) as refused:
        linking.link_with_letter(uow, person, ods, account, typed)
    assert refused.value.message.startswith(WRONG) and refused.value.field == "key"
    assert links_of(uow, whose) == []
    assert uow.audit_actions()[-1] == "link.letter_failed" and uow.commits == 1  # the failure is kept


def test_an_expired_letter_no_longer_links(uow: FakeUnitOfWork) -> None:
    whose, _staff, key = letter_for(uow)
    person = user(uow)
    clock = uow.clock
    assert isinstance(clock, FixedClock)
    clock.advance(days=30, seconds=1)
    with pytest.raises(InputError, match=WRONG):
        linking.link_with_letter(uow, person, whose.practice.ods_code, whose.online_account_id, key)


def test_a_new_letter_revokes_the_earlier_one(uow: FakeUnitOfWork) -> None:
    whose, staff, first = letter_for(uow)
    second = linking.issue_letter(uow, staff, whose.practice, whose.id, AT_THE_DESK)
    person = user(uow)
    with pytest.raises(InputError, match=WRONG):
        linking.link_with_letter(uow, person, whose.practice.ods_code, whose.online_account_id, first)
    linking.link_with_letter(uow, person, whose.practice.ods_code, whose.online_account_id, second)
    letters = list(uow.session.scalars(select(LinkageLetter).order_by(LinkageLetter.id)))
    assert letters[0].revoked_at is not None and letters[0].used_at is None
    assert letters[1].revoked_at is None and letters[1].used_at is not None


def test_a_used_letter_does_not_link_a_second_account(uow: FakeUnitOfWork) -> None:
    whose, _staff, key = letter_for(uow)
    first, second = user(uow), user(uow)
    linking.link_with_letter(uow, first, whose.practice.ods_code, whose.online_account_id, key)
    with pytest.raises(InputError, match=WRONG):
        linking.link_with_letter(uow, second, whose.practice.ods_code, whose.online_account_id, key)
    assert [link.user_id for link in links_of(uow, whose)] == [first.id]


def test_an_account_already_linked_is_told_so(uow: FakeUnitOfWork) -> None:
    whose, _staff, key = letter_for(uow)
    person = user(uow)
    uow.session.add(AccountLink(user_id=person.id, patient_id=patient(uow, whose.practice).id, method="documents"))
    settled(uow)
    with pytest.raises(InputError, match="already linked to your GP record"):
        linking.link_with_letter(uow, person, whose.practice.ods_code, whose.online_account_id, key)
    assert uow.commits == 0


def test_a_record_linked_to_another_account_is_not_linked_again(uow: FakeUnitOfWork) -> None:
    whose, _staff, key = letter_for(uow)
    uow.session.add(AccountLink(user_id=user(uow).id, patient_id=whose.id, method="documents"))
    person = user(uow)
    settled(uow)
    with pytest.raises(InputError, match="already linked to another account"):
        linking.link_with_letter(uow, person, whose.practice.ods_code, whose.online_account_id, key)


# Requests matched against the clinical system ------------------------------------------------------------
def on_clinical_system(uow: FakeUnitOfWork, where: Practice) -> Demographics:
    person = Demographics(
        ref=PatientRef(where.ods_code, NHS, "C-1"),
        given_name="Sam",
        family_name="Jones Smith",
        date_of_birth=dt.date(1984, 3, 15),
        postcode="LS1 4AP",
    )
    uow.system.patients[NHS] = person
    return person


def ask(uow: FakeUnitOfWork, person: User, where: Practice, **changes: object) -> None:
    answers: dict[str, object] = {
        "ods": where.ods_code,
        "nhs_number": "943 476 5919",
        "date_of_birth": dt.date(1984, 3, 15),
        "given_name": " Sam ",
        "family_name": "jones  smith",
        "postcode": "ls14ap",
    }
    answers.update(changes)
    linking.request_link(uow, person, **answers)  # type: ignore[arg-type]


def test_matching_details_wait_for_reception(uow: FakeUnitOfWork) -> None:
    where = practice(uow)
    on_clinical_system(uow, where)
    person = user(uow)
    settled(uow)
    ask(uow, person, where)  # the guarded clinical system refuses a call made inside a transaction
    request = uow.session.scalars(select(LinkRequest)).one()
    assert (request.user_id, request.nhs_number, request.clinical_id) == (person.id, NHS, "C-1")
    assert request.status == LinkRequestStatus.PENDING and request.postcode == "LS14AP"
    assert request.given_name == "Sam" and request.created_at == uow.now()
    assert uow.system.calls == ["find_patient"]
    assert uow.audit_actions() == ["link.requested"]
    latest = linking.latest_request(uow, person)
    assert latest is not None and latest.status is LinkRequestStatus.PENDING and latest.practice_name == where.name


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"date_of_birth": dt.date(1984, 3, 16)},
        {"family_name": "Jonas"},
        {"postcode": "LS1 4AQ"},
        {"nhs_number": "9434765870"},  # valid, but nobody at the practice
    ],
    ids=["match", "birth date", "family name", "postcode", "unknown person"],
)
def test_a_match_a_mismatch_and_an_unknown_person_get_the_same_answer(
    uow: FakeUnitOfWork, changes: dict[str, object]
) -> None:
    """No enumeration: whatever was typed, the patient's request goes to reception after the same work."""
    where = practice(uow)
    on_clinical_system(uow, where)
    person = user(uow)
    settled(uow)
    ask(uow, person, where, **changes)  # no refusal, whatever the outcome
    request = uow.session.scalars(select(LinkRequest)).one()
    assert request.status == LinkRequestStatus.PENDING and request.matched is (not changes)
    assert request.clinical_id == ("" if changes else "C-1")
    assert uow.system.calls == ["find_patient"] and uow.audit_actions() == ["link.requested"] and uow.commits == 2
    event = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "link.requested")).one()
    assert event.detail["matched"] is (not changes)  # recorded for the practice, not told to the patient
    latest = linking.latest_request(uow, person)
    assert latest is not None and latest.status is LinkRequestStatus.PENDING


def test_after_a_mismatch_the_next_request_waits_like_after_a_match(uow: FakeUnitOfWork) -> None:
    """A second request gets the same answer after either outcome, so it cannot tell them apart."""
    where = practice(uow)
    on_clinical_system(uow, where)
    person = user(uow)
    settled(uow)
    ask(uow, person, where, family_name="Jonas")
    with pytest.raises(InputError, match="already have a request waiting"):
        ask(uow, person, where)


@pytest.mark.parametrize(
    ("changes", "message", "field"),
    [
        ({"nhs_number": "1234567890"}, "Enter a valid 10-digit NHS number", "nhs_number"),
        ({"ods": "Z99999"}, "Choose your GP practice", "practice"),
    ],
)
def test_request_refusals_before_asking_the_clinical_system(
    uow: FakeUnitOfWork, changes: dict[str, object], message: str, field: str
) -> None:
    where = practice(uow)
    on_clinical_system(uow, where)
    person = user(uow)
    settled(uow)
    with pytest.raises(InputError) as refused:
        ask(uow, person, where, **changes)
    assert (refused.value.message, refused.value.field) == (message, field)
    assert uow.system.calls == [] and uow.audit_actions() == []


def test_one_request_waits_at_a_time_and_a_linked_account_asks_none(uow: FakeUnitOfWork) -> None:
    where = practice(uow)
    on_clinical_system(uow, where)
    person = user(uow)
    settled(uow)
    ask(uow, person, where)
    with pytest.raises(InputError, match="already have a request waiting"):
        ask(uow, person, where)
    linked = user(uow)
    uow.session.add(AccountLink(user_id=linked.id, patient_id=patient(uow, where).id, method="documents"))
    with pytest.raises(InputError, match="already linked to your GP record"):
        ask(uow, linked, where)


def test_a_clinical_system_that_is_down_is_said_plainly(uow: FakeUnitOfWork) -> None:
    where = practice(uow)
    person = user(uow)
    settled(uow)
    uow.system.down = True
    with pytest.raises(ClinicalSystemUnavailable):
        ask(uow, person, where)
    assert uow.session.scalars(select(LinkRequest)).all() == []


def test_the_link_page_lists_practices_and_the_latest_request(uow: FakeUnitOfWork) -> None:
    where = practice(uow)
    person = user(uow)
    uow.session.add(
        LinkRequest(
            user_id=person.id,
            practice_id=where.id,
            nhs_number=NHS,
            given_name="Sam",
            family_name="Jones",
            date_of_birth=dt.date(1984, 3, 15),
            postcode="LS1 4AP",
            status="rejected",
            rejection_reason="Bring photo ID",
        )
    )
    settled(uow)
    page = linking.link_page(uow, person)
    assert not page.linked and (where.ods_code, f"{where.name} ({where.ods_code})") in page.practices
    assert page.latest is not None and page.latest.status is LinkRequestStatus.REJECTED
    assert page.latest.rejection_reason == "Bring photo ID" and page.latest.email == person.email
