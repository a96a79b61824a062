"""Practice service switches and rules: changed only by the practice's managers, every change audited."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select

from patient_online.domain.access import Service
from patient_online.domain.appointments import SlotQuery
from patient_online.domain.controls import (
    LABELS,
    PracticeRules,
    SwitchSetting,
    clean_list,
    rule_problems,
    switch_problems,
)
from patient_online.domain.errors import ClinicalSystemError, InputError, NotAllowed
from patient_online.domain.link_words import LinkWords, words_for
from patient_online.domain.record import RecordLevel
from patient_online.domain.waitlist import DEFAULT_HOLD_MINUTES
from patient_online.models import AuditEvent, Practice, ServiceSwitch, User

from . import system_migration
from .unit_of_work import AbstractUnitOfWork

SLOT_SEARCH_WEEKS = 6
SWITCHED = "practice.service_switched"
RULES_CHANGED = "practice.rules_changed"


def _invalid(problems: dict[str, str]) -> InputError:
    """The manager's input breaks a limit: one message per field, the first as the error's own."""
    first = next(iter(problems))
    return InputError(problems[first], first, fields=problems)


def require_manager(actor: User, practice: Practice) -> None:
    """Only a practice manager of this practice may change its switches and rules (rule 5)."""
    if not any(m.practice_id == practice.id and m.role == "practice_manager" for m in actor.memberships):
        raise NotAllowed("Only a practice manager of this practice can change its online services.")


# Switches --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SwitchView:
    """One practice switch as the services page shows it."""

    service: Service
    enabled: bool
    message: str
    off_reason: str
    expected_return: dt.date | None
    updated_at: dt.datetime | None
    updated_by: str
    default_level: RecordLevel | None

    @property
    def below_contract(self) -> bool:
        return self.setting.below_contract

    @property
    def setting(self) -> SwitchSetting:
        return SwitchSetting(
            self.service, self.enabled, self.message, self.off_reason, self.expected_return, self.default_level
        )


def practice_switch_views(uow: AbstractUnitOfWork, practice: Practice) -> list[SwitchView]:
    """Every service's switch, in a fixed order, with who changed it last."""
    rows = {s.service: s for s in practice.switches}
    names = _names(uow, {r.updated_by_id for r in rows.values() if r.updated_by_id})
    views = []
    for service in Service:
        row = rows.get(service.value)
        views.append(
            SwitchView(
                service=service,
                enabled=bool(row and row.enabled),
                message=row.message if row else "",
                off_reason=row.off_reason if row else "",
                expected_return=row.expected_return if row else None,
                updated_at=row.updated_at if row else None,
                updated_by=names.get(row.updated_by_id or 0, "") if row else "",
                default_level=RecordLevel(practice.default_record_level) if service is Service.RECORD else None,
            )
        )
    return views


def contract_shortfalls(uow: AbstractUnitOfWork, practice: Practice) -> list[SwitchView]:
    """Services the GP contract requires that the practice has switched off (or, for the record, set to none)."""
    return [v for v in practice_switch_views(uow, practice) if v.below_contract]


def set_switch(uow: AbstractUnitOfWork, practice: Practice, actor: User, setting: SwitchSetting) -> bool:
    """Switch one service on or off for every patient of the practice at once; False when nothing changed.

    Raises InputError (with a message per field) when a contractual service is switched off without a
    reason and an expected date of return, or a message is too long.
    """
    require_manager(actor, practice)
    problems = switch_problems(setting, uow.today())
    if setting.enabled and system_migration.paused_by_plan(uow, practice, setting.service) is not None:
        problems["enabled"] = (
            "This service is paused while your practice changes its clinical system. It comes back on by itself "
            "once patients are matched in the new system."
        )
    if problems:
        raise _invalid(problems)
    row = practice.switch(setting.service.value)
    if row is None:
        row = ServiceSwitch(service=setting.service.value, enabled=False)
        practice.switches.append(row)
    old = _switch_state(row, practice, setting.service)
    keep_reason = setting.below_contract
    row.enabled = setting.enabled
    row.message = setting.message.strip()
    row.off_reason = setting.off_reason.strip() if keep_reason else ""
    row.expected_return = setting.expected_return if keep_reason else None
    if setting.service is Service.RECORD and setting.default_level is not None:
        practice.default_record_level = setting.default_level.value
    new = _switch_state(row, practice, setting.service)
    if new == old:
        return False
    row.updated_at = uow.now()
    row.updated_by_id = actor.id
    uow.audit(
        SWITCHED,
        actor_id=actor.id,
        actor_role="practice_manager",
        practice_id=practice.id,
        service=setting.service.value,
        old=old,
        new=new,
        below_contract=setting.below_contract,
        reason=row.off_reason,
    )
    uow.commit()
    return True


