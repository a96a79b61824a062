"""The durable outbox: writes a clinical system could not take at once, and every email and text message to a
person (``services/messages.py``), delivered later exactly once. They go in two lanes, so that a slow clinical
system never holds up a security code; within a lane, priority messages are taken first.

A use case ``enqueue``s a message in its own transaction, next to the change it belongs to, so the write
can never be lost. ``deliver_due`` (the ``flask outbox run`` worker) and ``deliver_message`` (an immediate
try from the web request) claim a message under a lease, call its handler with no database transaction
open, and mark it delivered together with the handler's own bookkeeping in one transaction.

Exactly once: two workers never hold the same message (``SELECT ... FOR UPDATE SKIP LOCKED`` on
PostgreSQL, a conditional ``UPDATE`` of the lease everywhere), and a worker that dies after the clinical
system took the write but before marking it delivered leaves the message to be redelivered with the same
idempotency key, which the clinical system answers with the request it already holds.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from patient_online.domain.errors import ClinicalSystemUnavailable, DomainError
from patient_online.domain.outbox import MessageStatus
from patient_online.models import OutboxMessage

from .unit_of_work import AbstractUnitOfWork, UnitOfWorkFactory

log = logging.getLogger("patient_online.outbox")

DEFAULT_MAX_ATTEMPTS = 12
DEFAULT_BACKOFF_BASE = 5.0  # seconds before the 2nd attempt; doubles each time
DEFAULT_BACKOFF_CAP = 1800.0  # never wait more than 30 minutes between attempts
DEFAULT_LEASE = 60.0

Prepare = Callable[[AbstractUnitOfWork, OutboxMessage], Callable[[], dict[str, Any]]]
Bookkeeping = Callable[[AbstractUnitOfWork, OutboxMessage], None]


def _nothing(uow: AbstractUnitOfWork, message: OutboxMessage) -> None:
    return None


@dataclass(frozen=True)
class Handler:
    """How to deliver one kind of message.

    ``prepare`` reads what the delivery needs and returns the call to make; the outbox ends the transaction
    before making it, so none is open while the clinical system is called. ``delivered`` and ``failed`` run in
    the transaction that marks the message delivered or failed (and commit with it).
    """

    prepare: Prepare
    delivered: Bookkeeping = _nothing
    failed: Bookkeeping = _nothing


_HANDLERS: dict[str, Handler] = {}


def register(kind: str, handler: Handler) -> Handler:
    """Deliver messages of ``kind`` with ``handler``."""
    _HANDLERS[kind] = handler
    return handler


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # will be tried again later
    FAILED = "failed"  # given up: permanent error or too many attempts
    BUSY = "busy"  # another worker holds it, or it was already dealt with


@dataclass
class DeliveryReport:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for o in self.outcomes if o is outcome)

    def __str__(self) -> str:
        return ", ".join(f"{o.value} {self.count(o)}" for o in Outcome if self.count(o)) or "nothing due"


def new_message(
    practice_id: int | None, kind: str, payload: dict[str, Any], idempotency_key: str, now: dt.datetime
) -> OutboxMessage:
    """A pending message, due at ``now``, for the caller to add to its session."""
    return OutboxMessage(
        practice_id=practice_id,
        kind=kind,
        payload=payload,
        idempotency_key=idempotency_key,
        status=MessageStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
    )


def enqueue(
    uow: AbstractUnitOfWork, practice_id: int | None, kind: str, payload: dict[str, Any], idempotency_key: str
) -> OutboxMessage:
    """Add a message in the caller's transaction: it commits with the change it belongs to, or not at all."""
    message = new_message(practice_id, kind, payload, idempotency_key, uow.now())
    uow.session.add(message)
    return message


def backoff(attempts: int, base: float = DEFAULT_BACKOFF_BASE, cap: float = DEFAULT_BACKOFF_CAP) -> dt.timedelta:
    """Wait before the next try after ``attempts`` tries: exponential, capped."""
    return dt.timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def run_once(
    make_uow: UnitOfWorkFactory,
    session: Session,
    worker_id: str,
    *,
    limit: int = 100,
    lease_seconds: float = DEFAULT_LEASE,
    should_stop: Callable[[], bool] = lambda: False,
) -> DeliveryReport:
    """One round of the worker: deliver what is due with a unit of work made on ``session`` from the app's parts,
    messages to people first (security codes before anything else), then writes for clinical systems."""
    uow = make_uow(session)
    report = DeliveryReport()
    for lane in (MESSAGES, WRITES):
        done = deliver_due(uow, worker_id, limit=limit, lease_seconds=lease_seconds, should_stop=should_stop, lane=lane)
        report.outcomes.extend(done.outcomes)
    return report


