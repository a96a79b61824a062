"""A practice's move between clinical systems, step by step, with its patients keeping their online services.

The steps (each audited, each refused from the wrong state; see ``domain.system_migration``):

1. ``plan_migration``: the target adapter and options, the cut-over window, what patients read meanwhile.
2. ``freeze``: at the window's start, bookings, cancellations and orders pause (the practice's switches for
   appointments and prescriptions go off with the plan's message; reads still come from the old system), and
   every write queued for the old system is held in the outbox (status ``held``), so nothing reaches the
   wrong system.
3. ``cut_over``: the practice's adapter becomes the target, then ``match_patients`` finds every patient again
   in the new system by NHS number and date of birth, in batches, with no database transaction open during
   the calls. A matched patient keeps their account, verification, proxies and settings with the new id (both
   systems' ids are kept); anyone else gets no id at the new system and waits on reception's list, seeing
   "we are checking your details" instead of an error. Repeat requests held for matched patients are sent to
   the new system once each (a new message whose key derives from the old one); the rest wait for reception.
4. ``finish``, or ``roll_back`` within the window: the old adapter, ids, switches and queued writes return.

``rehearse`` runs the matching against the target without changing anything (``flask practice migrate ODS
--dry-run``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select

from patient_online.adapters import registry
from patient_online.adapters.registry import OptionsInvalid
from patient_online.crypto import encrypt
from patient_online.domain.access import Service
from patient_online.domain.errors import ClinicalSystemError, InputError, NotFound
from patient_online.domain.outbox import MessageStatus
from patient_online.domain.patients import Demographics, PatientRef
from patient_online.domain.ports import ClinicalSystem
from patient_online.domain.system_migration import (
    Match,
    MatchOutcome,
    MigrationRefused,
    MigrationState,
    freeze_message,
    match_patient,
    require_step,
)
from patient_online.models import (
    BookingIntent,
    OutboxMessage,
    Patient,
    PatientSystemId,
    Practice,
    PrescriptionOrder,
    ServiceSwitch,
    SystemMigration,
)
from patient_online.models.system_migration import MigrationPatient

from . import system_ids
from .unit_of_work import AbstractUnitOfWork

LONDON = ZoneInfo("Europe/London")
HELD = "held"  # an outbox message kept back from the old system during a migration
MOVED = "moved"  # a held message replaced by one for the new system
PAUSED_SERVICES = (Service.APPOINTMENTS, Service.PRESCRIPTIONS)
PRESCRIPTION_KIND = "prescription.request"
# Queued writes for the clinical system (emails and texts in the same outbox go on as usual).
BOOKING_CHECK_KIND = "appointment.booking_check"
CLINICAL_KINDS = (PRESCRIPTION_KIND, BOOKING_CHECK_KIND, "appointment.cancel")
# Held at the freeze: writes. A booking check only reads the old system's list, so it may finish meanwhile;
# one still queued at the cut-over is held then.
WRITE_KINDS = (PRESCRIPTION_KIND, "appointment.cancel")
DEFAULT_BATCH = 50


# What callers get back --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PatientOutcome:
    patient_id: int
    nhs_number: str
    name: str
    outcome: MatchOutcome

    @property
    def reason(self) -> str:
        return self.outcome.reason


@dataclass(frozen=True)
class MatchReport:
    """How many linked patients the new system matched, and who waits for reception and why."""

    linked: int
    matched: int
    waiting: tuple[PatientOutcome, ...] = ()
    requests_resent: int = 0
    requests_waiting: int = 0
    held_other: int = 0

    def lines(self) -> list[str]:
        out = [f"Linked patients: {self.linked}", f"Matched in the new system: {self.matched}"]
        counts = Counter(w.outcome for w in self.waiting)
        for outcome in MatchOutcome:
            if counts[outcome]:
                out.append(f"For reception ({outcome.reason.lower()}): {counts[outcome]}")
        if self.requests_resent or self.requests_waiting or self.held_other:
            out.append(f"Queued repeat requests sent to the new system: {self.requests_resent}")
            out.append(f"Queued repeat requests waiting for reception: {self.requests_waiting}")
            out.append(f"Other queued changes for reception to check: {self.held_other}")
        return out


@dataclass(frozen=True)
class MigrationView:
    """A plan as the system administrator and the practice manager see it."""

    id: int
    practice_ods: str
    practice_name: str
    state: MigrationState
    source_adapter: str
    target_adapter: str
    target_options: dict[str, str]
    window_start: dt.datetime
    window_end: dt.datetime
    patient_message: str
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> list[MigrationState]:
        from patient_online.domain.system_migration import NEXT

        return sorted(NEXT[self.state], key=list(MigrationState).index)


@dataclass(frozen=True)
class WaitingPatient:
    """One patient on reception's list after a system change, with what is waiting for them."""

    patient_id: int
    nhs_number: str
    name: str
    date_of_birth: dt.date
    reason: str
    queued_requests: int


