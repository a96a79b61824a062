"""The daily age job (``proxies review``): notices before a child's review age and 16, suspension on the day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from patient_online.domain.access import ADULT_AGE
from patient_online.domain.proxy import AgeDecision, Milestone, Notice, ProxyBasis, ProxyStatus, proxy_review_due
from patient_online.models import Practice, ProxyLink

from ..unit_of_work import AbstractUnitOfWork
from .common import facts, tell_both


@dataclass(frozen=True)
class AgeRulesReport:
    """What one run of the age rules did."""

    checked: int = 0
    suspended: int = 0
    notices: int = 0

    def __str__(self) -> str:
        return f"checked {self.checked}, suspended {self.suspended}, notices sent {self.notices}"


def apply_age_rules(uow: AbstractUnitOfWork, today: dt.date | None = None) -> AgeRulesReport:
    """Rule 18 for every active parental link: notices before the review age and 16, suspension on the day.

    Safe to run as often as you like: a suspended link is not looked at again, and each notice is sent once.
    """
    day = today or uow.today()
    checked = suspended = notices = 0
    uow.writing()
    links = uow.session.scalars(
        select(ProxyLink)
        .where(
            ProxyLink.status == ProxyStatus.ACTIVE.value,
            ProxyLink.basis == ProxyBasis.PARENTAL_RESPONSIBILITY.value,
        )
        .order_by(ProxyLink.id)
        .with_for_update()
    ).all()
    for link in links:
        checked += 1
        practice = link.patient.practice
        decision = proxy_review_due(
            facts(link), link.patient.date_of_birth, day, practice.proxy_review_age, practice.proxy_notice_days
        )
        if decision.suspend is not None:
            _suspend_for_age(uow, link, practice, decision)
            suspended += 1
            continue
        for notice in decision.notices:
            _send_notice(uow, link, practice, notice)
            notices += 1
    uow.commit()
    return AgeRulesReport(checked=checked, suspended=suspended, notices=notices)


def _remember(link: ProxyLink, key: str) -> None:
    link.notices_sent = [*(link.notices_sent or []), key]  # a new list, so the JSON change is saved


def _suspend_for_age(uow: AbstractUnitOfWork, link: ProxyLink, practice: Practice, decision: AgeDecision) -> None:
    assert decision.suspend is not None
    why = decision.suspend.explain(practice.proxy_review_age)
    link.status = ProxyStatus.SUSPENDED.value
    link.status_reason = f"{why}."
    link.decided_at = uow.now()
    link.decided_by_id = None
    _remember(link, decision.suspend_key)
    uow.audit(
        "proxy.suspended",
        actor_role="system",
        patient_id=link.patient_id,
        subject_user_id=link.proxy_user_id,
        practice_id=practice.id,
        link_id=link.id,
        milestone=decision.suspend.value,
        age=decision.age,
    )
    next_step = (
        f"{practice.name} can restart it after talking with {link.patient.given_name}."
        if decision.suspend is Milestone.REVIEW
        else f"{link.patient.given_name} can now ask for their own account, and can choose to let you act for them."
    )
    tell_both(
        uow,
        link,
        "proxy_suspended_age",
        "Proxy access has been paused",
        f"{link.proxy.display_name}'s access to act for {link.patient.full_name} online has been paused. "
        f"{why}. {next_step}",
    )


def _send_notice(uow: AbstractUnitOfWork, link: ProxyLink, practice: Practice, notice: Notice) -> None:
    _remember(link, notice.key)
    when = f"{notice.on.day} {notice.on:%B %Y}"
    why = notice.milestone.explain(practice.proxy_review_age)
    name = link.patient.given_name
    if notice.milestone is Milestone.REVIEW:
        what = (
            f"{name} turns {practice.proxy_review_age} on {when}. {why}. "
            f"Unless {practice.name} has talked with {name} before then, "
            f"{link.proxy.display_name}'s access will be paused on that day. Contact the practice to arrange this."
        )
    else:
        what = f"{name} turns {ADULT_AGE} on {when}. {why}, so {link.proxy.display_name}'s access will be paused then."
    uow.audit(
        "proxy.notice_sent",
        actor_role="system",
        patient_id=link.patient_id,
        subject_user_id=link.proxy_user_id,
        practice_id=practice.id,
        link_id=link.id,
        milestone=notice.milestone.value,
        on=notice.on.isoformat(),
    )
    tell_both(uow, link, "proxy_notice", "Proxy access will change soon", what)
