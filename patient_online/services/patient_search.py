"""Reception finds a patient: by NHS number, or by surname and date of birth through the clinical system.

Every patient registered at the practice can be found, whether or not they use online services, when the
practice's clinical system can search (the optional ``PatientSearch`` port); otherwise reception is told to
search by NHS number. Each result says whether the patient uses online services, in plain words.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, or_, select

from patient_online.domain.errors import DomainError, InputError, NotFound
from patient_online.domain.nhs_number import is_valid, normalise
from patient_online.domain.patients import Demographics
from patient_online.domain.ports import PatientSearch
from patient_online.domain.verification import AccountLinkStatus, LinkRequestStatus
from patient_online.models import AccountLink, LinkageLetter, LinkRequest, Patient, Practice, User

from .linking import ensure_patient, require_staff
from .unit_of_work import AbstractUnitOfWork

MAX_RESULTS = 20
CANNOT_SEARCH = (
    "Your practice's clinical system cannot search by name and date of birth from here. "
    "Search by NHS number to find a patient who is not using online services yet."
)
LINK_DOWN = (
    "The clinical system cannot be reached just now, so only patients already using online services are shown. "
    "Try again in a few minutes."
)
ADD_BIRTH_DATE = (
    "Only patients already using online services are shown. Enter a surname and date of birth to search everyone "
    "registered at your practice."
)


class OnlineStatus(enum.StrEnum):
    """Where a patient is with online services, as reception says it."""

    LINKED = "linked"
    SUSPENDED = "suspended"
    REQUEST_WAITING = "request_waiting"
    LETTER_ISSUED = "letter_issued"
    NOT_ONLINE = "not_online"

    @property
    def label(self) -> str:
        return {
            OnlineStatus.LINKED: "Linked",
            OnlineStatus.SUSPENDED: "Online access suspended",
            OnlineStatus.REQUEST_WAITING: "Request waiting",
            OnlineStatus.LETTER_ISSUED: "Letter issued",
            OnlineStatus.NOT_ONLINE: "Not using online services",
        }[self]


@dataclass(frozen=True)
class FoundPatient:
    """One search result: who they are (for the identity check) and whether they use online services."""

    nhs_number: str
    given_name: str
    family_name: str
    date_of_birth: dt.date
    sex: str
    address: str
    postcode: str
    status: OnlineStatus
    patient_id: int | None  # the gateway's row, when it has one

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


@dataclass(frozen=True)
class PatientQuery:
    """What reception typed: an NHS number or a surname, a date of birth, an optional first name and postcode."""

    text: str
    born: dt.date | None = None
    given_name: str = ""
    postcode: str = ""


@dataclass(frozen=True)
class SearchOutcome:
    results: list[FoundPatient]
    asked_clinical_system: bool
    message: str = ""


def online_statuses(uow: AbstractUnitOfWork, practice: Practice, nhs_numbers: Iterable[str]) -> dict[str, OnlineStatus]:
    """Each NHS number's place with online services at the practice (not online when the gateway knows nothing)."""
    numbers = sorted(set(nhs_numbers))
    statuses = dict.fromkeys(numbers, OnlineStatus.NOT_ONLINE)
    if not numbers:
        return statuses
    session, now = uow.session, uow.now()
    for number in session.scalars(
        select(Patient.nhs_number)
        .join(LinkageLetter, LinkageLetter.patient_id == Patient.id)
        .where(
            Patient.practice_id == practice.id,
            Patient.nhs_number.in_(numbers),
            LinkageLetter.used_at.is_(None),
            LinkageLetter.revoked_at.is_(None),
            LinkageLetter.expires_at > now,
        )
    ):
        statuses[number] = OnlineStatus.LETTER_ISSUED
    for number in session.scalars(
        select(LinkRequest.nhs_number).where(
            LinkRequest.practice_id == practice.id,
            LinkRequest.nhs_number.in_(numbers),
            LinkRequest.status == LinkRequestStatus.PENDING,
        )
    ):
        statuses[number] = OnlineStatus.REQUEST_WAITING
    links: dict[str, set[str]] = {}
    for number, status in session.execute(
        select(Patient.nhs_number, AccountLink.status)
        .join(AccountLink, AccountLink.patient_id == Patient.id)
        .where(Patient.practice_id == practice.id, Patient.nhs_number.in_(numbers))
    ):
        links.setdefault(number, set()).add(status)
    for number, kinds in links.items():
        statuses[number] = OnlineStatus.LINKED if AccountLinkStatus.ACTIVE.value in kinds else OnlineStatus.SUSPENDED
    return statuses


def _known(uow: AbstractUnitOfWork, practice: Practice, numbers: Iterable[str]) -> dict[str, Patient]:
    rows = uow.session.scalars(
        select(Patient).where(Patient.practice_id == practice.id, Patient.nhs_number.in_(sorted(set(numbers))))
    )
    return {row.nhs_number: row for row in rows}