@dataclass(frozen=True)
class CheckingList:
    practice_name: str
    state: MigrationState | None
    patients: tuple[WaitingPatient, ...]
    other_changes: tuple[str, ...] = ()


# Helpers ------------------------------------------------------------------------------------------------------
def system_key(practice_ods: str, adapter: str, options: Mapping[str, Any]) -> str:
    """Which clinical system an adapter reaches, named as ``system_ids`` names a practice's current one."""
    return system_ids.key_for(practice_ods, adapter, options)


def _practice(uow: AbstractUnitOfWork, ods_code: str) -> Practice:
    practice = uow.session.scalar(select(Practice).where(Practice.ods_code == ods_code.strip().upper()))
    if practice is None:
        raise NotFound(f"No practice with ODS code {ods_code}.")
    return practice


def open_plan(uow: AbstractUnitOfWork, practice: Practice) -> SystemMigration | None:
    """The practice's plan that is not finished or rolled back, if any."""
    open_states = [s.value for s in MigrationState if s.open]
    return uow.session.scalar(
        select(SystemMigration)
        .where(SystemMigration.practice_id == practice.id, SystemMigration.state.in_(open_states))
        .order_by(SystemMigration.id.desc())
    )


def paused_by_plan(uow: AbstractUnitOfWork, practice: Practice, service: Service) -> SystemMigration | None:
    """The plan that has paused this service (from the freeze until patients are matched), if any: switching
    it back on meanwhile would let patients book or order in a system that is being replaced."""
    if service not in PAUSED_SERVICES:
        return None
    plan = open_plan(uow, practice)
    paused = (MigrationState.FREEZING.value, MigrationState.CUT_OVER.value)
    return plan if plan is not None and plan.state in paused else None


def latest_plan(uow: AbstractUnitOfWork, practice: Practice) -> SystemMigration | None:
    return uow.session.scalar(
        select(SystemMigration).where(SystemMigration.practice_id == practice.id).order_by(SystemMigration.id.desc())
    )


def _require_plan(uow: AbstractUnitOfWork, practice: Practice) -> SystemMigration:
    plan = open_plan(uow, practice)
    if plan is None:
        raise MigrationRefused(f"{practice.name} has no clinical system change in progress.")
    return plan


def _view(plan: SystemMigration) -> MigrationView:
    secrets = registry.get(plan.target_adapter).secret_options if plan.target_adapter in registry.names() else set()
    return MigrationView(
        id=plan.id,
        practice_ods=plan.practice.ods_code,
        practice_name=plan.practice.name,
        state=MigrationState(plan.state),
        source_adapter=plan.source_adapter,
        target_adapter=plan.target_adapter,
        target_options={k: ("(kept secret)" if k in secrets else str(v)) for k, v in plan.target_options.items()},
        window_start=plan.window_start,
        window_end=plan.window_end,
        patient_message=plan.patient_message,
        report=dict(plan.report or {}),
    )


def _move(
    uow: AbstractUnitOfWork, plan: SystemMigration, to: MigrationState, actor_id: int | None, **detail: Any
) -> None:
    require_step(MigrationState(plan.state), to)
    before = plan.state
    plan.state = to.value
    plan.updated_at = uow.now()
    uow.audit(
        f"migration.{to.value}",
        actor_id=actor_id,
        actor_role="system_admin" if actor_id else "system",
        practice_id=plan.practice_id,
        migration_id=plan.id,
        previous=before,
        **detail,
    )


