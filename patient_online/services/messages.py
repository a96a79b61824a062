"""Every email and text message goes through the durable outbox, never out of the web request.

``queue`` (what ``uow.send_email`` and ``uow.send_sms`` call) writes the message to the ``notification`` table
and an outbox message in the caller's transaction: the message is sent if and only if the change it tells of
commits. The outbox worker sends it with retries and backoff; security codes are on a priority lane (taken
first by the worker, and tried at once by the web request after it commits: ``send_now``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.orm import Session

from patient_online.domain.accounts import CodePurpose
from patient_online.domain.errors import DomainError
from patient_online.models import AccountLink, ContactPreference, Notification, OutboxMessage, Patient, User

from . import outbox
from .notify import EMAIL, SMS, OutgoingMessage
from .unit_of_work import AbstractUnitOfWork, UnitOfWorkFactory

log = logging.getLogger("patient_online.messages")

KINDS = {EMAIL: f"{outbox.MESSAGE_KIND_PREFIX}email", SMS: f"{outbox.MESSAGE_KIND_PREFIX}sms"}
MOBILE_CODE = "confirm_mobile"
# Messages that carry a security code: delivered within seconds, before anything else that is waiting.
PRIORITY_TYPES = frozenset({*(purpose.value for purpose in CodePurpose), MOBILE_CODE})


class MessageStatus:
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


def queue(
    uow: AbstractUnitOfWork,
    channel: str,
    to: str,
    message_type: str,
    subject: str,
    body: str,
    *,
    personalisation: Mapping[str, Any] | None = None,
    key: str | None = None,
    priority: bool | None = None,
    practice_id: int | None = None,
) -> Notification:
    """Queue one message in the caller's transaction. ``key`` makes it once-only: a second message with the
    same key cannot be queued (the outbox's key is unique); see ``already_queued``."""
    if channel not in KINDS:
        raise ValueError(f"unknown channel {channel}")
    reference = key or f"{channel}-{uuid.uuid4().hex}"
    urgent = message_type in PRIORITY_TYPES if priority is None else priority
    note = Notification(
        to=to,
        channel=channel,
        template=message_type,
        subject=subject,
        body=body,
        status=MessageStatus.QUEUED,
        priority=urgent,
        reference=reference,
        personalisation=dict(personalisation or {}),
    )
    uow.session.add(note)
    message = outbox.new_message(practice_id, KINDS[channel], {"reference": reference}, reference, uow.now())
    message.priority = 1 if urgent else 0
    uow.session.add(message)
    if urgent:
        uow.urgent_messages.append(reference)
    if channel == EMAIL:
        _text_alert(uow, to, message_type, reference, practice_id)
    return note


# A short text beside the email, for people who chose texts for this kind of message: it never carries the email's
# details (a reason, a medicine), only that there is news and where to read it.
TEXT_ALERTS = {
    "appointments": "Patient Online: there is news about your appointments. Check your email, or sign in to see it.",
    "prescriptions": "Patient Online: there is news about your repeat prescription request. Check your email, or "
    "sign in to see it.",
    "security": "Patient Online: your account details were changed. If this was not you, contact your GP practice "
    "straight away.",
}
SECURITY_TYPES = frozenset({"email_changed", "password_changed"})


def kind_of(message_type: str) -> str:
    """Which kind of message (as people choose channels for) an email type is; "" for none."""
    if message_type.startswith("appointment_") and not message_type.startswith("appointment_reminder"):
        return "appointments"  # reminders send their own text
    if message_type.startswith("prescription"):
        return "prescriptions"
    return "security" if message_type in SECURITY_TYPES else ""


def _text_alert(uow: AbstractUnitOfWork, to: str, message_type: str, reference: str, practice_id: int | None) -> None:
    kind = kind_of(message_type)
    if not kind:
        return
    from . import contact_preferences as contact

    user_id = uow.session.scalar(select(User.id).where(User.email == to))
    if user_id is None:
        return
    mobile = contact.verified_mobile(uow, user_id)
    if mobile and contact.wants(uow, user_id, kind, SMS):
        queue(uow, SMS, mobile, f"{kind}_alert", "", TEXT_ALERTS[kind], key=f"{reference}-sms", practice_id=practice_id)


def already_queued(uow: AbstractUnitOfWork, key: str) -> bool:
    """Whether a message with this key was queued (in any state)."""
    found = uow.session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key))
    return found is not None


