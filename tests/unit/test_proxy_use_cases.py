"""Proxy access use cases with a fake unit of work: asking, each basis and its rules, the safeguarding check, the
age rules when approving and restarting, per-service permissions, consent, ending, and the daily age job."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from patient_online.domain.access import Service
from patient_online.domain.errors import ClinicalSystemUnavailable, InputError, NotAllowed, NotFound
from patient_online.domain.patients import Demographics, PatientRef
from patient_online.domain.proxy import ProxyBasis, ProxyStatus, birthday
from patient_online.domain.record import RecordLevel
from patient_online.models import AccountLink, AuditEvent, Patient, Practice, ProxyLink, StaffMembership, User
from patient_online.services import proxy
from patient_online.services.proxy import Approval, ProxyRequest
from tests.fakes import FakeUnitOfWork
from tests.unit.conftest import linked_user, patient, practice, user

TODAY = dt.date(2026, 3, 2)  # the fake unit of work's clock, in England


def born_aged(years: int, days: int = 0) -> dt.date:
    """A date of birth for someone ``years`` old today, ``days`` after their birthday."""
    return birthday(TODAY - dt.timedelta(days=days), -years)


def nhs_number(seed: int) -> str:
    """A valid NHS number (modulus 11) made from ``seed``."""
    for n in range(seed, seed + 20):
        digits = [int(d) for d in f"{400000000 + n:09d}"]
        check = 11 - sum(d * (10 - i) for i, d in enumerate(digits)) % 11
        if check == 11:
            check = 0
        if check != 10:
            return "".join(map(str, digits)) + str(check)
    raise AssertionError("no valid number")


def receptionist(uow: FakeUnitOfWork, where: Practice, role: str = "receptionist") -> User:
    staff = user(uow, kind="staff")
    uow.session.add(StaffMembership(user_id=staff.id, practice_id=where.id, role=role))
    uow.session.flush()
    uow.session.refresh(staff)
    return staff


def requested(
    uow: FakeUnitOfWork,
    whose: Patient,
    basis: ProxyBasis = ProxyBasis.BEST_INTERESTS,
    status: ProxyStatus = ProxyStatus.REQUESTED,
    **fields: Any,
) -> tuple[ProxyLink, User]:
    """A proxy link to ``whose`` from a verified person with a record of their own at the same practice."""
    asker = linked_user(uow, patient(uow, whose.practice))
    asker.given_name, asker.family_name = "Pat", "Proxy"
    link = ProxyLink(
        proxy_user_id=asker.id,
        patient_id=whose.id,
        relationship_text="Carer",
        basis=basis.value,
        status=status.value,
        notices_sent=[],
        **fields,
    )
    uow.session.add(link)
    uow.session.flush()
    uow.commit()
    uow.commits = 0
    return link, asker


def approval(chosen: ProxyBasis, **changes: Any) -> Approval:
    values: dict[str, Any] = {
        "basis": chosen.value,
        "evidence": "Seen at the front desk",
        "safeguarding_checked": True,
        "safeguarding_notes": "Spoke to the patient alone; no concerns",
        "can_appointments": True,
        "can_prescriptions": False,
        "record_level": "summary",
    }
    values.update(changes)
    return Approval(**values)


def subjects(uow: FakeUnitOfWork, to: str | None = None) -> list[str]:
    return [m.subject for m in uow.sent if to is None or m.to == to]


# Asking -------------------------------------------------------------------------------------------------------
@pytest.fixture
def asking(uow: FakeUnitOfWork) -> tuple[User, Practice, Demographics]:
    """A verified patient, their practice, and someone else registered there in the clinical system."""
    surgery = practice(uow)
    asker = linked_user(uow, patient(uow, surgery))
    person = Demographics(PatientRef(surgery.ods_code, nhs_number(1), "C1"), "Ada", "Lee", born_aged(81), "AB1 2CD")
    uow.system.patients[person.ref.nhs_number] = person
    uow.commit()
    uow.commits = 0
    return asker, surgery, person


def _ask(person: Demographics, surgery: Practice, **changes: Any) -> ProxyRequest:
    values: dict[str, Any] = {
        "practice_ods": surgery.ods_code,
        "nhs_number": person.ref.nhs_number,
        "date_of_birth": person.date_of_birth,
        "relationship": "Son",
        "basis": ProxyBasis.LASTING_POWER_OF_ATTORNEY.value,
    }
    values.update(changes)
    return ProxyRequest(**values)


def test_a_matching_request_waits_for_reception_and_the_clinical_call_is_outside_the_transaction(
    uow: FakeUnitOfWork, asking: Any
) -> None:
    asker, surgery, person = asking
    proxy.request_proxy(uow, asker, _ask(person, surgery))  # the guarded system raises if a transaction is open
    link = uow.session.query(ProxyLink).filter_by(proxy_user_id=asker.id).one()
    assert link.status == ProxyStatus.REQUESTED and link.basis == ProxyBasis.LASTING_POWER_OF_ATTORNEY
    assert link.patient.nhs_number == person.ref.nhs_number and link.relationship_text == "Son"
    assert uow.system.calls == ["find_patient"] and uow.commits == 2  # before the call, and the outcome
    assert uow.audit_actions() == ["proxy.requested"]
    assert subjects(uow) == ["We have your request to act for someone"]


def test_a_request_matching_nobody_gets_the_same_answer_and_creates_nothing(uow: FakeUnitOfWork, asking: Any) -> None:
    asker, surgery, person = asking
    proxy.request_proxy(uow, asker, _ask(person, surgery, date_of_birth=person.date_of_birth - dt.timedelta(days=1)))
    assert uow.session.query(ProxyLink).count() == 0
    assert uow.audit_actions() == ["proxy.requested"]
    assert subjects(uow) == ["We have your request to act for someone"]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"nhs_number": "123"}, "nhs_number", "Enter a valid 10-digit NHS number"),
        ({"relationship": " "}, "relationship", "Enter how you are related to the person, for example: mother"),
        ({"relationship": "x" * 101}, "relationship", "Enter a relationship of 100 characters or fewer"),
        ({"basis": "friendship"}, "basis", "Choose why you can act for this person"),
        ({"practice_ods": "ZZZ99"}, "practice", "Choose the person's GP practice"),
    ],
)
def test_request_mistakes_name_the_field(
    uow: FakeUnitOfWork, asking: Any, changes: dict[str, Any], field: str, message: str
) -> None:
    asker, surgery, person = asking
    with pytest.raises(InputError) as caught:
        proxy.request_proxy(uow, asker, _ask(person, surgery, **changes))
    assert (caught.value.field, caught.value.message) == (field, message)
    assert uow.system.calls == [] and uow.commits == 0 and uow.sent == []


def test_no_requests_when_the_practice_does_not_offer_proxy_access(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow, off=(Service.PROXY,))
    asker = linked_user(uow, patient(uow, surgery))
    person = Demographics(PatientRef(surgery.ods_code, nhs_number(1), "C1"), "Ada", "Lee", born_aged(81), "AB1 2CD")
    with pytest.raises(InputError, match="does not offer proxy access online") as caught:
        proxy.request_proxy(uow, asker, _ask(person, surgery))
    assert caught.value.field == "practice" and uow.system.calls == []


def test_only_a_verified_patient_can_ask(uow: FakeUnitOfWork, asking: Any) -> None:
    _, surgery, person = asking
    with pytest.raises(NotAllowed, match="Link your account"):
        proxy.request_proxy(uow, user(uow), _ask(person, surgery))
    assert uow.system.calls == []


def test_asking_for_your_own_record_is_refused_and_nothing_is_kept(uow: FakeUnitOfWork, asking: Any) -> None:
    asker, surgery, person = asking
    mine = uow.session.query(AccountLink).filter_by(user_id=asker.id).one().patient
    mine.nhs_number = nhs_number(500)
    uow.system.patients[mine.nhs_number] = Demographics(
        PatientRef(surgery.ods_code, mine.nhs_number, mine.clinical_id), "Me", "Myself", mine.date_of_birth, ""
    )
    uow.commit()
    wanted = _ask(person, surgery, nhs_number=mine.nhs_number, date_of_birth=mine.date_of_birth)
    with pytest.raises(InputError, match="That is your own record") as caught:
        proxy.request_proxy(uow, asker, wanted)
    assert caught.value.field == "nhs_number"
    assert uow.rollbacks == 1 and uow.session.query(ProxyLink).count() == 0 and uow.sent == []


def test_an_open_request_is_not_duplicated(uow: FakeUnitOfWork, asking: Any) -> None:
    asker, surgery, person = asking
    proxy.request_proxy(uow, asker, _ask(person, surgery))
    proxy.request_proxy(uow, asker, _ask(person, surgery))
    assert uow.session.query(ProxyLink).count() == 1
    assert uow.audit_actions() == ["proxy.requested", "proxy.requested"]


def test_a_clinical_system_that_is_down_leaves_nothing_behind(uow: FakeUnitOfWork, asking: Any) -> None:
    asker, surgery, person = asking
    uow.system.down = True
    with pytest.raises(ClinicalSystemUnavailable):
        proxy.request_proxy(uow, asker, _ask(person, surgery))
    assert uow.audit_actions() == [] and uow.sent == []


# Approving: each basis and its rules --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("basis", "age"),
    [
        (ProxyBasis.PARENTAL_RESPONSIBILITY, 6),
        (ProxyBasis.LASTING_POWER_OF_ATTORNEY, 81),
        (ProxyBasis.COURT_DEPUTYSHIP, 40),
        (ProxyBasis.BEST_INTERESTS, 30),
    ],
)
def test_approving_a_basis_that_needs_no_consent_makes_the_link_active(
    uow: FakeUnitOfWork, basis: ProxyBasis, age: int
) -> None:
    surgery = practice(uow)
    link, asker = requested(uow, patient(uow, surgery, born=born_aged(age)), basis)
    staff = receptionist(uow, surgery)
    done = proxy.approve_proxy(uow, staff, surgery, link.id, approval(basis))
    assert done.status is ProxyStatus.ACTIVE and done.id == link.id and done.proxy_name == "Pat Proxy"
    assert link.safeguarding_checked_by_id == staff.id and link.safeguarding_checked_at == uow.now()
    assert link.evidence == "Seen at the front desk" and link.decided_by_id == staff.id
    assert (link.can_appointments, link.can_prescriptions, link.record_level) == (True, False, "summary")
    assert uow.audit_actions() == ["proxy.approved"] and uow.commits == 1
    assert subjects(uow, asker.email) == ["Proxy access approved"]


def test_the_patients_consent_is_asked_inside_the_gateway(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    adult = patient(uow, surgery, born=born_aged(30))
    own_account = linked_user(uow, adult)
    link, asker = requested(uow, adult, ProxyBasis.CONSENT)
    done = proxy.approve_proxy(uow, receptionist(uow, surgery), surgery, link.id, approval(ProxyBasis.CONSENT))
    assert done.status is ProxyStatus.AWAITING_CONSENT
    assert subjects(uow, own_account.email) == ["Someone has asked to act for you online"]
    assert subjects(uow, asker.email) == ["Your request to act for someone has been checked"]
    assert "If you have questions, contact" in uow.sent[0].body


def test_consent_needs_the_patient_to_have_an_account(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    link, _ = requested(uow, patient(uow, surgery, born=born_aged(30)), ProxyBasis.CONSENT)
    with pytest.raises(InputError, match="has no online account") as caught:
        proxy.approve_proxy(uow, receptionist(uow, surgery), surgery, link.id, approval(ProxyBasis.CONSENT))
    assert caught.value.field == "basis" and link.status == ProxyStatus.REQUESTED and uow.commits == 0


def test_parental_responsibility_gives_no_access_from_sixteen(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    link, _ = requested(uow, patient(uow, surgery, born=born_aged(16)), ProxyBasis.PARENTAL_RESPONSIBILITY)
    agreed = approval(ProxyBasis.PARENTAL_RESPONSIBILITY, competence_assessed=True, child_consent=True)
    with pytest.raises(InputError, match=r"The patient is 16\. Parental responsibility does not give") as caught:
        proxy.approve_proxy(uow, receptionist(uow, surgery), surgery, link.id, agreed)
    assert caught.value.field == "basis" and uow.audit_actions() == []


def test_from_the_review_age_a_parent_needs_the_childs_say(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    link, _ = requested(uow, patient(uow, surgery, born=born_aged(11)), ProxyBasis.PARENTAL_RESPONSIBILITY)
    staff = receptionist(uow, surgery)
    for partial in ({}, {"competence_assessed": True}):
        with pytest.raises(InputError, match="From 11 record a competence assessment") as caught:
            proxy.approve_proxy(uow, staff, surgery, link.id, approval(ProxyBasis.PARENTAL_RESPONSIBILITY, **partial))
        assert caught.value.field == "competence_assessed"
    agreed = approval(ProxyBasis.PARENTAL_RESPONSIBILITY, competence_assessed=True, child_consent=True)
    assert proxy.approve_proxy(uow, staff, surgery, link.id, agreed).status is ProxyStatus.ACTIVE
    assert link.competence_assessed and link.child_consent


def test_the_review_age_is_the_practices(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow, proxy_review_age=13)
    link, _ = requested(uow, patient(uow, surgery, born=born_aged(12, 364)), ProxyBasis.PARENTAL_RESPONSIBILITY)
    done = proxy.approve_proxy(
        uow, receptionist(uow, surgery), surgery, link.id, approval(ProxyBasis.PARENTAL_RESPONSIBILITY)
    )
    assert done.status is ProxyStatus.ACTIVE, "12 the day before their 13th birthday: no review yet"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"safeguarding_checked": False}, "safeguarding_checked", "Confirm that you have checked for coercion"),
        ({"safeguarding_notes": " "}, "safeguarding_notes", "Enter what you checked and found"),
        ({"safeguarding_notes": "x" * 2001}, "safeguarding_notes", "Enter notes of 2000 characters or fewer"),
        ({"evidence": ""}, "evidence", "Enter the evidence you have seen"),
        ({"evidence": "x" * 2001}, "evidence", "Enter evidence of 2000 characters or fewer"),
        ({"basis": "friendship"}, "basis", "Choose the basis you have confirmed"),
    ],
)
def test_the_coercion_and_safeguarding_check_and_the_evidence_are_required(
    uow: FakeUnitOfWork, changes: dict[str, Any], field: str, message: str
) -> None:
    surgery = practice(uow)
    link, _ = requested(uow, patient(uow, surgery))
    with pytest.raises(InputError) as caught:
        proxy.approve_proxy(
            uow, receptionist(uow, surgery), surgery, link.id, approval(ProxyBasis.BEST_INTERESTS, **changes)
        )
    assert caught.value.field == field and caught.value.message.startswith(message)
    assert link.status == ProxyStatus.REQUESTED and link.safeguarding_checked_at is None
    assert uow.commits == 0 and uow.audit_actions() == [] and uow.sent == []


def test_a_proxy_who_lost_their_own_link_is_no_longer_verified(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    link, asker = requested(uow, patient(uow, surgery))
    for own in uow.session.query(AccountLink).filter_by(user_id=asker.id):
        own.status = "ended"
    with pytest.raises(InputError, match="no longer linked to their own GP record"):
        proxy.approve_proxy(uow, receptionist(uow, surgery), surgery, link.id, approval(ProxyBasis.BEST_INTERESTS))


def test_only_undecided_requests_can_be_approved(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    link, _ = requested(uow, patient(uow, surgery), status=ProxyStatus.ACTIVE)
    with pytest.raises(InputError, match="already been decided"):
        proxy.approve_proxy(uow, receptionist(uow, surgery), surgery, link.id, approval(ProxyBasis.BEST_INTERESTS))


def test_only_reception_of_the_patients_practice_decides(uow: FakeUnitOfWork) -> None:
    surgery, elsewhere = practice(uow), practice(uow)
    link, _ = requested(uow, patient(uow, surgery))
    wanted = approval(ProxyBasis.BEST_INTERESTS)
    with pytest.raises(NotAllowed, match="Only reception staff"):
        proxy.approve_proxy(uow, receptionist(uow, elsewhere), surgery, link.id, wanted)
    with pytest.raises(NotAllowed):
        proxy.approve_proxy(uow, receptionist(uow, surgery, "practice_manager"), surgery, link.id, wanted)
    with pytest.raises(NotFound):
        proxy.approve_proxy(uow, receptionist(uow, elsewhere), elsewhere, link.id, wanted)
    assert link.status == ProxyStatus.REQUESTED


# Per-service permissions --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("off", "changes", "field", "message"),
    [
        ((Service.APPOINTMENTS,), {}, "can_appointments", "Online appointments are not available to this patient"),
        ((Service.PRESCRIPTIONS,), {"can_prescriptions": True}, "can_prescriptions", "Repeat prescriptions are not"),
        ((Service.RECORD,), {"record_level": "summary"}, "record_level", "The patient's own access is 'no record"),
        ((), {"record_level": "everything"}, "record_level", "Choose how much of the GP record"),
        ((), {"can_appointments": False, "record_level": "none"}, "can_appointments", "Choose at least one thing"),
    ],
)
def test_permissions_never_exceed_what_the_patient_has(
    uow: FakeUnitOfWork, off: tuple[Service, ...], changes: dict[str, Any], field: str, message: str
) -> None:
    surgery = practice(uow, off=off)
    link, _ = requested(uow, patient(uow, surgery))
    with pytest.raises(InputError) as caught:
        proxy.approve_proxy(
            uow, receptionist(uow, surgery), surgery, link.id, approval(ProxyBasis.BEST_INTERESTS, **changes)
        )
    assert caught.value.field == field and caught.value.message.startswith(message)
    assert link.status == ProxyStatus.REQUESTED


def test_the_record_level_is_capped_at_the_patients_own(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    link, _ = requested(uow, patient(uow, surgery, record_level="summary", prescriptions_enabled=False))
    staff = receptionist(uow, surgery)
    review = proxy.review_view(uow, staff, surgery, link.id)
    assert review.allowed_levels == (RecordLevel.NONE, RecordLevel.SUMMARY)
    assert review.offers_appointments and not review.offers_prescriptions
    with pytest.raises(InputError, match="The patient's own access is 'summary record'"):
        proxy.approve_proxy(uow, staff, surgery, link.id, approval(ProxyBasis.BEST_INTERESTS, record_level="detailed"))
    with pytest.raises(InputError) as caught:
        proxy.approve_proxy(uow, staff, surgery, link.id, approval(ProxyBasis.BEST_INTERESTS, can_prescriptions=True))
    assert caught.value.field == "can_prescriptions"
    records_only = approval(ProxyBasis.BEST_INTERESTS, can_appointments=False, record_level="summary")
    done = proxy.approve_proxy(uow, staff, surgery, link.id, records_only)
    assert done.status is ProxyStatus.ACTIVE and (link.can_appointments, link.record_level) == (False, "summary")


# Consent ------------------------------------------------------------------------------------------------------
def _awaiting(uow: FakeUnitOfWork) -> tuple[ProxyLink, User, User]:
    surgery = practice(uow)
    adult = patient(uow, surgery, born=born_aged(30))
    own_account = linked_user(uow, adult)
    link, asker = requested(uow, adult, ProxyBasis.CONSENT, status=ProxyStatus.AWAITING_CONSENT)
    return link, asker, own_account


def test_the_patient_says_yes_and_the_proxy_is_told(uow: FakeUnitOfWork) -> None:
    link, asker, own_account = _awaiting(uow)
    with pytest.raises(NotAllowed, match="You cannot answer for this request"):
        proxy.give_consent(uow, asker, link.id)
    done = proxy.give_consent(uow, own_account, link.id)
    assert done.status is ProxyStatus.ACTIVE and link.patient_consent_at == uow.now()
    assert uow.audit_actions() == ["proxy.consent_given"]
    assert subjects(uow, asker.email) == [f"You can now act for {link.patient.given_name}"]
    with pytest.raises(InputError, match="already been answered") as caught:
        proxy.give_consent(uow, own_account, link.id)
    assert caught.value.field == "decision"


def test_the_patient_says_no_and_the_request_is_kept(uow: FakeUnitOfWork) -> None:
    link, asker, own_account = _awaiting(uow)
    with pytest.raises(InputError, match="500 characters or fewer"):
        proxy.refuse_consent(uow, own_account, link.id, "x" * 501)
    done = proxy.refuse_consent(uow, own_account, link.id)
    assert done.status is ProxyStatus.REJECTED and link.status_reason == "The patient did not agree."
    assert link.ended_by_id == own_account.id and link.ended_at == uow.now()
    assert subjects(uow, asker.email) == ["Your request to act for someone was not agreed"]


# Ending -------------------------------------------------------------------------------------------------------
def test_the_proxy_ends_a_link_with_a_reason_and_both_sides_are_told(uow: FakeUnitOfWork) -> None:
    link, asker, own_account = _awaiting(uow)
    link.status = ProxyStatus.ACTIVE.value
    with pytest.raises(InputError, match="Enter why you are ending this") as caught:
        proxy.end_link(uow, asker, link.id, "  ")
    assert caught.value.field == "reason"
    done = proxy.end_link(uow, asker, link.id, "My sister will do this now")
    assert done.status is ProxyStatus.ENDED and (done.proxy_user_id, done.patient_id) == (asker.id, link.patient_id)
    assert link.ended_by_id == asker.id and link.status_reason == "My sister will do this now"
    assert uow.audit_actions() == ["proxy.ended"] and uow.commits == 1
    assert sorted(m.to for m in uow.sent) == sorted([asker.email, own_account.email])
    assert all("My sister will do this now" in m.body for m in uow.sent)
    with pytest.raises(InputError, match="This has already ended"):
        proxy.end_link(uow, asker, link.id, "again")


def test_the_patient_ends_a_link_but_a_stranger_cannot(uow: FakeUnitOfWork) -> None:
    link, _, own_account = _awaiting(uow)
    stranger = linked_user(uow, patient(uow, link.patient.practice))
    with pytest.raises(NotAllowed, match="You cannot end this"):
        proxy.end_link(uow, stranger, link.id, "not mine")
    assert proxy.end_link(uow, own_account, link.id, "I withdraw").status is ProxyStatus.ENDED
    event = uow.session.query(AuditEvent).one()
    assert event.actor_role == "patient"


# Reception: refuse, suspend, restart, end ---------------------------------------------------------------------
def test_reception_turns_a_request_down_with_a_reason_the_asker_sees(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    link, asker = requested(uow, patient(uow, surgery))
    staff = receptionist(uow, surgery)
    with pytest.raises(InputError, match="Enter the reason the person asking will see"):
        proxy.reject_proxy(uow, staff, surgery, link.id, "")
    done = proxy.reject_proxy(uow, staff, surgery, link.id, "Bring the court order")
    assert done.status is ProxyStatus.REJECTED and link.decided_by_id == staff.id
    assert uow.sent[-1].to == asker.email and "Reason: Bring the court order" in uow.sent[-1].body
    with pytest.raises(InputError, match="already been decided"):
        proxy.reject_proxy(uow, staff, surgery, link.id, "again")


def test_reception_suspends_restarts_and_ends_a_link(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    link, asker = requested(uow, patient(uow, surgery), status=ProxyStatus.ACTIVE)
    staff = receptionist(uow, surgery)
    with pytest.raises(InputError, match="Only suspended access can be restarted"):
        proxy.reinstate_proxy(uow, staff, surgery, link.id)
    assert proxy.suspend_proxy(uow, staff, surgery, link.id, "Change of carer").status is ProxyStatus.SUSPENDED
    with pytest.raises(InputError, match="Only active access can be suspended"):
        proxy.suspend_proxy(uow, staff, surgery, link.id, "again")
    assert proxy.reinstate_proxy(uow, staff, surgery, link.id).status is ProxyStatus.ACTIVE
    assert proxy.end_proxy_by_reception(uow, staff, surgery, link.id, "Moved away").status is ProxyStatus.ENDED
    assert link.ended_by_id == staff.id
    assert uow.audit_actions() == ["proxy.suspended", "proxy.reinstated", "proxy.ended"]
    assert subjects(uow, asker.email) == [
        "Proxy access has been paused",
        "Proxy access has restarted",
        "Proxy access has ended",
    ]


def test_restarting_follows_the_age_rules_and_the_practice_switch(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    child = patient(uow, surgery, born=born_aged(12))
    link, _ = requested(uow, child, ProxyBasis.PARENTAL_RESPONSIBILITY, status=ProxyStatus.SUSPENDED)
    staff = receptionist(uow, surgery)
    with pytest.raises(InputError, match="From 11 record a competence assessment") as caught:
        proxy.reinstate_proxy(uow, staff, surgery, link.id)
    assert caught.value.field == "reinstate"
    with pytest.raises(InputError, match="as well as the child's consent"):
        proxy.record_competence(uow, staff, surgery, link.id, False, True)
    proxy.record_competence(uow, staff, surgery, link.id, True, True)
    switch = surgery.switch(Service.PROXY.value)
    assert switch is not None
    switch.enabled = False
    with pytest.raises(InputError, match="Proxy access is switched off"):
        proxy.reinstate_proxy(uow, staff, surgery, link.id)
    switch.enabled = True
    assert proxy.reinstate_proxy(uow, staff, surgery, link.id).status is ProxyStatus.ACTIVE


def test_competence_applies_to_open_parental_links_only(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    link, _ = requested(uow, patient(uow, surgery), ProxyBasis.BEST_INTERESTS, status=ProxyStatus.ACTIVE)
    with pytest.raises(InputError, match="parental responsibility only"):
        proxy.record_competence(uow, receptionist(uow, surgery), surgery, link.id, True, True)


# The daily age job --------------------------------------------------------------------------------------------
def _parental(uow: FakeUnitOfWork, born: dt.date, **fields: Any) -> tuple[ProxyLink, User]:
    surgery = practice(uow)
    return requested(
        uow, patient(uow, surgery, born=born), ProxyBasis.PARENTAL_RESPONSIBILITY, status=ProxyStatus.ACTIVE, **fields
    )


def test_the_age_job_gives_notice_once_then_suspends_once(uow: FakeUnitOfWork) -> None:
    link, parent = _parental(uow, born_aged(10, 365 - 30))  # 11 in 30 days
    eleventh = birthday(link.patient.date_of_birth, 11)
    first = proxy.apply_age_rules(uow)
    assert (first.checked, first.suspended, first.notices) == (1, 0, 1)
    assert f"notice:review:{eleventh.isoformat()}" in link.notices_sent
    assert subjects(uow, parent.email) == ["Proxy access will change soon"]
    assert proxy.apply_age_rules(uow, TODAY + dt.timedelta(days=10)).notices == 0, "each notice is sent once"
    assert proxy.apply_age_rules(uow, eleventh - dt.timedelta(days=1)).suspended == 0

    on_the_day = proxy.apply_age_rules(uow, eleventh)
    assert on_the_day.suspended == 1 and link.status == ProxyStatus.SUSPENDED
    assert link.status_reason.startswith("At 11 the practice checks") and link.decided_by_id is None
    assert subjects(uow, parent.email) == ["Proxy access will change soon", "Proxy access has been paused"]
    again = proxy.apply_age_rules(uow, eleventh)
    assert (again.checked, again.suspended, again.notices) == (0, 0, 0)
    assert len(uow.sent) == 2
    assert uow.audit_actions() == ["proxy.notice_sent", "proxy.suspended"]
    assert str(on_the_day) == "checked 1, suspended 1, notices sent 0"


def test_the_age_job_tells_the_child_too_when_they_have_an_account(uow: FakeUnitOfWork) -> None:
    link, parent = _parental(uow, born_aged(16))
    child_account = linked_user(uow, link.patient)
    uow.commit()
    report = proxy.apply_age_rules(uow)
    assert report.suspended == 1 and "At 16 a young person manages" in link.status_reason
    assert sorted(m.to for m in uow.sent) == sorted([parent.email, child_account.email])
    assert {m.subject for m in uow.sent} == {"Proxy access has been paused"}


def test_the_childs_say_keeps_access_at_the_review_age_but_not_at_sixteen(uow: FakeUnitOfWork) -> None:
    link, _ = _parental(uow, born_aged(11), competence_assessed=True, child_consent=True)
    assert proxy.apply_age_rules(uow).suspended == 0 and link.status == ProxyStatus.ACTIVE
    sixteenth = birthday(link.patient.date_of_birth, 16)
    assert proxy.apply_age_rules(uow, sixteenth - dt.timedelta(days=30)).notices == 1
    assert proxy.apply_age_rules(uow, sixteenth).suspended == 1 and link.status == ProxyStatus.SUSPENDED


def test_the_age_job_leaves_other_bases_alone(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    link, _ = requested(uow, patient(uow, surgery, born=born_aged(16)), status=ProxyStatus.ACTIVE)
    report = proxy.apply_age_rules(uow)
    assert report.checked == 0 and link.status == ProxyStatus.ACTIVE and uow.sent == []


# Switching ---------------------------------------------------------------------------------------------------
def test_switching_to_someone_is_audited_and_only_with_an_active_link(uow: FakeUnitOfWork) -> None:
    link, parent = _parental(uow, born_aged(6), can_appointments=True, record_level="summary")
    chosen = proxy.switch_acting_for(uow, parent, link.patient_id)
    assert chosen is not None and chosen.is_proxy and chosen.patient.id == link.patient_id
    assert uow.audit_actions() == ["proxy.switched"] and uow.commits == 1
    assert proxy.switch_acting_for(uow, parent, None) is not None and uow.commits == 1, "own record: no event"
    stranger = patient(uow, link.patient.practice)
    with pytest.raises(NotAllowed):
        proxy.switch_acting_for(uow, parent, stranger.id)
    assert [pid for pid, _ in proxy.switch_choices(uow, parent)] == [None, link.patient_id]