def _target_practice(plan: SystemMigration) -> Practice:
    """A stand-in practice (never saved) pointing at the plan's target, to reach the new system."""
    return Practice(
        ods_code=plan.practice.ods_code,
        name=plan.practice.name,
        adapter_name=plan.target_adapter,
        adapter_options=dict(plan.target_options),
    )


# 1. The plan --------------------------------------------------------------------------------------------------
def plan_migration(
    uow: AbstractUnitOfWork,
    actor_id: int | None,
    ods_code: str,
    target_adapter: str,
    options: Mapping[str, str],
    window_start: dt.datetime,
    window_end: dt.datetime,
    patient_message: str = "",
) -> MigrationView:
    """Plan a practice's move to ``target_adapter`` in the window; one open plan per practice."""
    uow.writing()
    practice = _practice(uow, ods_code)
    if open_plan(uow, practice) is not None:
        raise InputError(f"{practice.name} already has a clinical system change planned.", "adapter")
    if target_adapter not in registry.names():
        raise InputError(
            f"No clinical-system adapter called '{target_adapter}'. Known: {', '.join(registry.names())}", "adapter"
        )
    adapter = registry.get(target_adapter)
    given = {k: v.strip() for k, v in options.items() if v.strip()}
    try:
        cleaned = adapter.validate(given)
    except OptionsInvalid as exc:
        raise InputError(str(exc), fields=exc.errors) from exc
    if window_end <= window_start:
        raise InputError("The window must end after it starts", "window_end")
    source_key = system_key(practice.ods_code, practice.adapter_name, practice.adapter_options or {})
    target_key = system_key(practice.ods_code, target_adapter, cleaned)
    if target_key == source_key:
        raise InputError("The practice already uses this clinical system. Choose the new system's settings.", "adapter")
    message = patient_message.strip() or freeze_message(
        practice.name, window_end.astimezone(LONDON).date(), practice.phone
    )
    plan = SystemMigration(
        practice_id=practice.id,
        state=MigrationState.PLANNED.value,
        source_adapter=practice.adapter_name,
        source_options=dict(practice.adapter_options or {}),
        source_key=source_key,
        target_adapter=target_adapter,
        target_options={k: (encrypt(v) if k in adapter.secret_options else v) for k, v in cleaned.items()},
        target_key=target_key,
        window_start=window_start,
        window_end=window_end,
        patient_message=message[:500],
        saved_switches=[],
        report={},
        created_by_id=actor_id,
        updated_at=uow.now(),
    )
    plan.practice = practice
    uow.session.add(plan)
    uow.flush()
    uow.audit(
        "migration.planned",
        actor_id=actor_id,
        actor_role="system_admin" if actor_id else "system",
        practice_id=practice.id,
        migration_id=plan.id,
        source=practice.adapter_name,
        target=target_adapter,
        options=sorted(cleaned),
        window_start=window_start.isoformat(),
        window_end=window_end.isoformat(),
    )
    uow.commit()
    return _view(plan)


def view_plan(uow: AbstractUnitOfWork, ods_code: str) -> MigrationView | None:
    """The practice's newest plan (open or not), or None."""
    plan = latest_plan(uow, _practice(uow, ods_code))
    return _view(plan) if plan else None


# 2. Freeze ----------------------------------------------------------------------------------------------------
def freeze(uow: AbstractUnitOfWork, actor_id: int | None, ods_code: str) -> MigrationView:
    """At the window's start: pause bookings, cancellations and orders, and hold what is queued for the old
    system."""
    uow.writing()
    practice = _practice(uow, ods_code)
    plan = _require_plan(uow, practice)
    require_step(MigrationState(plan.state), MigrationState.FREEZING)
    if uow.now() < plan.window_start:
        raise MigrationRefused(f"The window starts at {_when(plan.window_start)}: changes cannot pause before then.")
    saved: list[dict[str, Any]] = []
    for service in PAUSED_SERVICES:
        switch = practice.switch(service.value)
        if switch is None:
            switch = ServiceSwitch(service=service.value, enabled=False)
            practice.switches.append(switch)
            saved.append({"service": service.value, "missing": True})
        else:
            saved.append(
                {
                    "service": service.value,
                    "enabled": switch.enabled,
                    "message": switch.message,
                    "off_reason": switch.off_reason,
                    "expected_return": switch.expected_return.isoformat() if switch.expected_return else None,
                }
            )
        switch.enabled = False
        switch.message = plan.patient_message
        switch.off_reason = "The practice is changing its clinical system"
        switch.expected_return = plan.window_end.astimezone(LONDON).date()
        switch.updated_at = uow.now()
        switch.updated_by_id = actor_id
    plan.saved_switches = saved
    held, busy = _hold_queued(uow, practice, WRITE_KINDS)
    _move(uow, plan, MigrationState.FREEZING, actor_id, held=held, still_sending=busy)
    uow.commit()
    return _view(plan)