# Delivery (the outbox's handlers) -----------------------------------------------------------------------------
def _note(uow: AbstractUnitOfWork, message: OutboxMessage) -> Notification:
    note = uow.session.scalar(select(Notification).where(Notification.reference == message.payload["reference"]))
    if note is None:
        raise DomainError("the message's text is missing")
    return note


def _prepare(uow: AbstractUnitOfWork, message: OutboxMessage) -> Callable[[], dict[str, Any]]:
    note = _note(uow, message)
    outgoing = OutgoingMessage(
        channel=note.channel,
        to=note.to,
        message_type=note.template,
        subject=note.subject,
        body=note.body,
        reference=str(note.reference),
        personalisation=dict(note.personalisation or {}),
        maybe_sent=message.attempts > 1,
    )
    notifier = uow.notifier

    def call() -> dict[str, Any]:
        return {"provider_id": notifier.deliver(outgoing)}

    return call


def _delivered(uow: AbstractUnitOfWork, message: OutboxMessage) -> None:
    note = _note(uow, message)
    note.status = MessageStatus.SENT
    note.sent_at = uow.now()
    note.provider_id = str((message.result or {}).get("provider_id", ""))[:64]


def _failed(uow: AbstractUnitOfWork, message: OutboxMessage) -> None:
    note = uow.session.scalar(select(Notification).where(Notification.reference == message.payload["reference"]))
    if note is not None:
        note.status = MessageStatus.FAILED


for _kind in KINDS.values():
    outbox.register(_kind, outbox.Handler(_prepare, _delivered, _failed))


def worker_id() -> str:
    return f"web-{socket.gethostname()}:{os.getpid()}"


def send_now(uow: AbstractUnitOfWork, references: Iterable[str]) -> list[outbox.Outcome]:
    """Try these (committed) messages at once; never raises: a message not sent now is sent by the worker."""
    outcomes: list[outbox.Outcome] = []
    for reference in references:
        try:
            message_id = uow.session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == reference))
            uow.commit()
            if message_id is None:  # its transaction rolled back: there is nothing to send
                continue
            outcomes.append(outbox.deliver_message(uow, int(message_id), worker_id()))
        except Exception as exc:
            log.warning("message not sent at once", extra={"fields": {"error_type": type(exc).__name__}})
            with contextlib.suppress(Exception):  # the database went away: the worker sends it later
                uow.rollback()
    return outcomes


def send_now_in(make_uow: UnitOfWorkFactory, session: Session, references: Iterable[str]) -> None:
    """``send_now`` on a session of its own (the web layer, after the request's transaction)."""
    try:
        send_now(make_uow(session), list(references))
    finally:
        session.close()


# What staff see ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MessageRow:
    """A message as staff see it: where it stands, never its text (it may hold a security code)."""

    id: int
    channel: str
    message_type: str
    to: str
    status: str
    attempts: int
    last_error: str
    queued_at: dt.datetime
    sent_at: dt.datetime | None


@dataclass(frozen=True)
class MessageCounts:
    queued: int
    sent: int
    failed: int


