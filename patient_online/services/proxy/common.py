"""What every side of proxy access shares: finding and locking links, the people to tell, and how a change reads."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from patient_online.domain.access import EffectiveAccess, Service
from patient_online.domain.errors import InputError
from patient_online.domain.proxy import REASON_MAX, LinkFacts, ProxyBasis, ProxyStatus
from patient_online.domain.record import RecordLevel
from patient_online.models import AccountLink, Practice, ProxyLink, User

from ..unit_of_work import AbstractUnitOfWork

LEVELS = (RecordLevel.NONE, RecordLevel.SUMMARY, RecordLevel.DETAILED, RecordLevel.FULL, RecordLevel.HISTORIC)


@dataclass(frozen=True)
class LinkChange:
    """A proxy link as a change left it: enough for the page that made the change to say what happened."""

    id: int
    status: ProxyStatus
    proxy_user_id: int
    patient_id: int
    proxy_name: str
    patient_name: str

    @classmethod
    def of(cls, link: ProxyLink) -> LinkChange:
        return cls(
            id=link.id,
            status=status_of(link),
            proxy_user_id=link.proxy_user_id,
            patient_id=link.patient_id,
            proxy_name=link.proxy.display_name,
            patient_name=link.patient.full_name,
        )


def status_of(link: ProxyLink) -> ProxyStatus:
    return ProxyStatus(link.status)


def basis_of(link: ProxyLink) -> ProxyBasis:
    return ProxyBasis(link.basis)


def facts(link: ProxyLink) -> LinkFacts:
    """What the age rules need to know about ``link``."""
    return LinkFacts(
        basis=basis_of(link),
        status=status_of(link),
        competence_assessed=link.competence_assessed,
        child_consent=link.child_consent,
        notices_sent=frozenset(str(k) for k in (link.notices_sent or [])),
    )


def link_for_update(uow: AbstractUnitOfWork, link_id: int) -> ProxyLink | None:
    return uow.session.get(ProxyLink, link_id, with_for_update=True, populate_existing=True)


def own_active_links(uow: AbstractUnitOfWork, user_id: int) -> list[AccountLink]:
    """The person's active links to their own GP record, oldest first."""
    return list(
        uow.session.scalars(
            select(AccountLink)
            .where(AccountLink.user_id == user_id, AccountLink.status == "active")
            .order_by(AccountLink.id)
        )
    )


def patient_accounts(uow: AbstractUnitOfWork, patient_id: int) -> list[User]:
    """The patient's own accounts (usually one), to tell them about people acting for them."""
    return list(
        uow.session.scalars(
            select(User)
            .join(AccountLink, AccountLink.user_id == User.id)
            .where(AccountLink.patient_id == patient_id, AccountLink.status == "active")
        )
    )


def proxy_offered(practice: Practice) -> bool:
    """Whether the practice offers proxy access online (its "proxy" service switch)."""
    switch = practice.switch(Service.PROXY.value)
    return bool(switch and switch.enabled)


def allowed_levels(access: EffectiveAccess) -> tuple[RecordLevel, ...]:
    """Record levels reception may give a proxy: never more than the patient's own access allows."""
    if not access.services.get(Service.RECORD, False):
        return (RecordLevel.NONE,)
    return tuple(level for level in LEVELS if level <= access.record_level)


def clean_reason(reason: str, what: str = "a reason") -> str:
    """A reason as it will be kept and shown: required, and not too long."""
    text = (reason or "").strip()
    if not text:
        raise InputError(f"Enter {what}", "reason")
    if len(text) > REASON_MAX:
        raise InputError(f"Enter a reason of {REASON_MAX} characters or fewer", "reason")
    return text


def close(uow: AbstractUnitOfWork, link: ProxyLink, by: User, status: ProxyStatus, reason: str) -> None:
    """End or turn down ``link`` for good; the row stays for the record."""
    link.status = status.value
    link.status_reason = reason
    link.ended_at = uow.now()
    link.ended_by_id = by.id


def sign_off(practice: Practice) -> str:
    phone = f" on {practice.phone}" if practice.phone else ""
    return f"If you have questions, contact {practice.name}{phone}."


def tell(uow: AbstractUnitOfWork, users: list[User], template: str, subject: str, body: str) -> None:
    """Email each person once, however many times they are listed."""
    for user in {u.id: u for u in users}.values():
        uow.send_email(user.email, template, subject, body)


def tell_both(uow: AbstractUnitOfWork, link: ProxyLink, template: str, subject: str, body: str) -> None:
    """Email the proxy and the patient's own accounts, signed off by the patient's practice."""
    tell(
        uow,
        [link.proxy, *patient_accounts(uow, link.patient_id)],
        template,
        subject,
        f"{body}\n\n{sign_off(link.patient.practice)}",
    )