def _hold_queued(uow: AbstractUnitOfWork, practice: Practice, kinds: Sequence[str] = CLINICAL_KINDS) -> tuple[int, int]:
    """Hold every pending message for the practice that no worker is sending now; count those still being sent."""
    now = uow.now()
    pending = uow.session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.practice_id == practice.id,
            OutboxMessage.status == MessageStatus.PENDING.value,
            OutboxMessage.kind.in_(kinds),
        )
    ).all()
    held = busy = 0
    for message in pending:
        if message.locked_until is not None and message.locked_until > now:
            busy += 1  # a worker holds its lease: it finishes with the old system, or the lease runs out
            continue
        message.status = HELD
        message.locked_by = ""
        message.locked_until = None
        held += 1
    return held, busy


def _close_settled_checks(uow: AbstractUnitOfWork, practice: Practice) -> None:
    """Booking checks whose booking was recorded at once (its intent is gone) have nothing left to check: they
    close now rather than wait for reception after the cut-over."""
    checks = uow.session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.practice_id == practice.id,
            OutboxMessage.kind == BOOKING_CHECK_KIND,
            OutboxMessage.status.in_([MessageStatus.PENDING.value, HELD]),
            or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until <= uow.now()),
        )
    ).all()
    for check in checks:
        intent = uow.session.scalar(
            select(BookingIntent.id).where(
                BookingIntent.patient_id == check.payload.get("patient_id"),
                BookingIntent.idempotency_key == check.payload.get("intent"),
            )
        )
        if intent is None:
            check.status = MessageStatus.DELIVERED.value
            check.result = {"outcome": "recorded"}
            check.delivered_at = uow.now()


# 3. Cut over and match ----------------------------------------------------------------------------------------
def cut_over(
    uow: AbstractUnitOfWork, actor_id: int | None, ods_code: str, *, batch_size: int = DEFAULT_BATCH
) -> MatchReport:
    """Point the practice at the new system, then match every linked patient there (see ``match_patients``)."""
    uow.writing()
    practice = _practice(uow, ods_code)
    plan = _require_plan(uow, practice)
    require_step(MigrationState(plan.state), MigrationState.CUT_OVER)
    _close_settled_checks(uow, practice)
    held, busy = _hold_queued(uow, practice)
    if busy:
        uow.rollback()
        raise MigrationRefused(
            f"{busy} queued change(s) are being sent to the old system right now. Try again in a minute."
        )
    plan.source_adapter = practice.adapter_name
    plan.source_options = dict(practice.adapter_options or {})
    practice.adapter_name = plan.target_adapter
    practice.adapter_options = dict(plan.target_options)
    _move(
        uow, plan, MigrationState.CUT_OVER, actor_id, held=held, source=plan.source_adapter, target=plan.target_adapter
    )
    uow.commit()
    return match_patients(uow, actor_id, ods_code, batch_size=batch_size)


