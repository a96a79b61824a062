"""Practices on the gateway: add them and choose their clinical-system adapter."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from patient_online.domain.access import Service
from patient_online.domain.errors import DomainError
from patient_online.models import Practice, ServiceSwitch

from . import audit
from .clinical import store_options

ODS_PATTERN = re.compile(r"^[A-Z][0-9]{5}$")
DEFAULT_ONLINE_SLOT_TYPES = ["GP appointment", "Nurse appointment", "Blood test", "Medication review"]


class PracticeError(DomainError):
    pass


def add_practice(
    session: Session, ods_code: str, name: str, *, phone: str = "", address: str = "", actor_id: int | None = None
) -> Practice:
    ods = ods_code.strip().upper()
    if not ODS_PATTERN.match(ods):
        raise PracticeError("Enter a GP practice ODS code: a letter and 5 digits, like A81001")
    if session.scalar(select(Practice).where(Practice.ods_code == ods)) is not None:
        raise PracticeError(f"A practice with ODS code {ods} is already on the gateway")
    practice = Practice(
        ods_code=ods, name=name.strip(), phone=phone, address=address, online_slot_types=list(DEFAULT_ONLINE_SLOT_TYPES)
    )
    practice.switches = [ServiceSwitch(service=s.value, enabled=True) for s in Service]
    session.add(practice)
    session.flush()
    audit.record(
        session, "practice.added", actor_id=actor_id, actor_role="system_admin", practice_id=practice.id, ods_code=ods
    )
    session.commit()
    return practice


def set_adapter(
    session: Session,
    practice: Practice,
    adapter: str,
    raw: dict[str, str],
    actor_id: int | None,
    keep_secrets: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Validate and store the adapter options (secrets encrypted); audited without secret values.

    Secrets named in ``keep_secrets`` keep their stored (encrypted) value when none is given.
    """
    old = practice.adapter_name
    kept = {name: practice.adapter_options[name] for name in keep_secrets if name in practice.adapter_options}
    store_options(practice, adapter, raw, kept_encrypted=kept)
    audit.record(
        session,
        "practice.adapter_set",
        actor_id=actor_id,
        actor_role="system_admin",
        practice_id=practice.id,
        old=old,
        new=adapter,
        options=sorted(raw),
    )
    session.commit()
