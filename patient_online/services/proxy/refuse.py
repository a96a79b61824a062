"""Reception's side: turning a request down, with a reason the person who asked sees."""

from __future__ import annotations

from patient_online.domain.errors import InputError
from patient_online.domain.proxy import ProxyStatus
from patient_online.models import Practice, User

from ..unit_of_work import AbstractUnitOfWork
from .common import LinkChange, clean_reason, close, sign_off, status_of, tell
from .review import practice_link


def reject_proxy(uow: AbstractUnitOfWork, staff: User, practice: Practice, link_id: int, reason: str) -> LinkChange:
    """Reception turns a request down, with a reason the asker sees."""
    text = clean_reason(reason, "the reason the person asking will see")
    uow.writing()
    link = practice_link(uow, staff, practice, link_id, lock=True)
    if status_of(link) is not ProxyStatus.REQUESTED:
        raise InputError("This request has already been decided", "reason")
    close(uow, link, staff, ProxyStatus.REJECTED, text)
    link.decided_at = link.ended_at
    link.decided_by_id = staff.id
    uow.audit(
        "proxy.rejected",
        actor_id=staff.id,
        actor_role="receptionist",
        subject_user_id=link.proxy_user_id,
        practice_id=practice.id,
        link_id=link.id,
        reason=text,
    )
    tell(
        uow,
        [link.proxy],
        "proxy_rejected",
        "Your request to act for someone was turned down",
        f"{practice.name} turned down your request to act for someone online.\nReason: {text}\n\n" + sign_off(practice),
    )
    uow.commit()
    return LinkChange.of(link)
