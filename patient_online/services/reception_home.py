"""Reception's home: what needs attention today, with counts, and the link to the clinical system in plain words.

Identity checks waiting (oldest first, with their age), requests to act for someone, proxy reviews due this
month, repeat requests the gateway could not deliver or still holds (with "try again" and "tell the patient"),
and the linkage letters issued this week.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from patient_online.domain.errors import InputError, NotFound
from patient_online.domain.link_words import LinkWords, words_for
from patient_online.domain.outbox import MessageStatus
from patient_online.domain.prescriptions import RequestStatus
from patient_online.domain.proxy import LinkFacts, Milestone, ProxyBasis, ProxyStatus, proxy_review_due
from patient_online.domain.verification import LinkRequestStatus
from patient_online.models import (
    HandledMessage,
    LinkageLetter,
    LinkRequest,
    OutboxMessage,
    Patient,
    Practice,
    PrescriptionOrder,
    ProxyLink,
    User,
)

from .linking import require_staff
from .prescriptions import KIND as REPEAT_REQUEST
from .unit_of_work import AbstractUnitOfWork

LONDON = ZoneInfo("Europe/London")


@dataclass(frozen=True)
class WaitingCheck:
    request_id: int
    name: str
    asked_at: dt.datetime
    age_days: int
    matched: bool


@dataclass(frozen=True)
class ProxyItem:
    link_id: int
    proxy_name: str
    patient_name: str
    patient_id: int
    note: str  # when it was asked, or what is due and when


@dataclass(frozen=True)
class RepeatItem:
    message_id: int
    patient_id: int
    patient_name: str
    items: tuple[str, ...]
    asked_at: dt.datetime
    failed: bool  # given up; otherwise still queued
    attempts: int


@dataclass(frozen=True)
class LetterItem:
    patient_id: int
    patient_name: str
    issued_at: dt.datetime
    issued_by: str


@dataclass(frozen=True)
class ReceptionHome:
    practice_name: str
    ods_code: str
    link: LinkWords
    checks: list[WaitingCheck]
    proxy_requests: list[ProxyItem]
    proxy_reviews: list[ProxyItem]
    repeats: list[RepeatItem]
    letters: list[LetterItem]

    @property
    def total(self) -> int:
        return len(self.checks) + len(self.proxy_requests) + len(self.proxy_reviews) + len(self.repeats)


def _week_start(now: dt.datetime) -> dt.datetime:
    local = now.astimezone(LONDON)
    monday = local.date() - dt.timedelta(days=local.weekday())
    return dt.datetime(monday.year, monday.month, monday.day, tzinfo=LONDON).astimezone(dt.UTC)


def _reviews_due(uow: AbstractUnitOfWork, practice: Practice, today: dt.date) -> list[ProxyItem]:
    """Active parental links whose review (or the end at 16) falls this month, or is already overdue."""
    month_end = dt.date(today.year, today.month, calendar.monthrange(today.year, today.month)[1])
    rows = uow.session.scalars(
        select(ProxyLink)
        .join(Patient, Patient.id == ProxyLink.patient_id)
        .where(Patient.practice_id == practice.id, ProxyLink.status == ProxyStatus.ACTIVE)
        .order_by(ProxyLink.id)
        .options(joinedload(ProxyLink.proxy), joinedload(ProxyLink.patient))
    )
    due: list[tuple[dt.date, ProxyItem]] = []
    for link in rows:
        basis = ProxyBasis(link.basis)
        if not basis.parental:
            continue
        facts = LinkFacts(basis, ProxyStatus.ACTIVE, link.competence_assessed, link.child_consent)
        decision = proxy_review_due(
            facts, link.patient.date_of_birth, today, practice.proxy_review_age, (month_end - today).days
        )
        if decision.suspend is not None:
            on, note = decision.suspend_on or today, "Overdue: suspended at the next check"
        elif decision.notices:
            first = decision.notices[0]
            what = "Review" if first.milestone is Milestone.REVIEW else "Access ends at 16"
            on, note = first.on, f"{what} on {first.on.day} {first.on:%B}"
        else:
            continue
        due.append(
            (
                on,
                ProxyItem(link.id, link.proxy.display_name, link.patient.full_name, link.patient_id, note),
            )
        )
    return [item for _on, item in sorted(due, key=lambda pair: (pair[0], pair[1].link_id))]


def reception_home(uow: AbstractUnitOfWork, staff: User, practice: Practice) -> ReceptionHome:
    """Everything on reception's "needs attention" list for the practice, with the link's state; the view of
    these names is audited."""
    require_staff(staff, practice)
    session, now = uow.session, uow.now()
    checks = [
        WaitingCheck(
            request_id=row.id,
            name=f"{row.given_name} {row.family_name}",
            asked_at=row.created_at,
            age_days=(now - row.created_at).days,
            matched=row.matched,
        )
        for row in session.scalars(
            select(LinkRequest)
            .where(LinkRequest.practice_id == practice.id, LinkRequest.status == LinkRequestStatus.PENDING)
            .order_by(LinkRequest.created_at, LinkRequest.id)
        )
    ]
    proxy_requests = [
        ProxyItem(
            link.id,
            link.proxy.display_name,
            link.patient.full_name,
            link.patient_id,
            f"Asked {link.created_at.astimezone(LONDON):%-d %B}",
        )
        for link in session.scalars(
            select(ProxyLink)
            .join(Patient, Patient.id == ProxyLink.patient_id)
            .where(Patient.practice_id == practice.id, ProxyLink.status == ProxyStatus.REQUESTED)
            .order_by(ProxyLink.created_at, ProxyLink.id)
            .options(joinedload(ProxyLink.proxy), joinedload(ProxyLink.patient))
        )
    ]
    handled = select(HandledMessage.outbox_message_id)
    repeats: list[RepeatItem] = []
    for message in session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.practice_id == practice.id,
            OutboxMessage.kind == REPEAT_REQUEST,
            OutboxMessage.status.in_([MessageStatus.FAILED.value, MessageStatus.PENDING.value]),
            OutboxMessage.id.not_in(handled),
        )
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
    ):
        order = session.get(PrescriptionOrder, message.payload.get("order_id"))
        patient = session.get(Patient, order.patient_id) if order is not None else None
        if order is None or patient is None:
            continue
        repeats.append(
            RepeatItem(
                message_id=message.id,
                patient_id=patient.id,
                patient_name=patient.full_name,
                items=tuple(order.item_names or ()),
                asked_at=order.created_at,
                failed=message.status == MessageStatus.FAILED,
                attempts=message.attempts,
            )
        )
    letters = [
        LetterItem(
            patient_id=letter.patient_id,
            patient_name=letter.patient.full_name,
            issued_at=letter.issued_at,
            issued_by=issuer.display_name if issuer is not None else "",
        )
        for letter, issuer in session.execute(
            select(LinkageLetter, User)
            .join(Patient, Patient.id == LinkageLetter.patient_id)
            .outerjoin(User, User.id == LinkageLetter.issued_by_id)
            .where(Patient.practice_id == practice.id, LinkageLetter.issued_at >= _week_start(now))
            .order_by(LinkageLetter.issued_at.desc(), LinkageLetter.id.desc())
            .options(joinedload(LinkageLetter.patient))
        )
    ]
    state = uow.clinical_systems.system_for(practice).link_state()  # what is known, without calling it
    home = ReceptionHome(
        practice_name=practice.name,
        ods_code=practice.ods_code,
        link=words_for(state, now),
        checks=checks,
        proxy_requests=proxy_requests,
        proxy_reviews=_reviews_due(uow, practice, uow.today()),
        repeats=repeats,
        letters=letters,
    )
    uow.audit(
        "reception.attention_viewed",
        actor_id=staff.id,
        actor_role="receptionist",
        practice_id=practice.id,
        checks=len(checks),
        repeats=len(repeats),
    )
    uow.commit()
    return home


def _repeat_message(uow: AbstractUnitOfWork, practice: Practice, message_id: int) -> OutboxMessage:
    message = uow.session.get(OutboxMessage, message_id, populate_existing=True)
    if message is None or message.practice_id != practice.id or message.kind != REPEAT_REQUEST:
        raise NotFound("We could not find that repeat request at your practice.")
    return message


def _order_and_patient(uow: AbstractUnitOfWork, message: OutboxMessage) -> tuple[PrescriptionOrder, Patient]:
    order = uow.session.get(PrescriptionOrder, message.payload.get("order_id"))
    if order is None:
        raise NotFound("We could not find that repeat request at your practice.")
    return order, uow.session.get_one(Patient, order.patient_id)


def _open_for_reception(uow: AbstractUnitOfWork, message: OutboxMessage) -> None:
    if message.status not in (MessageStatus.FAILED, MessageStatus.PENDING):
        raise InputError("This request has been dealt with already", "message")
    if uow.session.scalar(select(HandledMessage.id).where(HandledMessage.outbox_message_id == message.id)):
        raise InputError("This request has been dealt with already", "message")
    if message.locked_until is not None and message.locked_until > uow.now():
        raise InputError("This request is being sent right now. Check again in a minute", "message")


def retry_repeat_request(uow: AbstractUnitOfWork, staff: User, practice: Practice, message_id: int) -> None:
    """Try a repeat request again now: the outbox worker picks it up at its next round; audited."""
    require_staff(staff, practice)
    uow.writing()
    message = _repeat_message(uow, practice, message_id)
    _open_for_reception(uow, message)
    order, patient = _order_and_patient(uow, message)
    was = message.status
    message.status = MessageStatus.PENDING.value
    message.attempts = 0
    message.next_attempt_at = uow.now()
    message.last_error = ""
    if RequestStatus(order.status) is RequestStatus.FAILED:
        order.status = RequestStatus.QUEUED.value
    uow.audit(
        "prescription.retried",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=patient.id,
        practice_id=practice.id,
        order_id=order.id,
        was=was,
    )
    uow.commit()


def tell_patient_about_repeat_request(uow: AbstractUnitOfWork, staff: User, practice: Practice, message_id: int) -> str:
    """Tell the patient their request did not reach the practice and mark it dealt with; a request still queued
    is withdrawn, so it cannot arrive later as well. Returns the patient's name for the page; audited."""
    require_staff(staff, practice)
    uow.writing()
    message = _repeat_message(uow, practice, message_id)
    _open_for_reception(uow, message)
    order, patient = _order_and_patient(uow, message)
    if message.status == MessageStatus.PENDING:
        message.status = MessageStatus.WITHDRAWN.value
    order.status = RequestStatus.FAILED.value
    uow.session.add(HandledMessage(outbox_message_id=message.id, handled_by_id=staff.id, handled_at=uow.now()))
    orderer = uow.session.get_one(User, order.ordered_by_id)
    asked = order.created_at.astimezone(LONDON)
    uow.send_email(
        orderer.email,
        "repeat_not_sent",
        "Your repeat prescription request did not reach the practice",
        f"The repeat prescription request made on {asked.day} {asked:%B} at {asked:%H:%M} could not be sent to "
        f"{practice.name}. Nothing has been ordered. Please order again online, or call the practice on "
        f"{practice.phone}.",
    )
    uow.audit(
        "prescription.patient_told",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=patient.id,
        practice_id=practice.id,
        order_id=order.id,
    )
    name = patient.full_name
    uow.commit()
    return name
