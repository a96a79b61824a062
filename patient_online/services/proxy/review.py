"""Reception's side: the practice's queue of proxy links and one link as reception reviews it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from patient_online.domain.access import ADULT_AGE, EffectiveAccess, Service
from patient_online.domain.errors import NotAllowed, NotFound
from patient_online.domain.proxy import LinkFacts, Milestone, ProxyStatus, age_on, approval_problem, proxy_review_due
from patient_online.domain.record import RecordLevel
from patient_online.models import AccountLink, Patient, Practice, ProxyLink, User, Verification

from ..access import patient_access
from ..unit_of_work import AbstractUnitOfWork
from .common import allowed_levels, basis_of, link_for_update, patient_accounts, proxy_offered, status_of


def require_reception(staff: User, practice: Practice) -> None:
    """Only the practice's own reception staff see and decide its proxy links."""
    if not any(m.practice_id == practice.id and m.role == "receptionist" for m in staff.memberships):
        raise NotAllowed("Only reception staff of this practice can review proxy access.")


def practice_link(
    uow: AbstractUnitOfWork, staff: User, practice: Practice, link_id: int, lock: bool = False
) -> ProxyLink:
    """A link on a patient of reception's own practice (locked for a change when ``lock``); NotFound otherwise."""
    require_reception(staff, practice)
    link = link_for_update(uow, link_id) if lock else uow.session.get(ProxyLink, link_id)
    if link is None or link.patient.practice_id != practice.id:
        raise NotFound("We could not find that proxy request at your practice.")
    return link


@dataclass(frozen=True)
class QueueLine:
    link: ProxyLink
    age: int
    due: str = ""  # a plain note when the age rules will act soon


def practice_links(
    uow: AbstractUnitOfWork, staff: User, practice: Practice, statuses: tuple[ProxyStatus, ...]
) -> list[QueueLine]:
    """The practice's proxy links in the given states, oldest first, with each patient's age today."""
    require_reception(staff, practice)
    today = uow.today()
    links = uow.session.scalars(
        select(ProxyLink)
        .join(Patient, Patient.id == ProxyLink.patient_id)
        .where(Patient.practice_id == practice.id, ProxyLink.status.in_([s.value for s in statuses]))
        .order_by(ProxyLink.created_at, ProxyLink.id)
    ).all()
    return [
        QueueLine(link, age_on(link.patient.date_of_birth, today), _due_note(link, practice, today)) for link in links
    ]


def _due_note(link: ProxyLink, practice: Practice, today: dt.date) -> str:
    if not basis_of(link).parental or status_of(link) is not ProxyStatus.ACTIVE:
        return ""
    facts = LinkFacts(basis_of(link), status_of(link), link.competence_assessed, link.child_consent)
    decision = proxy_review_due(facts, link.patient.date_of_birth, today, practice.proxy_review_age, 3650)
    if decision.suspend is not None:
        return "Due for suspension at the next check"
    if decision.notices:
        first = decision.notices[0]
        what = "review" if first.milestone is Milestone.REVIEW else "suspension at 16"
        return f"Due for {what} on {first.on.day} {first.on:%B %Y}"
    return ""


@dataclass(frozen=True)
class ReviewView:
    """One proxy link as reception reviews it."""

    link: ProxyLink
    age: int
    is_child: bool
    review_age: int
    proxy_patient: Patient | None  # the proxy's own linked record
    proxy_verification: Verification | None
    patient_access: EffectiveAccess
    proxy_offered: bool
    allowed_levels: tuple[RecordLevel, ...]
    patient_has_account: bool
    age_problem: str

    @property
    def offers_appointments(self) -> bool:
        return self.patient_access.allows(Service.APPOINTMENTS)

    @property
    def offers_prescriptions(self) -> bool:
        return self.patient_access.allows(Service.PRESCRIPTIONS)


def review_view(uow: AbstractUnitOfWork, staff: User, practice: Practice, link_id: int) -> ReviewView:
    """The link, who the proxy is and how they were verified, the patient's own access, and the age rules."""
    link = practice_link(uow, staff, practice, link_id)
    age = age_on(link.patient.date_of_birth, uow.today())
    own_link = uow.session.scalar(
        select(AccountLink)
        .where(AccountLink.user_id == link.proxy_user_id, AccountLink.status == "active")
        .order_by(AccountLink.id)
    )
    verification = (
        uow.session.scalar(
            select(Verification)
            .where(Verification.patient_id == own_link.patient_id)
            .order_by(Verification.verified_at.desc())
        )
        if own_link
        else None
    )
    access = patient_access(uow.session, link.patient, uow.today())
    return ReviewView(
        link=link,
        age=age,
        is_child=age < ADULT_AGE,
        review_age=practice.proxy_review_age,
        proxy_patient=own_link.patient if own_link else None,
        proxy_verification=verification,
        patient_access=access,
        proxy_offered=proxy_offered(practice),
        allowed_levels=allowed_levels(access),
        patient_has_account=bool(patient_accounts(uow, link.patient_id)),
        age_problem=approval_problem(
            basis_of(link), age, practice.proxy_review_age, link.competence_assessed and link.child_consent
        ),
    )
