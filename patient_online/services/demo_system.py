"""The demo clinical system's own staff screen: its prescription queue, for practices that use the demo system.

It stands in for the screens of EMIS Web or SystmOne, where practice staff approve, reject and issue repeat
requests, so that the whole journey can be tried without a real clinical system.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from patient_online.adapters.demo import workflow
from patient_online.adapters.demo.workflow import QueueRow
from patient_online.domain.prescriptions import RequestStatus
from patient_online.models import Pharmacy, Practice

from . import prescriptions
from .unit_of_work import AbstractUnitOfWork


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    pharmacies: dict[str, str]


def demo_practice(uow: AbstractUnitOfWork, ods: str) -> Practice | None:
    """The practice named in the address, if it uses the demo clinical system (no screen exists otherwise)."""
    practice = uow.session.scalar(select(Practice).where(Practice.ods_code == str(ods).upper()))
    return practice if practice is not None and practice.adapter_name == "demo" else None


def prescription_queue(uow: AbstractUnitOfWork, practice: Practice) -> QueuePage:
    """Every repeat request at the practice, those waiting for action first, with the pharmacies' names."""
    rows = workflow.prescription_queue(uow.session, practice.ods_code)
    pharmacies = {p.ods_code: p.name for p in uow.session.scalars(select(Pharmacy))}
    return QueuePage(rows, pharmacies)


def decide(uow: AbstractUnitOfWork, practice: Practice, request_id: str, new: RequestStatus, reason: str) -> None:
    """Approve, reject or issue a request in the demo system, then tell the gateway at once (as a real system
    would through its notifications). Raises InputError for a decision that cannot be made."""
    clinical_id = workflow.decide(uow.session, practice.ods_code, request_id, new, reason)
    prescriptions.sync_patient_requests(uow, practice, clinical_id)