def _switch_state(row: ServiceSwitch, practice: Practice, service: Service) -> dict[str, Any]:
    state: dict[str, Any] = {
        "enabled": row.enabled,
        "message": row.message,
        "reason": row.off_reason,
        "expected_return": row.expected_return.isoformat() if row.expected_return else None,
    }
    if service is Service.RECORD:
        state["default_level"] = practice.default_record_level
    return state


# Rules -----------------------------------------------------------------------------------------------------
def current_rules(practice: Practice) -> PracticeRules:
    """The practice's rules as they stand."""
    return PracticeRules(
        online_slot_types=tuple(practice.online_slot_types or ()),
        booking_horizon_days=practice.booking_horizon_days,
        min_lead_time_hours=practice.min_lead_time_hours,
        max_future_appointments=practice.max_future_appointments,
        cancellation_allowed=practice.cancellation_allowed,
        cancellation_cutoff_hours=practice.cancellation_cutoff_hours,
        turnaround_working_days=practice.turnaround_working_days,
        max_note_length=practice.max_note_length,
        never_online=clean_list(list(practice.never_online or ())),
        record_access_start=practice.record_access_start,
        waitlist_enabled=bool(practice.waitlist_enabled),
        waitlist_hold_minutes=practice.waitlist_hold_minutes or DEFAULT_HOLD_MINUTES,  # unset until first saved
    )


@dataclass(frozen=True)
class SlotTypes:
    """The appointment types a manager can choose from, and whether the clinical system could be asked."""

    names: list[str]
    from_clinical_system: bool


def offered_slot_types(uow: AbstractUnitOfWork, practice: Practice) -> SlotTypes:
    """The slot types in the practice's appointment book over the next weeks, plus those already chosen.

    The practice's system is asked with no database transaction open."""
    start = uow.now()
    chosen = set(practice.online_slot_types or ())
    system = uow.clinical(practice)
    uow.release()
    try:
        slots = system.search_slots(SlotQuery(start, start + dt.timedelta(weeks=SLOT_SEARCH_WEEKS)))
    except ClinicalSystemError:
        return SlotTypes(sorted(chosen), from_clinical_system=False)
    return SlotTypes(sorted(chosen | {s.slot_type for s in slots}), from_clinical_system=True)


def set_rules(
    uow: AbstractUnitOfWork,
    practice: Practice,
    actor: User,
    rules: PracticeRules,
    offered_types: frozenset[str] | None = None,
) -> dict[str, tuple[object, object]]:
    """Save the practice's appointment, prescription and record rules; returns what changed (old, new).

    Raises InputError with a message per field for anything outside the limits in domain.controls.
    """
    require_manager(actor, practice)
    rules = replace(rules, never_online=clean_list(list(rules.never_online)))
    problems = rule_problems(rules, uow.today(), offered_types)
    if problems:
        raise _invalid(problems)
    changes = rules.changes_from(current_rules(practice))
    if not changes:
        return {}
    for name, (_old, new) in changes.items():
        setattr(practice, name, list(new) if isinstance(new, tuple) else new)
    uow.audit(
        RULES_CHANGED,
        actor_id=actor.id,
        actor_role="practice_manager",
        practice_id=practice.id,
        changes={name: {"old": _plain(old), "new": _plain(new)} for name, (old, new) in changes.items()},
    )
    uow.commit()
    return changes


def rules_saved_words(changes: dict[str, tuple[object, object]]) -> str:
    """What a manager is told after saving the rules: nothing changed, or each change from old to new."""
    if not changes:
        return "Nothing changed: the rules are as they were."
    done = "; ".join(
        f"{LABELS.get(name, name)}: {describe_rule(_plain(old))} to {describe_rule(_plain(new))}"
        for name, (old, new) in changes.items()
    )
    return f"Rules saved. Patients get them from now. Changed: {done}."


def _plain(value: object) -> object:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return list(value)
    return value


# History ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HistoryLine:
    at: dt.datetime
    who: str
    what: str
    before: str
    after: str
    why: str = ""


HISTORY_PER_PAGE = 5  # keeps the services summary short enough to take in at a glance


@dataclass(frozen=True)
class History:
    """One page of a practice's switch or rule changes, newest first."""

    lines: list[HistoryLine]
    page: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def control_history(
    uow: AbstractUnitOfWork, practice: Practice, action: str, limit: int = 50, offset: int = 0
) -> list[HistoryLine]:
    """The practice's switch or rule changes, newest first, in words a practice manager reads."""
    return _history(uow, practice, action, limit, offset)[0]


