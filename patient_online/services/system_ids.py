"""A patient's logical id at their practice's clinical system, found by NHS number and kept per system.

GP Connect addresses a patient by the provider's logical id (``/Patient/{id}/Appointment``), which is not the
NHS number and differs between systems. The id is found when a patient links, found again for every patient of
a practice whose adapter changes, and stored twice: as ``Patient.clinical_id`` (the current system) and in
``PatientSystemId`` under the system's key, so one system's id is never sent to another.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from patient_online.domain.errors import DomainError, NotFound
from patient_online.models import Patient, PatientSystemId, Practice

from .unit_of_work import AbstractUnitOfWork

REFIND_BATCH = 50  # patients looked up per transaction when a practice's adapter changes


@dataclass(frozen=True)
class RefindReport:
    """How finding a practice's patients again went: found (of which changed), not found, not reached."""

    practice_ods: str
    found: int
    changed: int
    not_found: int
    failed: int

    @property
    def total(self) -> int:
        return self.found + self.not_found + self.failed


def key_for(practice_ods: str, adapter: str, options: Mapping[str, Any]) -> str:
    """Which clinical system an adapter reaches: its name and where it reaches (``gpconnect:<base url>``), or
    for a system without an address the practice (``demo:A12345``, and ``~<copy>`` for a second demo copy)."""
    where = str(options.get("base_url") or "").rstrip("/")
    if where:
        return f"{adapter}:{where}"
    copy = str(options.get("copy") or "") if adapter == "demo" else ""
    return f"{adapter}:{practice_ods}" + (f"~{copy}" if copy else "")


def system_key(practice: Practice) -> str:
    """Which system the practice's current ids belong to (see ``key_for``)."""
    return key_for(practice.ods_code, practice.adapter_name, practice.adapter_options or {})


def remember_patient_id(uow: AbstractUnitOfWork, patient: Patient, logical_id: str) -> bool:
    """Store the patient's id at their practice's current system (no commit); True when it was new or changed."""
    if not logical_id:
        return False
    key = system_key(patient.practice)
    row = uow.session.scalar(
        select(PatientSystemId).where(PatientSystemId.patient_id == patient.id, PatientSystemId.system_key == key)
    )
    changed = patient.clinical_id != logical_id or row is None or row.logical_id != logical_id
    if row is None:
        uow.session.add(
            PatientSystemId(patient_id=patient.id, system_key=key, logical_id=logical_id, found_at=uow.now())
        )
    elif row.logical_id != logical_id:
        row.logical_id = logical_id
        row.found_at = uow.now()
    patient.clinical_id = logical_id
    return changed


def _audit_change(uow: AbstractUnitOfWork, patient: Patient, actor_id: int | None, reason: str) -> None:
    uow.audit(
        "patient.system_id_found",
        actor_id=actor_id,
        actor_role="system" if actor_id is None else "system_admin",
        patient_id=patient.id,
        practice_id=patient.practice_id,
        system=system_key(patient.practice),
        reason=reason,
    )


def record_found_id(
    uow: AbstractUnitOfWork, practice_ods: str, nhs_number: str, logical_id: str, *, reason: str = "unknown_reference"
) -> bool:
    """Store an id the practice's system gave when it did not know the one held (the adapter found it again by
    NHS number and retried). True when something changed; committed with its audit event."""
    uow.writing()
    patient = uow.session.scalar(
        select(Patient).join(Practice).where(Practice.ods_code == practice_ods, Patient.nhs_number == nhs_number)
    )
    if patient is None:
        uow.rollback()
        return False
    changed = remember_patient_id(uow, patient, logical_id)
    if changed:
        _audit_change(uow, patient, None, reason)
        uow.commit()
    else:
        uow.rollback()
    return changed


def find_patient_id(uow: AbstractUnitOfWork, patient_id: int, *, actor_id: int | None = None) -> str | None:
    """Look one patient up by NHS number at their practice's system and store the id found (None: not found)."""
    patient = uow.session.get(Patient, patient_id)
    if patient is None:
        raise NotFound()
    nhs_number = patient.nhs_number
    system = uow.clinical(patient.practice)
    with uow.outside_transaction():
        person = system.find_patient(nhs_number)
    if person is None or not person.ref.clinical_id:
        return None
    uow.writing()
    patient = uow.session.get(Patient, patient_id)
    if patient is None:
        raise NotFound()
    if remember_patient_id(uow, patient, person.ref.clinical_id):
        _audit_change(uow, patient, actor_id, "lookup")
    uow.commit()
    return person.ref.clinical_id


def _batches(items: Sequence[tuple[int, str]], size: int) -> Iterator[Sequence[tuple[int, str]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def refind_practice_patients(
    uow: AbstractUnitOfWork, ods_code: str, *, actor_id: int | None = None, batch_size: int = REFIND_BATCH
) -> RefindReport:
    """Find every patient of the practice again by NHS number at its (new) system, a batch at a time: the system
    is asked with no transaction open, then each batch's ids are stored together with their audit events."""
    practice = uow.session.scalar(select(Practice).where(Practice.ods_code == ods_code.strip().upper()))
    if practice is None:
        raise NotFound("No practice with that ODS code.")
    practice_id = practice.id
    system = uow.clinical(practice)
    people = [
        (row.id, row.nhs_number)
        for row in uow.session.execute(
            select(Patient.id, Patient.nhs_number).where(Patient.practice_id == practice_id).order_by(Patient.id)
        )
    ]
    found = changed = not_found = failed = 0
    for batch in _batches(people, max(batch_size, 1)):
        answers: dict[int, str | None] = {}
        with uow.outside_transaction():
            for patient_id, nhs_number in batch:
                try:
                    person = system.find_patient(nhs_number)
                except DomainError:  # the link is down or the system refused: counted, tried again next time
                    failed += 1
                    continue
                answers[patient_id] = person.ref.clinical_id if person is not None else None
        uow.writing()
        for patient_id, logical_id in answers.items():
            if not logical_id:
                not_found += 1
                continue
            found += 1
            patient = uow.session.get(Patient, patient_id)
            if patient is not None and remember_patient_id(uow, patient, logical_id):
                changed += 1
                _audit_change(uow, patient, actor_id, "adapter_changed")
        uow.commit()
    uow.writing()
    uow.audit(
        "practice.patient_ids_refound",
        actor_id=actor_id,
        actor_role="system" if actor_id is None else "system_admin",
        practice_id=practice_id,
        found=found,
        changed=changed,
        not_found=not_found,
        failed=failed,
    )
    uow.commit()
    return RefindReport(ods_code.strip().upper(), found, changed, not_found, failed)
