"""Reception's side: pausing an active link, restarting it when the rules allow, and ending it for good."""

from __future__ import annotations

from patient_online.domain.errors import InputError
from patient_online.domain.proxy import ProxyStatus, age_on, approval_problem
from patient_online.models import Practice, User

from ..unit_of_work import AbstractUnitOfWork
from .common import LinkChange, basis_of, clean_reason, close, proxy_offered, status_of, tell_both
from .review import practice_link


def suspend_proxy(uow: AbstractUnitOfWork, staff: User, practice: Practice, link_id: int, reason: str) -> LinkChange:
    """Reception pauses an active link (for example, a change of responsibility); it is kept for audit."""
    text = clean_reason(reason)
    uow.writing()
    link = practice_link(uow, staff, practice, link_id, lock=True)
    if status_of(link) is not ProxyStatus.ACTIVE:
        raise InputError("Only active access can be suspended", "reason")
    link.status = ProxyStatus.SUSPENDED.value
    link.status_reason = text
    link.decided_at = uow.now()
    link.decided_by_id = staff.id
    uow.audit(
        "proxy.suspended",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=link.patient_id,
        subject_user_id=link.proxy_user_id,
        practice_id=practice.id,
        link_id=link.id,
        reason=text,
    )
    tell_both(
        uow,
        link,
        "proxy_suspended",
        "Proxy access has been paused",
        f"{practice.name} has paused {link.proxy.display_name}'s access to act for {link.patient.full_name} "
        f"online.\nReason: {text}",
    )
    uow.commit()
    return LinkChange.of(link)


def reinstate_proxy(uow: AbstractUnitOfWork, staff: User, practice: Practice, link_id: int) -> LinkChange:
    """Reception restarts a suspended link, when the age rules and the practice's switch allow it."""
    uow.writing()
    link = practice_link(uow, staff, practice, link_id, lock=True)
    if status_of(link) is not ProxyStatus.SUSPENDED:
        raise InputError("Only suspended access can be restarted", "reinstate")
    if not proxy_offered(practice):
        raise InputError(
            "Proxy access is switched off for your practice. A practice manager can switch it on", "reinstate"
        )
    age = age_on(link.patient.date_of_birth, uow.today())
    problem = approval_problem(
        basis_of(link), age, practice.proxy_review_age, link.competence_assessed and link.child_consent
    )
    if problem:
        raise InputError(problem, "reinstate")
    link.status = ProxyStatus.ACTIVE.value
    link.status_reason = ""
    link.decided_at = uow.now()
    link.decided_by_id = staff.id
    uow.audit(
        "proxy.reinstated",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=link.patient_id,
        subject_user_id=link.proxy_user_id,
        practice_id=practice.id,
        link_id=link.id,
    )
    tell_both(
        uow,
        link,
        "proxy_reinstated",
        "Proxy access has restarted",
        f"{practice.name} has restarted {link.proxy.display_name}'s access to act for {link.patient.full_name} online.",
    )
    uow.commit()
    return LinkChange.of(link)


def end_proxy_by_reception(
    uow: AbstractUnitOfWork, staff: User, practice: Practice, link_id: int, reason: str
) -> LinkChange:
    """Reception ends a link (or withdraws a request) for good, with a reason; it is kept for audit."""
    text = clean_reason(reason)
    uow.writing()
    link = practice_link(uow, staff, practice, link_id, lock=True)
    if not status_of(link).open:
        raise InputError("This has already ended", "reason")
    close(uow, link, staff, ProxyStatus.ENDED, text)
    uow.audit(
        "proxy.ended",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=link.patient_id,
        subject_user_id=link.proxy_user_id,
        practice_id=practice.id,
        link_id=link.id,
        reason=text,
    )
    tell_both(
        uow,
        link,
        "proxy_ended",
        "Proxy access has ended",
        f"{practice.name} ended {link.proxy.display_name}'s access to act for {link.patient.full_name} online.\n"
        f"Reason: {text}",
    )
    uow.commit()
    return LinkChange.of(link)