# Two lanes, so that a slow clinical system never holds up a security code: messages to people (email, text)
# and writes for clinical systems. A worker serves both; ``deliver_due`` serves one.
MESSAGES = "messages"
WRITES = "writes"
MESSAGE_KIND_PREFIX = "message."


def _lane(lane: str) -> ColumnElement[bool]:
    if lane == MESSAGES:
        return OutboxMessage.kind.startswith(MESSAGE_KIND_PREFIX)
    return ~OutboxMessage.kind.startswith(MESSAGE_KIND_PREFIX)


def deliver_due(
    uow: AbstractUnitOfWork,
    worker_id: str,
    *,
    limit: int = 100,
    lease_seconds: float = DEFAULT_LEASE,
    should_stop: Callable[[], bool] = lambda: False,
    lane: str = WRITES,
) -> DeliveryReport:
    """Deliver messages of one lane that are due, one claim at a time, until none is left, ``limit`` or a stop
    request.

    The outbox owns its transactions: whatever the unit of work holds is committed first.
    """
    report = DeliveryReport()
    while len(report.outcomes) < limit and not should_stop():
        message_id = _claim_next(uow, worker_id, lease_seconds, lane)
        if message_id is None:
            break
        report.outcomes.append(_deliver(uow, message_id, worker_id))
    return report


def deliver_message(
    uow: AbstractUnitOfWork, message_id: int, worker_id: str, *, lease_seconds: float = DEFAULT_LEASE
) -> Outcome:
    """Try one message now (the web request that created it does this); BUSY if a worker holds it."""
    uow.writing()
    now = uow.now()
    claimed = uow.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, _due(now, worker_id))
        .values(_lease_values(now, worker_id, lease_seconds))
    )
    uow.commit()
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return Outcome.BUSY
    return _deliver(uow, message_id, worker_id)


def withdraw(uow: AbstractUnitOfWork, message_id: int) -> bool:
    """Take back a pending message no worker holds, in the caller's transaction; False when it cannot be.

    One conditional UPDATE decides the race with the workers: a worker claims with an UPDATE on the same row
    that needs it pending and unleased, so exactly one of them changes it. A message under a lease, even a
    stale one, may be in the clinical system already, so it is not withdrawn: it is delivered, and can then be
    cancelled there. The caller commits (or rolls back) with its own change.
    """
    withdrawn = uow.session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            OutboxMessage.status == MessageStatus.PENDING.value,
            OutboxMessage.locked_by == "",
        )
        .values(status=MessageStatus.WITHDRAWN.value, last_error="withdrawn")
    )
    return bool(withdrawn.rowcount == 1)  # type: ignore[attr-defined]


def counts(uow: AbstractUnitOfWork) -> dict[MessageStatus, int]:
    """How many messages are pending, delivered and failed (for `flask outbox status`)."""
    rows = uow.session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).tuples()
    found = {status: int(n) for status, n in rows}
    return {status: found.get(status.value, 0) for status in MessageStatus}


# Claiming ---------------------------------------------------------------------------------------------------
def _due(now: dt.datetime, worker_id: str) -> ColumnElement[bool]:
    """Pending, due, and not leased to another live worker (a worker may take back its own stale lease)."""
    return (
        (OutboxMessage.status == MessageStatus.PENDING.value)
        & (OutboxMessage.next_attempt_at <= now)
        & or_(
            OutboxMessage.locked_until.is_(None),
            OutboxMessage.locked_until < now,
            OutboxMessage.locked_by == worker_id,
        )
    )


def _lease_values(now: dt.datetime, worker_id: str, lease_seconds: float) -> dict[str, Any]:
    return {
        "locked_by": worker_id,
        "locked_until": now + dt.timedelta(seconds=lease_seconds),
        "attempts": OutboxMessage.attempts + 1,
    }


def _claim_next(uow: AbstractUnitOfWork, worker_id: str, lease_seconds: float, lane: str = WRITES) -> int | None:
    """Lease the next due message to this worker and commit the lease; None when nothing is due."""
    uow.writing()
    session = uow.session
    now = uow.now()
    candidates = (
        select(OutboxMessage.id)
        .where(_due(now, worker_id), _lane(lane))
        .order_by(OutboxMessage.priority.desc(), OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(5)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.limit(1).with_for_update(skip_locked=True)
    try:
        for message_id in session.scalars(candidates).all():
            # The conditional UPDATE is the lease: whoever changes the row owns the message. On PostgreSQL the
            # row is already locked for us (SKIP LOCKED); SQLite has no SKIP LOCKED and relies on this alone.
            claimed = session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id, _due(now, worker_id))
                .values(_lease_values(now, worker_id, lease_seconds))
            )
            if claimed.rowcount == 1:  # type: ignore[attr-defined]
                uow.commit()
                return int(message_id)
        uow.commit()
        return None
    except BaseException:
        uow.rollback()
        raise