def _linked_rows(
    uow: AbstractUnitOfWork, practice: Practice, plan: SystemMigration, after_id: int, limit: int
) -> list[tuple[int, str, dt.date, str, str]]:
    """The next batch of the practice's patients not yet matched in this migration."""
    done = select(MigrationPatient.patient_id).where(
        MigrationPatient.migration_id == plan.id, MigrationPatient.outcome == MatchOutcome.MATCHED.value
    )
    rows = uow.session.execute(
        select(Patient.id, Patient.nhs_number, Patient.date_of_birth, Patient.family_name, Patient.clinical_id)
        .where(Patient.practice_id == practice.id, Patient.id > after_id, Patient.id.not_in(done))
        .order_by(Patient.id)
        .limit(limit)
    ).tuples()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _ask(system: ClinicalSystem, nhs_number: str, family_name: str, born: dt.date) -> Match:
    """Find one patient in the new system and decide whether it is safely them (no transaction is open)."""
    try:
        found = system.find_patient(nhs_number)
        twins: Sequence[Demographics] = ()
        search = getattr(system, "search_patients", None)
        if found is not None and search is not None and family_name:
            twins = search(found.family_name, found.date_of_birth)
    except ClinicalSystemError:
        return Match(MatchOutcome.NOT_ASKED)
    return match_patient(born, found, twins)


def match_patients(
    uow: AbstractUnitOfWork, actor_id: int | None, ods_code: str, *, batch_size: int = DEFAULT_BATCH
) -> MatchReport:
    """Match the practice's patients in the new system, batch by batch, then send held repeat requests on.

    Runs again safely (reception's "try again" and a second run after the link failed): matched patients are
    skipped, the rest are asked again."""
    uow.writing()
    practice = _practice(uow, ods_code)
    plan = _require_plan(uow, practice)
    if MigrationState(plan.state) not in (MigrationState.CUT_OVER, MigrationState.MATCHING):
        raise MigrationRefused("Patients are matched after the cut-over.")
    after = 0
    while True:
        batch = _linked_rows(uow, practice, plan, after, batch_size)
        if not batch:
            break
        after = batch[-1][0]
        system = uow.clinical(practice)
        uow.release()
        answers = {pid: _ask(system, nhs, family, born) for pid, nhs, born, family, _old in batch}
        uow.writing()
        _record_batch(uow, plan, batch, answers)
        uow.commit()
    resent, waiting, other = _send_on_held(uow, plan, practice)
    uow.join_writing()
    plan = _require_plan(uow, practice)
    report = _report(uow, plan, resent, waiting, other)
    plan.report = {
        "linked": report.linked,
        "matched": report.matched,
        "waiting": len(report.waiting),
        "requests_resent": report.requests_resent,
        "requests_waiting": report.requests_waiting,
        "held_other": report.held_other,
    }
    if MigrationState(plan.state) is MigrationState.CUT_OVER:
        _restore_switches(practice, plan, uow.now())
        _move(uow, plan, MigrationState.MATCHING, actor_id, **plan.report)
    else:
        uow.audit(
            "migration.rematched",
            actor_id=actor_id,
            actor_role="system",
            practice_id=practice.id,
            migration_id=plan.id,
            **plan.report,
        )
    uow.commit()
    return report


def _remember_id(uow: AbstractUnitOfWork, patient_id: int, key: str, logical_id: str) -> None:
    if not logical_id:
        return
    row = uow.session.scalar(
        select(PatientSystemId).where(PatientSystemId.patient_id == patient_id, PatientSystemId.system_key == key)
    )
    if row is None:
        uow.session.add(
            PatientSystemId(patient_id=patient_id, system_key=key, logical_id=logical_id, found_at=uow.now())
        )
    elif row.logical_id != logical_id:
        row.logical_id, row.found_at = logical_id, uow.now()


def _record_batch(
    uow: AbstractUnitOfWork,
    plan: SystemMigration,
    batch: Iterable[tuple[int, str, dt.date, str, str]],
    answers: Mapping[int, Match],
) -> None:
    for pid, _nhs, _born, _family, current in batch:
        patient = uow.session.get_one(Patient, pid)
        entry = uow.session.scalar(
            select(MigrationPatient).where(MigrationPatient.migration_id == plan.id, MigrationPatient.patient_id == pid)
        )
        if entry is None:
            entry = MigrationPatient(
                migration_id=plan.id, patient_id=pid, old_id=current, attempts=0, outcome=answers[pid].outcome.value
            )
            uow.session.add(entry)
        entry.attempts = (entry.attempts or 0) + 1
        answer = answers[pid]
        _remember_id(uow, pid, plan.source_key, entry.old_id)
        entry.outcome = answer.outcome.value
        if answer.outcome is MatchOutcome.MATCHED:
            entry.new_id = answer.new_id
            entry.resolved_at = uow.now()
            patient.clinical_id = answer.new_id
            _remember_id(uow, pid, plan.target_key, answer.new_id)
            action = "migration.patient_matched"
        else:
            patient.clinical_id = ""  # no id at the new system yet: nothing is sent there for them
            action = "migration.patient_unmatched"
        uow.audit(
            action,
            actor_role="system",
            patient_id=pid,
            practice_id=plan.practice_id,
            migration_id=plan.id,
            outcome=answer.outcome.value,
        )


