"""The patient's side: the proxy or the patient ends a link (or withdraws a request) at any time."""

from __future__ import annotations

from patient_online.domain.errors import InputError, NotAllowed
from patient_online.domain.proxy import ProxyStatus
from patient_online.models import User

from ..unit_of_work import AbstractUnitOfWork
from .common import LinkChange, clean_reason, close, link_for_update, own_active_links, status_of, tell_both


def end_link(uow: AbstractUnitOfWork, user: User, link_id: int, reason: str) -> LinkChange:
    """The proxy or the patient ends a link (or withdraws a request) at any time, with a reason; it is kept."""
    text = clean_reason(reason, "why you are ending this")
    uow.writing()
    link = link_for_update(uow, link_id)
    own = {a.patient_id for a in own_active_links(uow, user.id)}
    if link is None or (link.proxy_user_id != user.id and link.patient_id not in own):
        raise NotAllowed("You cannot end this.")
    if not status_of(link).open:
        raise InputError("This has already ended", "reason")
    by_proxy = link.proxy_user_id == user.id
    close(uow, link, user, ProxyStatus.ENDED, text)
    uow.audit(
        "proxy.ended",
        actor_id=user.id,
        actor_role="proxy" if by_proxy else "patient",
        patient_id=link.patient_id,
        practice_id=link.patient.practice_id,
        link_id=link.id,
        reason=text,
    )
    who = link.proxy.display_name if by_proxy else link.patient.full_name
    tell_both(
        uow,
        link,
        "proxy_ended",
        "Proxy access has ended",
        f"{who} ended {link.proxy.display_name}'s access to act for {link.patient.full_name} online.\nReason: {text}",
    )
    uow.commit()
    return LinkChange.of(link)