def _from_record(person: Demographics, status: OnlineStatus, known: Patient | None) -> FoundPatient:
    return FoundPatient(
        nhs_number=person.ref.nhs_number,
        given_name=person.given_name,
        family_name=person.family_name,
        date_of_birth=person.date_of_birth,
        sex=person.sex,
        address=person.address,
        postcode=person.postcode,
        status=status,
        patient_id=known.id if known else None,
    )


def _from_gateway(row: Patient, status: OnlineStatus) -> FoundPatient:
    return FoundPatient(
        nhs_number=row.nhs_number,
        given_name=row.given_name,
        family_name=row.family_name,
        date_of_birth=row.date_of_birth,
        sex="",
        address="",
        postcode="",
        status=status,
        patient_id=row.id,
    )


def _gateway_search(uow: AbstractUnitOfWork, practice: Practice, query: PatientQuery) -> list[Patient]:
    """Patients the gateway already knows, by part of a name and/or date of birth."""
    text = query.text.strip()
    if not text and query.born is None:
        return []
    stmt = select(Patient).where(Patient.practice_id == practice.id)
    if text:
        like = f"%{text.lower()}%"
        stmt = stmt.where(or_(func.lower(Patient.family_name).like(like), func.lower(Patient.given_name).like(like)))
    if query.given_name.strip():
        stmt = stmt.where(func.lower(Patient.given_name).like(f"{query.given_name.strip().lower()}%"))
    if query.born is not None:
        stmt = stmt.where(Patient.date_of_birth == query.born)
    return list(uow.session.scalars(stmt.order_by(Patient.family_name, Patient.given_name).limit(50)))


def find_patients(uow: AbstractUnitOfWork, staff: User, practice: Practice, query: PatientQuery) -> SearchOutcome:
    """Search the practice's patients; the clinical system is asked outside any transaction; audited (who
    searched and how many were found, never what was typed)."""
    require_staff(staff, practice)
    text = query.text.strip()
    number = normalise(text)
    practice_id = practice.id
    records: list[Demographics] | None = None
    message = ""
    way = "gateway"
    if is_valid(number):
        way = "nhs_number"
        system = uow.clinical(practice)
        uow.release()
        try:
            person = system.find_patient(number)
        except DomainError:
            message = LINK_DOWN
        else:
            records = [person] if person is not None else []
            if person is not None:  # an exact number: the gateway's row is made now, so the page opens at once
                uow.writing()
                ensure_patient(uow, practice, person)
                uow.commit()
    elif text and query.born is not None:
        way = "name_and_birth"
        system = uow.clinical(practice)
        if isinstance(system, PatientSearch):
            uow.release()
            try:
                records = system.search_patients(
                    text, query.born, given_name=query.given_name.strip(), postcode=query.postcode.strip()
                )[:MAX_RESULTS]
            except DomainError:
                message = LINK_DOWN
        else:
            message = CANNOT_SEARCH
    elif text or query.born is not None:
        message = ADD_BIRTH_DATE
    else:
        return SearchOutcome(results=[], asked_clinical_system=False)

    if records is not None:
        numbers = [r.ref.nhs_number for r in records]
        known, statuses = _known(uow, practice, numbers), online_statuses(uow, practice, numbers)
        results = [_from_record(r, statuses[r.ref.nhs_number], known.get(r.ref.nhs_number)) for r in records]
    elif way == "nhs_number":
        rows = list(
            uow.session.scalars(select(Patient).where(Patient.practice_id == practice_id, Patient.nhs_number == number))
        )
        statuses = online_statuses(uow, practice, [r.nhs_number for r in rows])
        results = [_from_gateway(r, statuses[r.nhs_number]) for r in rows]
    else:
        rows = _gateway_search(uow, practice, query)
        statuses = online_statuses(uow, practice, [r.nhs_number for r in rows])
        results = [_from_gateway(r, statuses[r.nhs_number]) for r in rows]
    uow.audit(
        "patient.searched",
        actor_id=staff.id,
        actor_role="receptionist",
        practice_id=practice_id,
        results=len(results),
        by=way,
    )
    uow.commit()
    return SearchOutcome(results=results, asked_clinical_system=records is not None, message=message)


def open_patient(uow: AbstractUnitOfWork, staff: User, practice: Practice, nhs_number: str) -> int:
    """The gateway's row for a registered patient, made from the clinical system's record on first use; returns
    its id (reception opens the patient's page, or issues a letter, for someone not yet online)."""
    require_staff(staff, practice)
    number = normalise(nhs_number)
    if not is_valid(number):
        raise InputError("Enter a valid NHS number", "nhs_number")
    known = uow.session.scalar(
        select(Patient.id).where(Patient.practice_id == practice.id, Patient.nhs_number == number)
    )
    if known is not None:
        uow.commit()
        return known
    system = uow.clinical(practice)
    uow.release()
    person = system.find_patient(number)
    if person is None:
        raise NotFound("We could not find that patient at your practice.")
    uow.writing()
    patient = ensure_patient(uow, practice, person)
    uow.audit(
        "patient.opened",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=patient.id,
        practice_id=practice.id,
    )
    patient_id = patient.id
    uow.commit()
    return patient_id