def _to_practice(practice_id: int) -> ColumnElement[bool]:
    """Messages to people with an account linked to a patient of the practice (patients and proxies)."""
    numbers = select(ContactPreference.user_id).where(
        or_(ContactPreference.mobile == Notification.to, ContactPreference.pending_mobile == Notification.to)
    )
    return exists(
        select(User.id)
        .join(AccountLink, AccountLink.user_id == User.id)
        .join(Patient, Patient.id == AccountLink.patient_id)
        .where(
            Patient.practice_id == practice_id,
            or_(User.email == Notification.to, User.id.in_(numbers)),
        )
    )


def message_counts(uow: AbstractUnitOfWork, practice_id: int) -> MessageCounts:
    """How many messages to the practice's patients wait to be sent, were sent, and failed (for staff pages:
    reception's home page may show the queued and failed ones)."""
    rows = uow.session.execute(
        select(Notification.status, func.count()).where(_to_practice(practice_id)).group_by(Notification.status)
    ).tuples()
    found = {status: int(n) for status, n in rows}
    return MessageCounts(
        found.get(MessageStatus.QUEUED, 0), found.get(MessageStatus.SENT, 0), found.get(MessageStatus.FAILED, 0)
    )


def mask(address: str) -> str:
    """Enough of an address for staff to recognise it, not to read it out: ``j…@example.com``, ``07… 123``."""
    if "@" in address:
        name, _, domain = address.partition("@")
        return f"{name[:1]}…@{domain}"
    digits = address.replace(" ", "")
    if digits.startswith("+44"):
        digits = "0" + digits[3:]
    return f"{digits[:2]}… {digits[-3:]}" if len(digits) > 5 else "…"


def recent_messages(
    uow: AbstractUnitOfWork, practice_id: int, *, status: str = "", limit: int = 100
) -> list[MessageRow]:
    """The newest messages to the practice's patients, with their delivery state (``status`` filters), for
    staff: never the text, which may hold a security code."""
    stmt = (
        select(Notification, OutboxMessage)
        .outerjoin(OutboxMessage, OutboxMessage.idempotency_key == Notification.reference)
        .where(_to_practice(practice_id))
        .order_by(Notification.id.desc())
        .limit(limit)
    )
    if status:
        stmt = stmt.where(Notification.status == status)
    return [
        MessageRow(
            id=note.id,
            channel=note.channel,
            message_type=note.template,
            to=mask(note.to),
            status=note.status,
            attempts=message.attempts if message is not None else 0,
            last_error=message.last_error if message is not None else "",
            queued_at=note.created_at,
            sent_at=note.sent_at,
        )
        for note, message in uow.session.execute(stmt).tuples()
    ]


@dataclass(frozen=True)
class PracticeMessages:
    rows: list[MessageRow]
    counts: MessageCounts


def practice_messages(uow: AbstractUnitOfWork, actor_id: int, practice_id: int, status: str = "") -> PracticeMessages:
    """The messages page of a practice's staff: the newest messages to its patients and the counts; the look is
    audited (it shows who was sent what kind of message)."""
    found = PracticeMessages(recent_messages(uow, practice_id, status=status), message_counts(uow, practice_id))
    uow.audit("messages.viewed", actor_id=actor_id, actor_role="staff", practice_id=practice_id, status=status)
    uow.commit()
    return found


# The demo mailbox -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MailboxMessage:
    channel: str
    to: str
    subject: str
    body: str
    status: str
    at: dt.datetime
    code: str  # the security code in it, shown large ("" when none)


def mailbox(uow: AbstractUnitOfWork, limit: int = 50) -> list[MailboxMessage]:
    """Every message the local notifier holds, newest first (the demo only: it shows codes)."""
    import re

    rows = uow.session.scalars(select(Notification).order_by(Notification.id.desc()).limit(limit)).all()
    found: list[MailboxMessage] = []
    for note in rows:
        code = re.search(r"\b(\d{6})\b", note.body) if note.template in PRIORITY_TYPES else None
        found.append(
            MailboxMessage(
                note.channel, note.to, note.subject, note.body, note.status, note.created_at, code[1] if code else ""
            )
        )
    return found
