"""The retention policy: personal data is kept only as long as the settings say (``RETENTION``).

``flask retention run`` applies it, daily. Each kind is removed (or, for closed accounts, anonymised) in batches,
one transaction per batch, so a large backlog never holds long locks. Running it again changes nothing: every
step picks only what is still due. A run that changed something writes one ``retention.applied`` audit event
with its counts; ``--dry-run`` only counts.

Audit events are append-only (on PostgreSQL a trigger refuses to change or delete them). Retention is the one
deliberate way to remove them: it seals every event into its hash chain first, then removes the oldest events of
each chain while they are past their retention period, in chain order, with the transaction setting
``patient_online.audit_retention = on`` that the trigger allows; the last removed event's hash becomes the chain's
anchor, so ``flask audit verify`` still proves the events kept.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, select, text

from patient_online.models import (
    AccountClosure,
    AppointmentReminder,
    AuditChain,
    AuditEvent,
    BookingIntent,
    BookingRecord,
    ContactPreference,
    HeldValue,
    LinkRequest,
    Notification,
    OneTimeCode,
    OutboxMessage,
    PrescriptionOrder,
    SlotOffer,
    User,
    WaitlistEntry,
)

from . import audit_chain
from .unit_of_work import AbstractUnitOfWork

DEFAULTS: dict[str, Any] = {
    "audit_events_years": 8,
    "sign_in_history_years": 2,
    "closed_account_months": 6,
    "messages_days": 365,
    "delivered_outbox_days": 30,
    "one_time_codes_days": 7,
    "link_requests_days": 365,
    "booking_intents_days": 30,
    "gateway_requests_years": 2,
    "held_values_expired": True,
    "batch": 1000,
}

# Every table of the gateway that holds personal data, and what the policy does with it. Tables not listed keep
# their rows as long as the thing they describe exists: patient (the practice's registered patients), account_link
# and proxy_link (current access, ended ones kept as the practice's record), verification (append-only evidence of
# identity checks, kept with the patient), linkage_letter (hashed keys, expire), staff_membership, patient_system_id,
# contact_preference (removed with a closed account's details), handled_message (goes with its outbox message),
# system_migration_patient (kept with the practice's record of a change of clinical system), waitlist_look (one row
# per practice, no personal data).
KINDS: tuple[tuple[str, str], ...] = (
    ("audit_events", "audit events (views and changes)"),
    ("sign_in_history", "sign-in history"),
    ("closed_accounts", "closed accounts anonymised"),
    ("messages", "messages sent"),
    ("delivered_outbox", "delivered clinical-system writes"),
    ("one_time_codes", "used or expired security codes"),
    ("held_values", "expired held page values"),
    ("link_requests", "decided link requests"),
    ("booking_intents", "old booking intents"),
    ("prescription_orders", "old repeat prescription requests"),
    ("booking_records", "old appointment booking records"),
    ("appointment_reminders", "reminders of past appointments"),
    ("slot_offers", "old earlier-appointment offers"),
    ("waitlist_entries", "old earlier-appointment requests"),
)


@dataclass(frozen=True)
class RetentionReport:
    dry_run: bool
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def policy(uow: AbstractUnitOfWork) -> dict[str, Any]:
    return {**DEFAULTS, **(uow.setting("RETENTION") or {})}


def _years(now: dt.datetime, years: float) -> dt.datetime:
    return now - dt.timedelta(days=round(365.25 * years))


def run(uow: AbstractUnitOfWork, *, dry_run: bool = False) -> RetentionReport:
    """Apply (or, with ``dry_run``, count) the retention policy; idempotent and batched."""
    rules = policy(uow)
    now = uow.now()
    batch = int(rules["batch"])
    simple: dict[str, tuple[Any, ColumnElement[bool]]] = {
        "messages": (Notification, Notification.created_at < now - dt.timedelta(days=rules["messages_days"])),
        "delivered_outbox": (
            OutboxMessage,
            and_(
                OutboxMessage.status == "delivered",
                OutboxMessage.delivered_at < now - dt.timedelta(days=rules["delivered_outbox_days"]),
            ),
        ),
        "one_time_codes": (
            OneTimeCode,
            OneTimeCode.expires_at < now - dt.timedelta(days=rules["one_time_codes_days"]),
        ),
        "held_values": (
            HeldValue,
            HeldValue.expires_at < now if rules["held_values_expired"] else HeldValue.id.is_(None),
        ),
        "link_requests": (
            LinkRequest,
            and_(
                LinkRequest.status != "pending",
                LinkRequest.created_at < now - dt.timedelta(days=rules["link_requests_days"]),
            ),
        ),
        "booking_intents": (
            BookingIntent,
            BookingIntent.created_at < now - dt.timedelta(days=rules["booking_intents_days"]),
        ),
        "prescription_orders": (
            PrescriptionOrder,
            and_(
                PrescriptionOrder.created_at < _years(now, rules["gateway_requests_years"]),
                PrescriptionOrder.status != "queued",
            ),
        ),
        "booking_records": (BookingRecord, BookingRecord.created_at < _years(now, rules["gateway_requests_years"])),
        "appointment_reminders": (
            AppointmentReminder,
            AppointmentReminder.starts_at < now - dt.timedelta(days=rules["messages_days"]),
        ),
        "slot_offers": (  # before their entries, which they belong to
            SlotOffer,
            and_(
                SlotOffer.decided_at.is_not(None),
                SlotOffer.decided_at < _years(now, rules["gateway_requests_years"]),
            ),
        ),
        "waitlist_entries": (
            WaitlistEntry,
            and_(
                WaitlistEntry.active_key.is_(None),
                WaitlistEntry.ended_at < _years(now, rules["gateway_requests_years"]),
                ~WaitlistEntry.id.in_(select(SlotOffer.entry_id)),
            ),
        ),
    }
    cutoffs = {
        "audit": _years(now, rules["audit_events_years"]),
        "sign_in": _years(now, rules["sign_in_history_years"]),
    }
    closed_before = now - dt.timedelta(days=round(30.44 * rules["closed_account_months"]))

    counts: dict[str, int] = {}
    if dry_run:
        counts["audit_events"] = _count_audit(uow, cutoffs["audit"], sign_in=False)
        counts["sign_in_history"] = _count_audit(uow, cutoffs["sign_in"], sign_in=True)
        counts["closed_accounts"] = _count(uow, AccountClosure, _closed_due(closed_before))
        for kind, (model, where) in simple.items():
            counts[kind] = _count(uow, model, where)
        uow.rollback()
        return RetentionReport(True, {k: counts.get(k, 0) for k, _ in KINDS})

    audit_chain.seal(uow)
    removed_audit = _remove_audit(uow, cutoffs, batch)
    counts["audit_events"] = removed_audit["audit"]
    counts["sign_in_history"] = removed_audit["sign_in"]
    counts["closed_accounts"] = _anonymise_closed(uow, closed_before, batch)
    for kind, (model, where) in simple.items():
        counts[kind] = _remove(uow, model, where, batch)
    report = RetentionReport(False, {k: counts.get(k, 0) for k, _ in KINDS})
    if report.total:
        uow.writing()
        uow.audit("retention.applied", actor_role="system", **{k: v for k, v in report.counts.items() if v})
        uow.commit()
    return report


# Simple kinds ----------------------------------------------------------------------------------------------
def _count(uow: AbstractUnitOfWork, model: Any, where: ColumnElement[bool]) -> int:
    return int(uow.session.scalar(select(func.count()).select_from(model).where(where)) or 0)


def _remove(uow: AbstractUnitOfWork, model: Any, where: ColumnElement[bool], batch: int) -> int:
    key = model.__mapper__.primary_key[0]
    removed = 0
    while True:
        uow.writing()
        ids = list(uow.session.scalars(select(key).where(where).order_by(key).limit(batch)))
        if not ids:
            uow.commit()
            return removed
        uow.session.execute(delete(model).where(key.in_(ids)), execution_options={"synchronize_session": False})
        removed += len(ids)
        uow.commit()


# Closed accounts -------------------------------------------------------------------------------------------
def _closed_due(before: dt.datetime) -> ColumnElement[bool]:
    return and_(AccountClosure.anonymised_at.is_(None), AccountClosure.closed_at < before)


def _anonymise_closed(uow: AbstractUnitOfWork, before: dt.datetime, batch: int) -> int:
    done = 0
    while True:
        uow.writing()
        closures = list(
            uow.session.scalars(
                select(AccountClosure).where(_closed_due(before)).order_by(AccountClosure.id).limit(batch)
            )
        )
        if not closures:
            uow.commit()
            return done
        for closure in closures:
            user = uow.session.get(User, closure.user_id)
            if user is not None:
                old_addresses = [a for a in (user.email, user.mobile) if a]
                uow.session.execute(delete(OneTimeCode).where(OneTimeCode.user_id == user.id))
                uow.session.execute(delete(LinkRequest).where(LinkRequest.user_id == user.id))
                uow.session.execute(delete(ContactPreference).where(ContactPreference.user_id == user.id))
                uow.session.execute(delete(Notification).where(Notification.to.in_(old_addresses)))
                user.email = f"closed-{user.id}@closed.invalid"
                user.mobile = ""
                user.given_name = ""
                user.family_name = ""
                user.password_hash = ""
                user.totp_secret = ""
                user.totp_enrolled_at = None
                user.nhs_login_sub = None
                user.identity_proofing_level = ""
                user.last_sign_in_at = None
            closure.anonymised_at = uow.now()
            uow.audit("account.anonymised", actor_role="system", subject_user_id=closure.user_id)
        done += len(closures)
        uow.commit()


# Audit events ----------------------------------------------------------------------------------------------
def _in_kind(sign_in: bool) -> ColumnElement[bool]:
    actions = audit_chain.SIGN_IN_ACTIONS
    return AuditEvent.action.in_(actions) if sign_in else AuditEvent.action.not_in(actions)


def _count_audit(uow: AbstractUnitOfWork, cutoff: dt.datetime, *, sign_in: bool) -> int:
    return _count(uow, AuditEvent, and_(_in_kind(sign_in), AuditEvent.at < cutoff))


def _allow_audit_removal(uow: AbstractUnitOfWork) -> None:
    """The deliberate path through the append-only trigger: for this transaction only (PostgreSQL)."""
    if uow.session.get_bind().dialect.name == "postgresql":
        uow.session.execute(text("SET LOCAL patient_online.audit_retention = 'on'"))


def _remove_audit(uow: AbstractUnitOfWork, cutoffs: dict[str, dt.datetime], batch: int) -> dict[str, int]:
    removed = {"audit": 0, "sign_in": 0}
    keys = list(uow.session.scalars(select(AuditChain.chain_key).order_by(AuditChain.chain_key)))
    uow.rollback()
    for key in keys:
        kind = key.split(":")[1]
        in_chain = audit_chain.in_chain(key)
        # Only the chain's oldest run of events past their period goes, so the chain stays whole: an old event
        # sealed after a newer one waits until it is at the front.
        first_kept = uow.session.scalar(
            select(func.min(AuditEvent.chain_seq)).where(in_chain, AuditEvent.at >= cutoffs[kind])
        )
        last_due = (
            first_kept - 1
            if first_kept is not None
            else uow.session.scalar(select(func.max(AuditEvent.chain_seq)).where(in_chain))
        )
        uow.rollback()
        if not last_due:
            continue
        removed[kind] += _remove_chain_up_to(uow, key, int(last_due), batch)
    return removed


def _remove_chain_up_to(uow: AbstractUnitOfWork, key: str, last: int, batch: int) -> int:
    """Remove the chain's events numbered up to ``last``, oldest first; the anchor moves with each batch."""
    removed = 0
    while True:
        uow.writing()
        head = uow.session.scalar(select(AuditChain).where(AuditChain.chain_key == key).with_for_update())
        assert head is not None
        rows = list(
            uow.session.execute(
                select(AuditEvent.id, AuditEvent.chain_seq, AuditEvent.hash)
                .where(audit_chain.in_chain(key), AuditEvent.chain_seq <= last)
                .order_by(AuditEvent.chain_seq)
                .limit(batch)
            )
        )
        if not rows:
            uow.commit()
            return removed
        _allow_audit_removal(uow)
        uow.session.execute(
            delete(AuditEvent).where(AuditEvent.id.in_([r.id for r in rows])),
            execution_options={"synchronize_session": False},
        )
        head.anchor_seq, head.anchor_hash = int(rows[-1].chain_seq), str(rows[-1].hash)
        removed += len(rows)
        uow.commit()