# Delivering -------------------------------------------------------------------------------------------------
def _deliver(uow: AbstractUnitOfWork, message_id: int, worker_id: str) -> Outcome:
    message = uow.session.get_one(OutboxMessage, message_id, populate_existing=True)
    handler = _HANDLERS.get(message.kind)
    if handler is None:
        return _give_up(uow, message_id, worker_id, None, f"no handler for {message.kind}")
    try:
        call = handler.prepare(uow, message)
    except DomainError as exc:
        uow.rollback()
        return _give_up(uow, message_id, worker_id, handler, type(exc).__name__)
    except Exception as exc:
        uow.rollback()
        log.exception("outbox prepare error", extra={"fields": {"message_id": message_id}})
        return _retry(uow, message_id, worker_id, handler, type(exc).__name__)
    uow.release()  # no transaction open while the clinical system is called
    try:
        result = call()
    except ClinicalSystemUnavailable as exc:
        return _retry(uow, message_id, worker_id, handler, type(exc).__name__)
    except DomainError as exc:
        # The clinical system answered and refused: trying again would get the same answer.
        return _give_up(uow, message_id, worker_id, handler, f"{type(exc).__name__}: {exc.message}")
    except Exception as exc:
        log.exception("outbox delivery error", extra={"fields": {"message_id": message_id}})
        return _retry(uow, message_id, worker_id, handler, type(exc).__name__)
    _pause_after_call(uow)
    return _mark_delivered(uow, message_id, worker_id, handler, result)


def _mine(uow: AbstractUnitOfWork, message_id: int, worker_id: str) -> OutboxMessage | None:
    """The message, locked, if this worker still holds its lease and it is still pending."""
    uow.writing()
    message = uow.session.get_one(OutboxMessage, message_id, with_for_update=True, populate_existing=True)
    if message.status != MessageStatus.PENDING or message.locked_by != worker_id:
        uow.commit()
        log.info("outbox lease lost", extra={"fields": {"message_id": message_id, "worker": worker_id}})
        return None
    return message


def _release(message: OutboxMessage) -> None:
    message.locked_by = ""
    message.locked_until = None


def _mark_delivered(
    uow: AbstractUnitOfWork, message_id: int, worker_id: str, handler: Handler, result: dict[str, Any]
) -> Outcome:
    message = _mine(uow, message_id, worker_id)
    if message is None:
        return Outcome.BUSY
    message.status = MessageStatus.DELIVERED
    message.delivered_at = uow.now()
    message.result = result
    message.last_error = ""
    _release(message)
    handler.delivered(uow, message)
    uow.commit()
    log.info(
        "outbox delivered",
        extra={"fields": {"message_id": message_id, "kind": message.kind, "attempts": message.attempts}},
    )
    return Outcome.DELIVERED


def _retry(uow: AbstractUnitOfWork, message_id: int, worker_id: str, handler: Handler, error: str) -> Outcome:
    message = _mine(uow, message_id, worker_id)
    if message is None:
        return Outcome.BUSY
    if message.attempts >= int(uow.setting("OUTBOX_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)):
        uow.rollback()
        return _give_up(uow, message_id, worker_id, handler, f"gave up after {message.attempts} attempts: {error}")
    message.last_error = error[:500]
    message.next_attempt_at = uow.now() + backoff(
        message.attempts,
        float(uow.setting("OUTBOX_BACKOFF_BASE", DEFAULT_BACKOFF_BASE)),
        float(uow.setting("OUTBOX_BACKOFF_CAP", DEFAULT_BACKOFF_CAP)),
    )
    _release(message)
    uow.commit()
    log.info(
        "outbox retry later",
        extra={"fields": {"message_id": message_id, "attempts": message.attempts, "error_type": error}},
    )
    return Outcome.RETRY


def _give_up(uow: AbstractUnitOfWork, message_id: int, worker_id: str, handler: Handler | None, error: str) -> Outcome:
    message = _mine(uow, message_id, worker_id)
    if message is None:
        return Outcome.BUSY
    message.status = MessageStatus.FAILED
    message.last_error = error[:500]
    _release(message)
    if handler is not None:
        handler.failed(uow, message)
    uow.commit()
    log.warning("outbox gave up", extra={"fields": {"message_id": message_id, "kind": message.kind}})
    return Outcome.FAILED


def _pause_after_call(uow: AbstractUnitOfWork) -> None:
    """Fault drills only: wait between the clinical system's answer and marking delivered (never in production)."""
    if uow.setting("ENV") == "production":
        return
    pause = float(uow.setting("OUTBOX_PAUSE_AFTER_CALL", 0) or 0)
    if pause > 0:
        time.sleep(pause)
