"""Closing an online account, by its owner or by reception.

Closing signs the account out everywhere and stops it signing in, ends its links to GP records (removed: the
audit trail keeps which they were) and the access it had to act for other people (each of them is told), and
tells the people who act for the patient that the patient closed their own account: their access rests on its
own basis and stays until the practice or the patient ends it. Nothing in the GP record changes. What is kept,
and for how long, follows the retention policy (``RETENTION`` in the settings): the audit trail is kept; the
account's personal details are anonymised once the closed account has been kept for ``closed_account_months``
(``services/retention.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from patient_online.domain.errors import InputError, NotFound
from patient_online.domain.proxy import ProxyStatus
from patient_online.models import AccountClosure, AccountLink, Patient, Practice, ProxyLink, User

from .unit_of_work import AbstractUnitOfWork

REASON_MAX = 500
ENDING = (ProxyStatus.REQUESTED.value, ProxyStatus.AWAITING_CONSENT.value, ProxyStatus.ACTIVE.value, "suspended")


@dataclass(frozen=True)
class ClosedAccount:
    user_id: int
    email: str
    links_ended: int
    proxy_access_ended: int
    proxies_told: int


@dataclass(frozen=True)
class ClosingAccount:
    """What reception sees before closing an account: whose it is and what will happen."""

    user_id: int
    patient_id: int
    name: str
    email: str
    acts_for: tuple[str, ...]
    acted_for_by: tuple[str, ...]


def close_own_account(uow: AbstractUnitOfWork, user: User) -> ClosedAccount:
    """The patient closes their own online account (confirmed on the page before)."""
    uow.writing()
    return _close(uow, user, by=user, role="patient", reason="Closed by the account holder")


def closing_at_desk(
    uow: AbstractUnitOfWork, staff: User, practice: Practice, patient_id: int, user_id: int
) -> ClosingAccount:
    """The confirmation reception sees: only an account linked to a patient of this practice."""
    user, patient = _at_desk(uow, practice, patient_id, user_id)
    acts_for = [
        link.patient.full_name
        for link in uow.session.scalars(
            select(ProxyLink).where(ProxyLink.proxy_user_id == user.id, ProxyLink.status.in_(ENDING))
        )
    ]
    acted_for_by = [
        link.proxy.display_name
        for link in uow.session.scalars(
            select(ProxyLink).where(ProxyLink.patient_id == patient.id, ProxyLink.status == ProxyStatus.ACTIVE.value)
        )
    ]
    uow.rollback()
    return ClosingAccount(user.id, patient.id, patient.full_name, user.email, tuple(acts_for), tuple(acted_for_by))


def close_at_desk(
    uow: AbstractUnitOfWork, staff: User, practice: Practice, patient_id: int, user_id: int, reason: str
) -> ClosedAccount:
    """Reception closes a patient's online account, with a reason (audited)."""
    text = (reason or "").strip()
    if not text:
        raise InputError("Enter why the account is being closed", "reason")
    if len(text) > REASON_MAX:
        raise InputError(f"Enter a reason of {REASON_MAX} characters or fewer", "reason")
    uow.writing()
    user, _patient = _at_desk(uow, practice, patient_id, user_id)
    return _close(uow, user, by=staff, role="receptionist", reason=text, practice=practice)


def _at_desk(uow: AbstractUnitOfWork, practice: Practice, patient_id: int, user_id: int) -> tuple[User, Patient]:
    patient = uow.session.get(Patient, patient_id)
    link = uow.session.scalar(
        select(AccountLink).where(AccountLink.patient_id == patient_id, AccountLink.user_id == user_id)
    )
    user = uow.session.get(User, user_id)
    if patient is None or patient.practice_id != practice.id or link is None or user is None or user.is_staff:
        raise NotFound()
    return user, patient


def _close(
    uow: AbstractUnitOfWork, user: User, *, by: User, role: str, reason: str, practice: Practice | None = None
) -> ClosedAccount:
    if uow.session.scalar(select(AccountClosure).where(AccountClosure.user_id == user.id)) is not None:
        raise InputError("This account is already closed", "reason")
    now = uow.now()
    user.active = False
    user.session_epoch += 1  # every session of the account ends at its next request
    links = list(uow.session.scalars(select(AccountLink).where(AccountLink.user_id == user.id)))
    patient_ids = [link.patient_id for link in links]
    for link in links:  # the link itself goes; the audit event below records which records it reached
        uow.session.delete(link)
    acting = list(
        uow.session.scalars(select(ProxyLink).where(ProxyLink.proxy_user_id == user.id, ProxyLink.status.in_(ENDING)))
    )
    for proxy_link in acting:
        proxy_link.status = ProxyStatus.ENDED.value
        proxy_link.status_reason = "The online account of the person acting was closed"
        proxy_link.ended_at = now
        proxy_link.ended_by_id = by.id
    told = 0
    acted_for_by = (
        list(
            uow.session.scalars(
                select(ProxyLink).where(
                    ProxyLink.patient_id.in_(patient_ids), ProxyLink.status == ProxyStatus.ACTIVE.value
                )
            )
        )
        if patient_ids
        else []
    )
    for proxy_link in acted_for_by:
        uow.send_email(
            proxy_link.proxy.email,
            "account_closed_proxy",
            "Someone you act for closed their online account",
            f"{proxy_link.patient.full_name} has closed their own online account for GP services. You can still "
            "act for them as before, until they or their GP practice end your access.",
        )
        told += 1
    for proxy_link in acting:
        for owner in uow.session.scalars(
            select(User)
            .join(AccountLink, AccountLink.user_id == User.id)
            .where(AccountLink.patient_id == proxy_link.patient_id, AccountLink.status == "active", User.active)
        ):
            uow.send_email(
                owner.email,
                "account_closed_acted_for",
                "Someone who acted for you online no longer can",
                f"{user.display_name} closed their online account, so they can no longer act for you online.",
            )
    uow.send_email(
        user.email,
        "account_closed",
        "Your online account is closed",
        "Your online account for GP services is closed and you have been signed out everywhere. Your GP record "
        "is not changed. If you did not ask for this, contact your GP practice.",
    )
    uow.session.add(
        AccountClosure(user_id=user.id, closed_at=now, closed_by_id=by.id, closed_by_role=role, reason=reason)
    )
    uow.audit(
        "account.closed",
        actor_id=by.id,
        actor_role=role,
        subject_user_id=user.id,
        patient_id=patient_ids[0] if len(patient_ids) == 1 else None,
        practice_id=practice.id if practice else None,
        links_ended=patient_ids,
        proxy_access_ended=[link.id for link in acting],
        proxies_told=told,
        reason=reason,
    )
    uow.commit()
    return ClosedAccount(user.id, user.email, len(links), len(acting), told)
