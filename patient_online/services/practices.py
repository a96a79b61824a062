"""Practices on the gateway: add them and choose their clinical-system adapter."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select

from patient_online.adapters import registry
from patient_online.adapters.registry import AdapterType, OptionsInvalid
from patient_online.domain.access import Service
from patient_online.domain.errors import InputError, NotFound
from patient_online.domain.ports import LinkState
from patient_online.models import Practice, ServiceSwitch

from . import system_migration
from .clinical import store_options
from .unit_of_work import AbstractUnitOfWork

ODS_PATTERN = re.compile(r"^[A-Z][0-9]{5}$")
DEFAULT_ONLINE_SLOT_TYPES = ["GP appointment", "Nurse appointment", "Blood test", "Medication review"]


@dataclass(frozen=True)
class PracticeSummary:
    """A practice as the administrator's pages show it."""

    id: int
    ods_code: str
    name: str
    adapter_name: str


@dataclass(frozen=True)
class AdapterOption:
    """One setting a clinical-system adapter needs."""

    name: str
    help: str
    required: bool
    secret: bool
    default: str | None


@dataclass(frozen=True)
class AdapterChoice:
    """A clinical-system adapter a practice can use, with its settings."""

    name: str
    title: str
    options: tuple[AdapterOption, ...]

    @property
    def secret_options(self) -> frozenset[str]:
        return frozenset(o.name for o in self.options if o.secret)


@dataclass(frozen=True)
class PracticeList:
    """Every practice, with what is known of its clinical-system link (keyed by practice id)."""

    practices: list[PracticeSummary]
    states: dict[int, LinkState]


@dataclass(frozen=True)
class AdapterSettings:
    """A practice's adapter page: the adapter shown, every adapter to choose from, the stored values of the
    settings that are not secret, and the link's state."""

    practice: PracticeSummary
    adapter: AdapterChoice
    adapters: list[AdapterChoice]
    values: dict[str, str]
    state: LinkState


def _summary(practice: Practice) -> PracticeSummary:
    return PracticeSummary(practice.id, practice.ods_code, practice.name, practice.adapter_name)


def _choice(adapter: AdapterType) -> AdapterChoice:
    return AdapterChoice(
        adapter.name,
        adapter.title,
        tuple(AdapterOption(o.name, o.help, o.required, o.secret, o.default) for o in adapter.options),
    )


def _find(uow: AbstractUnitOfWork, ods_code: str) -> Practice:
    found = uow.session.scalar(select(Practice).where(Practice.ods_code == ods_code.strip().upper()))
    if found is None:
        raise NotFound(f"No practice with ODS code {ods_code}.")
    return found


def _link_state(uow: AbstractUnitOfWork, practice: Practice) -> LinkState:
    """What is known of the link without calling the clinical system."""
    return uow.clinical_systems.system_for(practice).link_state()


def list_practices(uow: AbstractUnitOfWork) -> PracticeList:
    """Every practice by ODS code, with its link's state."""
    rows = uow.session.scalars(select(Practice).order_by(Practice.ods_code)).all()
    return PracticeList([_summary(p) for p in rows], {p.id: _link_state(uow, p) for p in rows})


def adapter_settings(uow: AbstractUnitOfWork, ods_code: str, adapter: str | None = None) -> AdapterSettings:
    """The practice's adapter page for ``adapter`` (its own when none is given); NotFound for an unknown
    practice or adapter."""
    practice = _find(uow, ods_code)
    chosen = adapter or practice.adapter_name
    if chosen not in registry.names():
        raise NotFound(f"No clinical-system adapter called '{chosen}'.")
    shown = _choice(registry.get(chosen))
    stored = practice.adapter_options or {}
    values = {o.name: ("" if o.secret else str(stored.get(o.name, ""))) for o in shown.options}
    return AdapterSettings(
        _summary(practice), shown, [_choice(a) for a in registry.all_types()], values, _link_state(uow, practice)
    )


def add_practice(
    uow: AbstractUnitOfWork,
    ods_code: str,
    name: str,
    *,
    phone: str = "",
    address: str = "",
    actor_id: int | None = None,
) -> PracticeSummary:
    """Put a practice on the gateway, every service on and the demo clinical system until another is chosen."""
    ods = ods_code.strip().upper()
    if not ODS_PATTERN.match(ods):
        raise InputError("Enter a GP practice ODS code: a letter and 5 digits, like A81001", "ods_code")
    if uow.session.scalar(select(Practice).where(Practice.ods_code == ods)) is not None:
        raise InputError(f"A practice with ODS code {ods} is already on the gateway", "ods_code")
    practice = Practice(
        ods_code=ods, name=name.strip(), phone=phone, address=address, online_slot_types=list(DEFAULT_ONLINE_SLOT_TYPES)
    )
    practice.switches = [ServiceSwitch(service=s.value, enabled=True) for s in Service]
    uow.session.add(practice)
    uow.flush()
    uow.audit("practice.added", actor_id=actor_id, actor_role="system_admin", practice_id=practice.id, ods_code=ods)
    uow.commit()
    return _summary(practice)


def set_adapter(
    uow: AbstractUnitOfWork,
    ods_code: str,
    adapter: str,
    raw: Mapping[str, str],
    actor_id: int | None,
    *,
    keep_blank_secrets: bool = False,
) -> PracticeSummary:
    """Validate and store the adapter options (secrets encrypted); audited without secret values.

    Options left blank are not given. With ``keep_blank_secrets`` a secret left blank keeps its stored
    (encrypted) value, so that it never has to be shown again. Raises InputError (a message per option) when
    the options do not fit the adapter, NotFound for an unknown practice.
    """
    practice = _find(uow, ods_code)
    plan = system_migration.open_plan(uow, practice)
    if plan is not None:
        raise InputError(
            f"{practice.name} has a plan to change its clinical system ({plan.state.replace('_', ' ')}). Carry it "
            "through or roll it back (flask practice migrate) before changing the adapter by hand.",
            "adapter",
        )
    if adapter not in registry.names():
        raise InputError(
            f"No clinical-system adapter called '{adapter}'. Known: {', '.join(registry.names())}", "adapter"
        )
    given = {name: value.strip() for name, value in raw.items() if value.strip()}
    stored = practice.adapter_options or {}
    keep = registry.get(adapter).secret_options - set(given) if keep_blank_secrets else frozenset()
    kept = {name: stored[name] for name in keep if name in stored}
    old = practice.adapter_name
    try:
        store_options(practice, adapter, given, kept_encrypted=kept)
    except OptionsInvalid as exc:
        raise InputError(str(exc), fields=exc.errors) from exc
    uow.audit(
        "practice.adapter_set",
        actor_id=actor_id,
        actor_role="system_admin",
        practice_id=practice.id,
        old=old,
        new=adapter,
        options=sorted(given),
    )
    uow.commit()
    return _summary(practice)