def _new_key(old_key: str, plan: SystemMigration) -> str:
    """The key of a held write sent again to the new system: the same on every run, so it is sent once."""
    return "mig-" + hashlib.sha256(f"{plan.id}:{old_key}".encode()).hexdigest()[:48]


def _send_on_held(uow: AbstractUnitOfWork, plan: SystemMigration, practice: Practice) -> tuple[int, int, int]:
    """Re-send held repeat requests of matched patients to the new system, once each; count what waits.

    The order names medicines by the old system's ids: each is found again by name in the patient's repeat
    template at the new system (read with no transaction open). An order whose medicines cannot all be found
    waits for reception, as do the requests of patients not matched yet and other held writes."""
    held = uow.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.practice_id == plan.practice_id, OutboxMessage.status == HELD)
        .order_by(OutboxMessage.id)
    ).all()
    other = sum(1 for m in held if m.kind != PRESCRIPTION_KIND)
    wanted: dict[int, tuple[int, PatientRef, list[str]]] = {}
    waiting = 0
    for message in held:
        if message.kind != PRESCRIPTION_KIND:
            continue
        patient = uow.session.get(Patient, message.payload.get("patient_id"))
        order = uow.session.get(PrescriptionOrder, message.payload.get("order_id"))
        if patient is None or order is None or not patient.clinical_id:
            waiting += 1
            continue
        ref = PatientRef(practice.ods_code, patient.nhs_number, patient.clinical_id)
        wanted[message.id] = (patient.id, ref, [str(n) for n in order.item_names])
    if not wanted:
        return 0, waiting, other
    system = uow.clinical(practice)
    uow.release()
    templates: dict[PatientRef, dict[str, str]] = {}
    for _pid, ref, _names in wanted.values():
        if ref not in templates:
            try:
                templates[ref] = {item.name: item.id for item in system.list_repeat_template(ref)}
            except (ClinicalSystemError, NotFound):
                templates[ref] = {}
    uow.writing()
    resent = 0
    for message_id, (pid, ref, names) in wanted.items():
        message = uow.session.get_one(OutboxMessage, message_id)
        order = uow.session.get(PrescriptionOrder, message.payload.get("order_id"))
        found = templates.get(ref, {})
        if message.status != HELD or order is None or not names or any(n not in found for n in names):
            waiting += message.status == HELD
            continue
        key = _new_key(message.idempotency_key, plan)
        if uow.session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)) is None:
            uow.session.add(
                OutboxMessage(
                    practice_id=plan.practice_id,
                    kind=message.kind,
                    payload={**message.payload, "replaces": message.id, "old_item_ids": list(order.item_ids)},
                    idempotency_key=key,
                    status=MessageStatus.PENDING.value,
                    attempts=0,
                    next_attempt_at=uow.now(),
                )
            )
        order.item_ids = [found[n] for n in names]
        message.status = MOVED
        message.result = {**(message.result or {}), "moved_to": key}
        uow.audit(
            "migration.request_resent",
            actor_role="system",
            patient_id=pid,
            practice_id=plan.practice_id,
            migration_id=plan.id,
            order_id=order.id,
        )
        resent += 1
    return resent, waiting, other


def _report(uow: AbstractUnitOfWork, plan: SystemMigration, resent: int, waiting: int, other: int) -> MatchReport:
    rows = uow.session.execute(
        select(MigrationPatient.outcome, Patient.id, Patient.nhs_number, Patient.given_name, Patient.family_name)
        .join(Patient, Patient.id == MigrationPatient.patient_id)
        .where(MigrationPatient.migration_id == plan.id)
        .order_by(Patient.family_name, Patient.given_name)
    ).tuples()
    matched, unmatched = 0, []
    for outcome, pid, nhs, given, family in rows:
        if outcome == MatchOutcome.MATCHED.value:
            matched += 1
        else:
            unmatched.append(PatientOutcome(pid, nhs, f"{given} {family}".strip(), MatchOutcome(outcome)))
    return MatchReport(matched + len(unmatched), matched, tuple(unmatched), resent, waiting, other)


