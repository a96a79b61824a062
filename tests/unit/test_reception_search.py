"""Reception finds a patient by NHS number, or by surname and date of birth through the clinical system, with
each result's place with online services; a system that cannot search says so; the search is audited."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from patient_online.domain.errors import NotAllowed, NotFound
from patient_online.domain.patients import Demographics, PatientRef
from patient_online.models import AuditEvent, LinkRequest, Patient, Practice, StaffMembership, User
from patient_online.services import patient_search
from patient_online.services.patient_search import OnlineStatus, PatientQuery
from tests.fakes import FakeClinicalSystems, FakeUnitOfWork
from tests.unit.conftest import linked_user, patient, practice, user

BORN = dt.date(1961, 7, 4)


@pytest.fixture
def uow() -> Iterator[FakeUnitOfWork]:
    unit = FakeUnitOfWork(settings={"SECRET_KEY": "unit-test-secret"})
    yield unit
    unit.close()


def desk(uow: FakeUnitOfWork) -> tuple[Practice, User]:
    where = practice(uow)
    staff = user(uow, kind="staff")
    uow.session.add(StaffMembership(user_id=staff.id, practice_id=where.id, role="receptionist"))
    uow.session.flush()
    uow.session.refresh(staff)
    return where, staff


def registered(
    uow: FakeUnitOfWork, where: Practice, nhs: str, given: str, family: str, born: dt.date = BORN
) -> Demographics:
    person = Demographics(
        ref=PatientRef(where.ods_code, nhs, f"C-{nhs}"),
        given_name=given,
        family_name=family,
        date_of_birth=born,
        postcode="LS1 4AP",
        address="12 Mill Lane, Leeds",
        sex="female",
    )
    uow.system.patients[nhs] = person
    return person


def thompson(uow: FakeUnitOfWork, where: Practice, given: str = "Alex") -> Patient:
    row = patient(uow, where, born=BORN)
    row.family_name, row.given_name = "Thompson", given
    uow.session.flush()
    return row


def settled(uow: FakeUnitOfWork) -> None:
    uow.commit()
    uow.commits = 0


def test_surname_and_birth_date_find_a_patient_the_gateway_has_never_met(uow: FakeUnitOfWork) -> None:
    where, staff = desk(uow)
    registered(uow, where, "9434765919", "Grace", "Thompson")
    registered(uow, where, "9434765870", "Grace", "Thompson", born=dt.date(1990, 1, 1))
    registered(uow, where, "9434765862", "Zoë", "Brontë")
    settled(uow)
    outcome = patient_search.find_patients(uow, staff, where, PatientQuery("thompson", BORN))
    (found,) = outcome.results
    assert (found.full_name, found.sex, found.address) == ("Grace Thompson", "female", "12 Mill Lane, Leeds")
    assert found.status is OnlineStatus.NOT_ONLINE and found.patient_id is None and outcome.asked_clinical_system
    assert uow.session.scalars(select(Patient)).all() == []  # nothing stored until reception opens the patient
    # Accents and case are ignored.
    (bronte,) = patient_search.find_patients(uow, staff, where, PatientQuery("BRONTE", BORN, given_name="zoe")).results
    assert bronte.nhs_number == "9434765862"
    events = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "patient.searched")).all()
    assert [e.detail for e in events] == [{"results": 1, "by": "name_and_birth"}] * 2  # never what was typed
    assert all(e.actor_user_id == staff.id for e in events)


def test_results_say_whether_the_patient_uses_online_services(uow: FakeUnitOfWork) -> None:
    where, staff = desk(uow)
    registered(uow, where, "9434765919", "Grace", "Thompson")
    registered(uow, where, "9434765870", "Amy", "Thompson")
    linked = thompson(uow, where, "Amy")
    linked.nhs_number = "9434765870"
    linked_user(uow, linked)
    asker = user(uow)
    uow.session.add(
        LinkRequest(
            user_id=asker.id,
            practice_id=where.id,
            nhs_number="9434765919",
            given_name="Grace",
            family_name="Thompson",
            date_of_birth=BORN,
            postcode="LS1 4AP",
        )
    )
    settled(uow)
    results = patient_search.find_patients(uow, staff, where, PatientQuery("Thompson", BORN)).results
    assert [(r.given_name, r.status, r.patient_id) for r in results] == [
        ("Amy", OnlineStatus.LINKED, linked.id),
        ("Grace", OnlineStatus.REQUEST_WAITING, None),
    ]


def test_the_clinical_system_is_asked_with_no_transaction_open(uow: FakeUnitOfWork) -> None:
    where, staff = desk(uow)
    registered(uow, where, "9434765919", "Grace", "Thompson")
    uow.session.execute(select(Patient.id))  # a transaction is open when the search starts
    calls: list[bool] = []
    inner = uow.system.search_patients

    def watched(*args: object, **kwargs: object) -> list[Demographics]:
        calls.append(uow.in_transaction)
        return inner(*args, **kwargs)  # type: ignore[arg-type]

    uow.system.search_patients = watched  # type: ignore[method-assign]
    patient_search.find_patients(uow, staff, where, PatientQuery("Thompson", BORN))
    assert calls == [False]


def test_a_system_that_cannot_search_says_search_by_nhs_number(uow: FakeUnitOfWork) -> None:
    where, staff = desk(uow)

    class NoSearch:
        name = "plain"

        def find_patient(self, nhs_number: str) -> Demographics | None:
            return None

    systems = uow.clinical_systems
    assert isinstance(systems, FakeClinicalSystems)
    systems.by_practice[where.ods_code] = NoSearch()
    outcome = patient_search.find_patients(uow, staff, where, PatientQuery("Thompson", BORN))
    assert outcome.results == [] and "Search by NHS number" in outcome.message
    assert not outcome.asked_clinical_system


def test_a_link_that_is_down_still_shows_patients_already_online(uow: FakeUnitOfWork) -> None:
    where, staff = desk(uow)
    known = thompson(uow, where)
    settled(uow)
    uow.system.down = True
    outcome = patient_search.find_patients(uow, staff, where, PatientQuery("Thompson", BORN))
    assert [r.patient_id for r in outcome.results] == [known.id] and "cannot be reached" in outcome.message


def test_an_nhs_number_is_looked_up_and_opened_at_once(uow: FakeUnitOfWork) -> None:
    where, staff = desk(uow)
    registered(uow, where, "9434765919", "Grace", "Thompson")
    settled(uow)
    (found,) = patient_search.find_patients(uow, staff, where, PatientQuery("943 476 5919")).results
    stored = uow.session.get_one(Patient, found.patient_id)
    assert stored.nhs_number == "9434765919" and found.address == "12 Mill Lane, Leeds"


def test_a_name_alone_searches_only_patients_already_online(uow: FakeUnitOfWork) -> None:
    where, staff = desk(uow)
    known = thompson(uow, where)
    settled(uow)
    outcome = patient_search.find_patients(uow, staff, where, PatientQuery("thomp"))
    assert [r.patient_id for r in outcome.results] == [known.id] and "date of birth" in outcome.message
    assert uow.system.calls == []
    assert patient_search.find_patients(uow, staff, where, PatientQuery("")).results == []


def test_opening_a_registered_patient_makes_the_gateway_row_once(uow: FakeUnitOfWork) -> None:
    where, staff = desk(uow)
    registered(uow, where, "9434765919", "Grace", "Thompson")
    settled(uow)
    first = patient_search.open_patient(uow, staff, where, "9434765919")
    assert patient_search.open_patient(uow, staff, where, "943 476 5919") == first
    assert uow.session.get_one(Patient, first).family_name == "Thompson"
    assert uow.audit_actions() == ["patient.opened"]
    with pytest.raises(NotFound):
        patient_search.open_patient(uow, staff, where, "9434765870")


def test_only_the_practices_reception_may_search(uow: FakeUnitOfWork) -> None:
    where, _staff = desk(uow)
    other = user(uow, kind="staff")
    settled(uow)
    with pytest.raises(NotAllowed):
        patient_search.find_patients(uow, other, where, PatientQuery("Thompson", BORN))
    with pytest.raises(NotAllowed):
        patient_search.open_patient(uow, other, where, "9434765919")
    assert uow.system.calls == []
