"""The patient's side: saying yes or no, inside the gateway, to someone who asks to act for them."""

from __future__ import annotations

from patient_online.domain.errors import InputError, NotAllowed
from patient_online.domain.proxy import REASON_MAX, ProxyStatus
from patient_online.models import ProxyLink, User

from ..unit_of_work import AbstractUnitOfWork
from .common import LinkChange, link_for_update, own_active_links, sign_off, status_of, tell


def _consent_link(uow: AbstractUnitOfWork, user: User, link_id: int) -> ProxyLink:
    link = link_for_update(uow, link_id)
    own = {a.patient_id for a in own_active_links(uow, user.id)}
    if link is None or link.patient_id not in own:
        raise NotAllowed("You cannot answer for this request.")
    if status_of(link) is not ProxyStatus.AWAITING_CONSENT:
        raise InputError("This request has already been answered", "decision")
    return link


def give_consent(uow: AbstractUnitOfWork, user: User, link_id: int) -> LinkChange:
    """The patient agrees: the link becomes active with the permissions reception set."""
    uow.writing()
    link = _consent_link(uow, user, link_id)
    link.status = ProxyStatus.ACTIVE.value
    link.patient_consent_at = uow.now()
    uow.audit(
        "proxy.consent_given",
        actor_id=user.id,
        actor_role="patient",
        patient_id=link.patient_id,
        practice_id=link.patient.practice_id,
        link_id=link.id,
    )
    tell(
        uow,
        [link.proxy],
        "proxy_active",
        f"You can now act for {link.patient.given_name}",
        f"{link.patient.full_name} agreed that you can act for them online. Sign in and choose "
        f"{link.patient.given_name} under 'Acting for'.\n\n" + sign_off(link.patient.practice),
    )
    uow.commit()
    return LinkChange.of(link)


def refuse_consent(uow: AbstractUnitOfWork, user: User, link_id: int, reason: str = "") -> LinkChange:
    """The patient says no: the request is turned down, and kept for the record."""
    uow.writing()
    link = _consent_link(uow, user, link_id)
    text = (reason or "").strip()
    if len(text) > REASON_MAX:
        raise InputError(f"Enter a reason of {REASON_MAX} characters or fewer", "reason")
    link.status = ProxyStatus.REJECTED.value
    link.status_reason = text or "The patient did not agree."
    link.ended_at = uow.now()
    link.ended_by_id = user.id
    uow.audit(
        "proxy.consent_refused",
        actor_id=user.id,
        actor_role="patient",
        patient_id=link.patient_id,
        practice_id=link.patient.practice_id,
        link_id=link.id,
    )
    tell(
        uow,
        [link.proxy],
        "proxy_refused",
        "Your request to act for someone was not agreed",
        f"{link.patient.full_name} did not agree to you acting for them online.\n\n" + sign_off(link.patient.practice),
    )
    uow.commit()
    return LinkChange.of(link)