def history_page(
    uow: AbstractUnitOfWork, practice: Practice, action: str, page: int = 1, per_page: int = HISTORY_PER_PAGE
) -> History:
    """One page of changes (a page past the end shows none, with a way back)."""
    page = max(1, page)
    lines, more = _history(uow, practice, action, per_page, (page - 1) * per_page)
    return History(lines, page, more)


def _history(
    uow: AbstractUnitOfWork, practice: Practice, action: str, limit: int, offset: int
) -> tuple[list[HistoryLine], bool]:
    found = uow.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.practice_id == practice.id, AuditEvent.action == action)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .offset(offset)
        .limit(limit + 1)
    ).all()
    events, more = found[:limit], len(found) > limit
    names = _names(uow, {e.actor_user_id for e in events if e.actor_user_id})
    lines: list[HistoryLine] = []
    for e in events:
        who = names.get(e.actor_user_id or 0, "Unknown")
        if action == SWITCHED:
            service = Service(e.detail.get("service", "appointments"))
            lines.append(
                HistoryLine(
                    e.at,
                    who,
                    service.label,
                    _describe_switch(e.detail.get("old", {})),
                    _describe_switch(e.detail.get("new", {})),
                    e.detail.get("reason", ""),
                )
            )
        else:
            for name, change in (e.detail.get("changes") or {}).items():
                lines.append(
                    HistoryLine(
                        e.at, who, LABELS.get(name, name), describe_rule(change["old"]), describe_rule(change["new"])
                    )
                )
    return lines, more


def _describe_switch(state: dict[str, Any]) -> str:
    if not state:
        return ""
    parts = ["On" if state.get("enabled") else "Off"]
    if state.get("default_level"):
        parts.append(f"default: {RecordLevel(state['default_level']).label.lower()}")
    if state.get("expected_return"):
        parts.append(f"back by {_uk(dt.date.fromisoformat(state['expected_return']))}")
    if state.get("message"):
        parts.append(f"message: “{state['message']}”")
    return "; ".join(parts)


def describe_rule(value: object) -> str:
    """A rule's value in words: lists joined, dates in UK style, yes/no for switches."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "None"
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return _uk(dt.date.fromisoformat(value))
        except ValueError:
            return value
    return str(value)


# Pages ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SwitchesPage:
    """The services page: every switch and one page of the history of changes to them."""

    views: list[SwitchView]
    history: History


def switches_page(uow: AbstractUnitOfWork, practice: Practice, page: int = 1) -> SwitchesPage:
    """What the services summary shows, read in one go."""
    return SwitchesPage(practice_switch_views(uow, practice), history_page(uow, practice, SWITCHED, page))


@dataclass(frozen=True)
class ManagerHome:
    """The practice manager's starting page: every switch, and the link to the clinical system in words."""

    views: list[SwitchView]
    link: LinkWords

    @property
    def shortfalls(self) -> list[SwitchView]:
        return [v for v in self.views if v.below_contract]


def manager_home(uow: AbstractUnitOfWork, practice: Practice) -> ManagerHome:
    """What the manager's starting page shows; the link's state is what is known of it, without calling it."""
    state = uow.clinical_systems.system_for(practice).link_state()
    return ManagerHome(practice_switch_views(uow, practice), words_for(state, uow.now()))


def switch_view(uow: AbstractUnitOfWork, practice: Practice, service: Service) -> SwitchView:
    """One service's switch, for its change page."""
    return next(v for v in practice_switch_views(uow, practice) if v.service is service)


@dataclass(frozen=True)
class RulesPage:
    """The rules page: the rules as they stand, the appointment types to choose from, and past changes."""

    current: PracticeRules
    offered: SlotTypes
    history: History
    today: dt.date

    @property
    def offered_types(self) -> frozenset[str] | None:
        """The types a manager may choose from, when the clinical system could be asked (else no check)."""
        return frozenset(self.offered.names) if self.offered.from_clinical_system else None


def rules_page(uow: AbstractUnitOfWork, practice: Practice, page: int = 1) -> RulesPage:
    """What the rules page shows: the database read first, then the practice's system asked for its types."""
    current = current_rules(practice)
    history = history_page(uow, practice, RULES_CHANGED, page)
    return RulesPage(current, offered_slot_types(uow, practice), history, uow.today())


def _uk(day: dt.date) -> str:
    return f"{day.day} {day:%B %Y}"


def _names(uow: AbstractUnitOfWork, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {u.id: u.display_name for u in uow.session.scalars(select(User).where(User.id.in_(ids)))}