def _restore_switches(practice: Practice, plan: SystemMigration, now: dt.datetime) -> None:
    for saved in plan.saved_switches or []:
        switch = practice.switch(str(saved["service"]))
        if switch is None:
            continue
        if saved.get("missing"):
            switch.enabled, switch.message, switch.off_reason, switch.expected_return = False, "", "", None
        else:
            switch.enabled = bool(saved["enabled"])
            switch.message = str(saved.get("message") or "")
            switch.off_reason = str(saved.get("off_reason") or "")
            back = saved.get("expected_return")
            switch.expected_return = dt.date.fromisoformat(back) if back else None
        switch.updated_at = now


# 4. Finish or roll back ---------------------------------------------------------------------------------------
def finish(uow: AbstractUnitOfWork, actor_id: int | None, ods_code: str) -> MigrationView:
    """The change is complete: the plan closes and can no longer be rolled back."""
    uow.writing()
    plan = _require_plan(uow, _practice(uow, ods_code))
    _move(uow, plan, MigrationState.DONE, actor_id)
    uow.commit()
    return _view(plan)


def roll_back(uow: AbstractUnitOfWork, actor_id: int | None, ods_code: str) -> MigrationView:
    """Within the window: the old adapter, every patient's old id, the switches and the held writes return."""
    uow.writing()
    practice = _practice(uow, ods_code)
    plan = _require_plan(uow, practice)
    require_step(MigrationState(plan.state), MigrationState.ROLLED_BACK)
    if MigrationState(plan.state) is not MigrationState.PLANNED and uow.now() > plan.window_end:
        raise MigrationRefused(
            f"The window ended at {_when(plan.window_end)}: the change can no longer be rolled back."
        )
    state = MigrationState(plan.state)
    if state in (MigrationState.CUT_OVER, MigrationState.MATCHING):
        practice.adapter_name = plan.source_adapter
        practice.adapter_options = dict(plan.source_options)
        for entry in uow.session.scalars(select(MigrationPatient).where(MigrationPatient.migration_id == plan.id)):
            uow.session.get_one(Patient, entry.patient_id).clinical_id = entry.old_id
    if state is MigrationState.FREEZING or state is MigrationState.CUT_OVER:
        _restore_switches(practice, plan, uow.now())
    released, already_sent = _release_held(uow, plan)
    _move(uow, plan, MigrationState.ROLLED_BACK, actor_id, released=released, already_sent=already_sent)
    uow.commit()
    return _view(plan)


def _release_held(uow: AbstractUnitOfWork, plan: SystemMigration) -> tuple[int, int]:
    """Held writes go back to the old system; a re-sent one goes back too unless the new system already took it."""
    messages = uow.session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.practice_id == plan.practice_id,
            or_(OutboxMessage.status == HELD, OutboxMessage.status == MOVED),
        )
    ).all()
    released = sent = 0
    for message in messages:
        if message.status == MOVED:
            copy = uow.session.scalar(
                select(OutboxMessage).where(OutboxMessage.idempotency_key == message.result.get("moved_to"))
            )
            if copy is not None and copy.status != MessageStatus.PENDING.value:
                sent += 1  # the new system has it: reception checks it there
                continue
            if copy is not None:
                copy.status = MessageStatus.WITHDRAWN.value
                order = uow.session.get(PrescriptionOrder, copy.payload.get("order_id"))
                if order is not None and "old_item_ids" in copy.payload:
                    order.item_ids = list(copy.payload["old_item_ids"])
        message.status = MessageStatus.PENDING.value
        message.next_attempt_at = uow.now()
        released += 1
    return released, sent


def _when(at: dt.datetime) -> str:
    local = at.astimezone(LONDON)
    return f"{local:%H:%M} on {local.day} {local:%B %Y}"


