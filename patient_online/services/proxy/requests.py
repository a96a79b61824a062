"""The patient's side: asking to act for someone, the /proxy page, switching whose account is shown."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select

from patient_online.domain.errors import InputError, NotAllowed
from patient_online.domain.nhs_number import is_valid, normalise
from patient_online.domain.proxy import RELATIONSHIP_MAX, ProxyBasis, ProxyStatus
from patient_online.models import Patient, ProxyLink, User

from ..access import Acting, Standing, acting_for, active_proxy_links, own_links
from ..linking import ensure_patient, practice_by_ods
from ..unit_of_work import AbstractUnitOfWork
from .common import own_active_links, proxy_offered, sign_off, status_of


@dataclass(frozen=True)
class ProxyRequest:
    """What a patient tells us about the person they want to act for."""

    practice_ods: str
    nhs_number: str
    date_of_birth: dt.date
    relationship: str
    basis: str


def _checked_relationship(text: str) -> str:
    relationship = (text or "").strip()
    if not relationship:
        raise InputError("Enter how you are related to the person, for example: mother", "relationship")
    if len(relationship) > RELATIONSHIP_MAX:
        raise InputError(f"Enter a relationship of {RELATIONSHIP_MAX} characters or fewer", "relationship")
    return relationship


def request_proxy(uow: AbstractUnitOfWork, user: User, wanted: ProxyRequest) -> None:
    """Ask to act for another patient; the answer is the same whether or not the person exists (no enumeration).

    Only a match with the practice's clinical system creates a request for reception, and an existing open
    link for the same person is not duplicated. The asker is told by email that the practice will check.
    """
    relationship = _checked_relationship(wanted.relationship)
    try:
        basis = ProxyBasis(wanted.basis)
    except ValueError:
        raise InputError("Choose why you can act for this person", "basis") from None
    number = normalise(wanted.nhs_number)
    if not is_valid(number):
        raise InputError("Enter a valid 10-digit NHS number", "nhs_number")
    if not own_active_links(uow, user.id):
        raise NotAllowed("Link your account to your GP record before you ask to act for someone else.")
    practice = practice_by_ods(uow, wanted.practice_ods)
    if practice is None:
        raise InputError("Choose the person's GP practice", "practice")
    if not proxy_offered(practice):
        raise InputError(f"{practice.name} does not offer proxy access online. Contact the practice.", "practice")
    system = uow.clinical(practice)
    uow.release()
    person = system.find_patient(number)
    matched = person is not None and person.date_of_birth == wanted.date_of_birth

    uow.writing()
    link: ProxyLink | None = None
    if matched and person is not None:
        patient = ensure_patient(uow, practice, person)
        if any(own.patient_id == patient.id for own in own_active_links(uow, user.id)):
            uow.rollback()
            raise InputError(
                "That is your own record. Enter the details of the person you want to act for", "nhs_number"
            )
        existing = uow.session.scalar(
            select(ProxyLink).where(
                ProxyLink.proxy_user_id == user.id,
                ProxyLink.patient_id == patient.id,
                ProxyLink.status.in_([s.value for s in ProxyStatus if s.open]),
            )
        )
        if existing is None:
            link = ProxyLink(
                proxy_user_id=user.id,
                patient_id=patient.id,
                relationship_text=relationship,
                basis=basis.value,
                status=ProxyStatus.REQUESTED.value,
                notices_sent=[],
            )
            uow.session.add(link)
            uow.flush()
    uow.audit(
        "proxy.requested",
        actor_id=user.id,
        actor_role="patient",
        subject_user_id=user.id,
        practice_id=practice.id,
        matched=matched,
        link_id=link.id if link else None,
        basis=basis.value,
    )
    uow.send_email(
        user.email,
        "proxy_requested",
        "We have your request to act for someone",
        f"You asked to act for someone registered at {practice.name}. If the details match a patient there, "
        "the practice will check your request and we will email you when they have decided.\n\n" + sign_off(practice),
    )
    uow.commit()


# The patient's /proxy page -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProxyOverview:
    """Everything the signed-in person's /proxy page shows about acting for others and others acting for them."""

    own: Patient | None
    acting_for: list[ProxyLink]  # active links: people I can switch to
    my_requests: list[ProxyLink]  # decided requests I made that are not active; undecided ones are not shown,
    # so the page never says whether the details matched someone (the email says the same either way)
    consent_requests: list[ProxyLink]  # people asking to act for me, waiting for my answer
    acting_for_me: list[ProxyLink]  # active and suspended links on my own record
    history_for_me: list[ProxyLink] = field(default_factory=list)  # ended, rejected links on my record


def proxy_overview(uow: AbstractUnitOfWork, user: User) -> ProxyOverview:
    """The /proxy page: whom I act for, what I asked for, and who acts (or asks to act) for me."""
    linked = own_active_links(uow, user.id)
    own = linked[0].patient if linked else None
    mine = list(uow.session.scalars(select(ProxyLink).where(ProxyLink.proxy_user_id == user.id).order_by(ProxyLink.id)))
    for_me: list[ProxyLink] = []
    if linked:
        for_me = list(
            uow.session.scalars(
                select(ProxyLink)
                .where(ProxyLink.patient_id.in_([link.patient_id for link in linked]))
                .order_by(ProxyLink.id.desc())
            )
        )
    return ProxyOverview(
        own=own,
        acting_for=[link for link in mine if status_of(link) is ProxyStatus.ACTIVE],
        my_requests=[
            link for link in reversed(mine) if status_of(link) not in (ProxyStatus.ACTIVE, ProxyStatus.REQUESTED)
        ],
        consent_requests=[link for link in for_me if status_of(link) is ProxyStatus.AWAITING_CONSENT],
        acting_for_me=[link for link in for_me if status_of(link) in (ProxyStatus.ACTIVE, ProxyStatus.SUSPENDED)],
        history_for_me=[link for link in for_me if status_of(link) in (ProxyStatus.ENDED, ProxyStatus.REJECTED)],
    )


def switch_acting_for(uow: AbstractUnitOfWork, user: User, patient_id: int | None) -> Acting | None:
    """Check that the user may act for ``patient_id`` (None: their own record); the view stores the choice.

    Raises NotAllowed for anyone the user has no active proxy link to (nothing changes).
    """
    chosen = acting_for(uow.session, user, patient_id)
    if chosen is not None and chosen.is_proxy:
        uow.audit(
            "proxy.switched",
            actor_id=user.id,
            actor_role="proxy",
            patient_id=chosen.patient.id,
            practice_id=chosen.practice.id,
        )
        uow.commit()
    return chosen


def switch_choices(uow: AbstractUnitOfWork, user: User) -> list[tuple[int | None, str]]:
    """Whose account the user can show: their own record first, then each person they act for."""
    return Standing(None, own_links(uow.session, user), active_proxy_links(uow.session, user)).switch_choices


def link_for(uow: AbstractUnitOfWork, user: User, link_id: int, as_patient: bool = False) -> ProxyLink:
    """A link the person is part of, as the proxy or (``as_patient``: only) as the patient; NotAllowed otherwise."""
    link = uow.session.get(ProxyLink, link_id)
    own = {a.patient_id for a in own_active_links(uow, user.id)}
    party = link is not None and (link.patient_id in own or (not as_patient and link.proxy_user_id == user.id))
    if link is None or not party:
        raise NotAllowed("You cannot see this.")
    return link
