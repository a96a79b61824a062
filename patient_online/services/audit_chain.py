"""The audit trail's hash chains: tampering with, removing or reordering an audit event is found.

Events are written in the transaction of the change they describe (``services/audit.py``) without a hash, so
writing one costs no extra statement and no lock. ``seal`` (``flask audit seal``, run every minute or two, and
before every retention run) links each new event into its chain: one chain per practice and kind of event
(``chain_key``), each event's ``hash = SHA-256(previous hash + canonical content)``, its place in ``chain_seq``.
The chain's head (``AuditChain``) is locked while sealing, so two sealers never fork a chain. ``verify``
(``flask audit verify``) recomputes every chain from its anchor and reports each event that does not match.

Chains are per kind of event because kinds are kept for different times (the retention policy): removing the
oldest events of a chain keeps it whole, with the last removed event's hash kept as the chain's anchor.
On PostgreSQL a trigger refuses any other change to a sealed event (migration 0009).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from patient_online.models import AuditChain, AuditEvent
from patient_online.models.governance import GENESIS_HASH

from .unit_of_work import AbstractUnitOfWork

# Events kept for a shorter time than the rest of the audit trail, by kind (see RETENTION in the settings).
SIGN_IN_ACTIONS = frozenset({"sign_in", "sign_in.failed", "sign_out"})
SEAL_BATCH = 500


def kind_of(action: str) -> str:
    """The kind of an audit event, for its chain and its retention period."""
    return "sign_in" if action in SIGN_IN_ACTIONS else "audit"


def chain_key(practice_id: int | None, action: str) -> str:
    return f"{practice_id or 0}:{kind_of(action)}"


def canonical(event: AuditEvent) -> str:
    """The event's content as one stable string: what its hash covers."""
    content = {
        "id": event.id,
        "seq": event.chain_seq,
        "at": event.at.isoformat(timespec="microseconds") if event.at else None,
        "action": event.action,
        "actor_user_id": event.actor_user_id,
        "actor_role": event.actor_role,
        "patient_id": event.patient_id,
        "subject_user_id": event.subject_user_id,
        "practice_id": event.practice_id,
        "detail": event.detail,
        "request_id": event.request_id,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def link_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256((prev_hash + canonical(event)).encode()).hexdigest()


@dataclass(frozen=True)
class Sealed:
    events: int
    chains: int


def seal(uow: AbstractUnitOfWork, *, batch: int = SEAL_BATCH) -> Sealed:
    """Link every committed event not yet in a chain into its chain, in batches; commits each batch."""
    total = 0
    touched: set[str] = set()
    while True:
        uow.writing()
        events = list(
            uow.session.scalars(
                select(AuditEvent).where(AuditEvent.chain_seq.is_(None)).order_by(AuditEvent.id).limit(batch)
            )
        )
        if not events:
            uow.commit()
            return Sealed(total, len(touched))
        by_chain: dict[str, list[AuditEvent]] = {}
        for event in events:
            by_chain.setdefault(chain_key(event.practice_id, event.action), []).append(event)
        for key in sorted(by_chain):  # one order everywhere: two sealers never wait on each other in a circle
            head = _head(uow.session, key)
            for event in by_chain[key]:
                event.chain_seq = head.seq + 1
                event.prev_hash = head.last_hash
                event.hash = link_hash(head.last_hash, event)
                head.seq, head.last_hash = event.chain_seq, event.hash
            head.sealed_at = uow.now()
            touched.add(key)
        total += len(events)
        uow.commit()


def _head(session: Session, key: str) -> AuditChain:
    head = session.scalar(select(AuditChain).where(AuditChain.chain_key == key).with_for_update())
    if head is None:
        head = AuditChain(chain_key=key, seq=0, last_hash=GENESIS_HASH, anchor_seq=0, anchor_hash=GENESIS_HASH)
        session.add(head)
        session.flush()
    return head


@dataclass
class ChainReport:
    chain_key: str
    events: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Verified:
    chains: tuple[ChainReport, ...]
    unsealed: int

    @property
    def ok(self) -> bool:
        return all(not c.problems for c in self.chains)

    @property
    def problems(self) -> list[str]:
        return [f"{c.chain_key}: {p}" for c in self.chains for p in c.problems]


def verify(session: Session) -> Verified:
    """Recompute every chain from its anchor; each broken link, missing event or changed event is named by id."""
    heads = {
        h.chain_key: (h.seq, h.last_hash, h.anchor_seq, h.anchor_hash) for h in session.scalars(select(AuditChain))
    }
    practices = set(session.scalars(select(AuditEvent.practice_id).where(AuditEvent.chain_seq.is_not(None)).distinct()))
    keys = set(heads) | {f"{p or 0}:{kind}" for p in practices for kind in ("audit", "sign_in")}
    reports = []
    for key in sorted(keys):
        report = ChainReport(key)
        head = heads.get(key)
        expected = (head[2], head[3]) if head else None
        for event in _chain(session, key):
            report.events += 1
            if expected is None:
                report.problems.append(f"event {event.id} belongs to a chain that has no head")
            else:
                seq, prev = expected
                if event.chain_seq != seq + 1:
                    report.problems.append(f"events missing before event {event.id} (expected number {seq + 1})")
                if event.prev_hash != prev:
                    report.problems.append(f"event {event.id} does not follow the event before it")
            if event.hash != link_hash(event.prev_hash or "", event):
                report.problems.append(f"event {event.id} was changed after it was sealed")
            expected = (event.chain_seq or 0, event.hash or "")
        if head is not None and expected != (head[0], head[1]):
            report.problems.append(f"the newest events are missing (the chain's head is number {head[0]})")
        if report.events or report.problems or head is not None:
            reports.append(report)
    unsealed = session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.chain_seq.is_(None))) or 0
    return Verified(tuple(reports), unsealed)


def in_chain(key: str) -> ColumnElement[bool]:
    """The SQL condition for the events of one chain."""
    practice, kind = key.split(":")
    practice_id = int(practice) or None
    where_practice = AuditEvent.practice_id.is_(None) if practice_id is None else AuditEvent.practice_id == practice_id
    where_kind = (
        AuditEvent.action.in_(SIGN_IN_ACTIONS) if kind == "sign_in" else AuditEvent.action.not_in(SIGN_IN_ACTIONS)
    )
    return and_(where_practice, where_kind, AuditEvent.chain_seq.is_not(None))


def _chain(session: Session, key: str) -> Iterator[AuditEvent]:
    """One chain's events in order, read in pages so memory stays small."""
    after = -1
    while True:
        page = list(
            session.scalars(
                select(AuditEvent)
                .where(in_chain(key), AuditEvent.chain_seq > after)
                .order_by(AuditEvent.chain_seq)
                .limit(SEAL_BATCH)
            )
        )
        if not page:
            return
        yield from page
        after = page[-1].chain_seq or 0
        for event in page:
            session.expunge(event)