# Rehearsal ----------------------------------------------------------------------------------------------------
def rehearse(
    uow: AbstractUnitOfWork,
    ods_code: str,
    target_adapter: str | None = None,
    options: Mapping[str, str] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH,
) -> MatchReport:
    """The match report the cut-over would give, from the plan's target (or the one given), changing nothing."""
    practice = _practice(uow, ods_code)
    if target_adapter:
        if target_adapter not in registry.names():
            raise InputError(f"No clinical-system adapter called '{target_adapter}'.", "adapter")
        adapter = registry.get(target_adapter)
        try:
            cleaned = adapter.validate({k: v for k, v in (options or {}).items() if v.strip()})
        except OptionsInvalid as exc:
            raise InputError(str(exc), fields=exc.errors) from exc
        target = Practice(
            ods_code=practice.ods_code,
            name=practice.name,
            adapter_name=target_adapter,
            adapter_options={k: (encrypt(v) if k in adapter.secret_options else v) for k, v in cleaned.items()},
        )
    else:
        plan = _require_plan(uow, practice)
        target = _target_practice(plan)
    rows = (
        uow.session.execute(
            select(Patient.id, Patient.nhs_number, Patient.date_of_birth, Patient.family_name, Patient.given_name)
            .where(Patient.practice_id == practice.id)
            .order_by(Patient.id)
        )
        .tuples()
        .all()
    )
    queued = Counter(
        uow.session.scalars(
            select(OutboxMessage.kind).where(
                OutboxMessage.practice_id == practice.id,
                OutboxMessage.status.in_([MessageStatus.PENDING.value, HELD]),
                OutboxMessage.kind.in_(CLINICAL_KINDS),
            )
        )
    )
    system = uow.clinical(target)
    uow.rollback()  # nothing was written: end the read transaction before the calls
    matched, waiting = 0, []
    for start in range(0, len(rows), batch_size):
        for pid, nhs, born, family, given in rows[start : start + batch_size]:
            answer = _ask(system, nhs, family, born)
            if answer.outcome is MatchOutcome.MATCHED:
                matched += 1
            else:
                waiting.append(PatientOutcome(pid, nhs, f"{given} {family}".strip(), answer.outcome))
    requests = queued[PRESCRIPTION_KIND]
    return MatchReport(len(rows), matched, tuple(waiting), 0, requests, sum(queued.values()) - requests)


# Reception's list ---------------------------------------------------------------------------------------------
def checking_list(uow: AbstractUnitOfWork, staff_id: int | None, practice: Practice) -> CheckingList:
    """Patients whose details reception must check after the practice's system change, with the reason."""
    plan = latest_plan(uow, practice)
    if plan is None:
        return CheckingList(practice.name, None, ())
    rows = uow.session.execute(
        select(MigrationPatient.outcome, Patient)
        .join(Patient, Patient.id == MigrationPatient.patient_id)
        .where(
            MigrationPatient.migration_id == plan.id,
            MigrationPatient.outcome != MatchOutcome.MATCHED.value,
            Patient.clinical_id == "",
        )
        .order_by(Patient.family_name, Patient.given_name)
    ).tuples()
    held = uow.session.scalars(
        select(OutboxMessage).where(OutboxMessage.practice_id == practice.id, OutboxMessage.status == HELD)
    ).all()
    per_patient = Counter(m.payload.get("patient_id") for m in held if m.kind == PRESCRIPTION_KIND)
    patients = tuple(
        WaitingPatient(
            patient.id,
            patient.nhs_number,
            patient.full_name,
            patient.date_of_birth,
            MatchOutcome(outcome).reason,
            per_patient[patient.id],
        )
        for outcome, patient in rows
    )
    other = tuple(_describe(m) for m in held if m.kind != PRESCRIPTION_KIND)
    uow.audit(
        "migration.checking_list_viewed",
        actor_id=staff_id,
        actor_role="receptionist",
        practice_id=practice.id,
        migration_id=plan.id,
    )
    uow.commit()
    return CheckingList(practice.name, MigrationState(plan.state), patients, other)


def _describe(message: OutboxMessage) -> str:
    kinds = {
        "appointment.cancel": "An appointment cancellation asked for before the change",
        "appointment.booking_check": "A booking made just before the change, to check in the new system",
    }
    return kinds.get(message.kind, "A change queued before the system change")
