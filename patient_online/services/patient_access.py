"""Reception: see and change one patient's online access, and the SNOMED CT codes that steer it (rules 5, 8)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from patient_online.domain.access import (
    FLAG_DECLINED,
    FLAG_ENHANCED_REVIEW,
    FLAG_LABELS,
    EffectiveAccess,
    Service,
    review_cap,
)
from patient_online.domain.errors import InputError, NotAllowed, NotFound
from patient_online.domain.patients import AccessFlag
from patient_online.domain.record import RecordLevel
from patient_online.domain.verification import PatientSummary
from patient_online.models import Patient, Practice, User

from .access import noted_levels, patient_access, practice_switches, stored_flags
from .linking import summary
from .unit_of_work import AbstractUnitOfWork

SOURCE_PRACTICE = "practice"  # recorded by reception on the gateway
SOURCE_CLINICAL = "clinical"  # read from the clinical system (entries without a source came from there too)
EARLIEST_CODE_DATE = dt.date(2000, 1, 1)
LEVEL_CHOICES = (RecordLevel.NONE, RecordLevel.SUMMARY, RecordLevel.DETAILED, RecordLevel.FULL, RecordLevel.HISTORIC)


@dataclass(frozen=True)
class FlagView:
    index: int
    code: str
    label: str
    recorded_on: dt.date
    from_clinical_system: bool


@dataclass(frozen=True)
class AccessPanel:
    """Everything the reception page shows about one patient's online access."""

    patient: PatientSummary
    access: EffectiveAccess
    record_level: RecordLevel | None  # None: the practice default
    appointments_enabled: bool
    prescriptions_enabled: bool
    flags: list[FlagView]
    flags_read_at: dt.datetime | None
    practice_default: RecordLevel
    practice_services: dict[Service, bool]

    @property
    def record_offered(self) -> bool:
        return self.practice_services[Service.RECORD]


@dataclass(frozen=True)
class AccessChange:
    """What reception sets for one patient."""

    record_level: RecordLevel | None  # None: follow the practice default
    appointments: bool
    prescriptions: bool


def _patient(uow: AbstractUnitOfWork, staff: User, practice: Practice, patient_id: int) -> Patient:
    """The patient, when they belong to the practice the receptionist works at; NotFound otherwise."""
    if not any(m.practice_id == practice.id and m.role == "receptionist" for m in staff.memberships):
        raise NotAllowed("Only reception staff of this practice can change a patient's online access.")
    patient = uow.session.get(Patient, patient_id)
    if patient is None or patient.practice_id != practice.id:
        raise NotFound("We could not find that patient at your practice.")
    return patient


def access_panel(uow: AbstractUnitOfWork, staff: User, practice: Practice, patient_id: int) -> AccessPanel:
    """The patient's access settings, codes and effective access with its explanation (no audit: see view_)."""
    patient = _patient(uow, staff, practice, patient_id)
    return _panel(uow, patient)


def _panel(uow: AbstractUnitOfWork, patient: Patient) -> AccessPanel:
    practice = patient.practice
    flags = [
        FlagView(
            index=i,
            code=str(item.get("code", "")),
            label=FLAG_LABELS.get(str(item.get("code", "")), str(item.get("code", ""))),
            recorded_on=dt.date.fromisoformat(str(item["date"])),
            from_clinical_system=item.get("source", SOURCE_CLINICAL) != SOURCE_PRACTICE,
        )
        for i, item in enumerate(patient.flags or [])
        if isinstance(item, dict) and _valid_date(item.get("date"))
    ]
    return AccessPanel(
        patient=summary(patient),
        access=patient_access(uow.session, patient, uow.today()),
        record_level=RecordLevel(patient.record_level) if patient.record_level else None,
        appointments_enabled=patient.appointments_enabled,
        prescriptions_enabled=patient.prescriptions_enabled,
        flags=sorted(flags, key=lambda f: (f.recorded_on, f.index)),
        flags_read_at=patient.flags_read_at,
        practice_default=RecordLevel(practice.default_record_level),
        practice_services={s: p.enabled for s, p in practice_switches(practice).items()},
    )


def _valid_date(value: Any) -> bool:
    try:
        dt.date.fromisoformat(str(value))
    except ValueError:
        return False
    return True


def view_patient_access(uow: AbstractUnitOfWork, staff: User, practice: Practice, patient_id: int) -> AccessPanel:
    """The access panel, audited as a view of the patient's access codes (rule 19)."""
    panel = access_panel(uow, staff, practice, patient_id)
    uow.audit(
        "access.viewed",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=panel.patient.id,
        practice_id=practice.id,
    )
    uow.commit()
    return panel


def _state(patient: Patient) -> dict[str, Any]:
    return {
        "record_level": patient.record_level,
        "appointments": patient.appointments_enabled,
        "prescriptions": patient.prescriptions_enabled,
        "flags": list(patient.flags or []),
    }


def set_patient_access(
    uow: AbstractUnitOfWork, staff: User, practice: Practice, patient_id: int, change: AccessChange
) -> EffectiveAccess:
    """Set one patient's record level and services; the change takes effect at their next page.

    Refuses record access above 'none' while the patient has declined it, and new or wider access to the full
    record while an enhanced review is indicated (rule 8: keeping a level the patient already had is allowed,
    so reception can still change their other services): those codes are changed in the clinical system first.
    """
    uow.writing()
    patient = _patient(uow, staff, practice, patient_id)
    flags = stored_flags(patient)
    level = change.record_level
    if level is not None and level not in LEVEL_CHOICES:
        raise InputError("Choose a record access level", "record_level")
    if level is not None and level > RecordLevel.NONE:
        if not practice_switches(practice)[Service.RECORD].enabled:
            raise InputError(
                "Record access is switched off for the whole practice. Choose practice default or no record access",
                "record_level",
            )
        declined = _latest(flags, FLAG_DECLINED)
        if declined is not None:
            raise InputError(
                f"This patient declined online record access on {_uk(declined)}. "
                "Remove that code before giving record access",
                "record_level",
            )
    if level is not None and _widens_past_review(patient, flags, level):
        raise InputError(
            "An enhanced review is indicated for this patient. A clinician must record ‘enhanced review not "
            "indicated’ before the full record can be given",
            "record_level",
        )
    old = _state(patient)
    new_level = level.value if level is not None else None
    if patient.record_level != new_level:
        patient.record_level = new_level
        patient.record_level_set_at = uow.now() if new_level is not None else None
    patient.appointments_enabled = change.appointments
    patient.prescriptions_enabled = change.prescriptions
    access = patient_access(uow.session, patient, uow.today())
    _lower_noted_levels(patient, access.record_level)
    new = _state(patient)
    if new != old:
        _audit_change(uow, staff, practice, patient, old, new)
    uow.commit()
    return access


def _lower_noted_levels(patient: Patient, level: RecordLevel) -> None:
    """Rule 8 keeps only what the patient still has: once reception lowers their access while a review is in
    force, giving it back is new access, so each review's noted level comes down with it."""
    flags = list(patient.flags or [])
    changed = False
    for i, item in enumerate(flags):
        then = item.get("level_then") if isinstance(item, dict) else None
        if then in set(RecordLevel) and RecordLevel(str(then)) > level:
            flags[i] = {**item, "level_then": level.value}
            changed = True
    if changed:
        patient.flags = flags


def _latest(flags: tuple[AccessFlag, ...], code: str) -> dt.date | None:
    return max((f.recorded_on for f in flags if f.code == code), default=None)


def _widens_past_review(patient: Patient, flags: tuple[AccessFlag, ...], level: RecordLevel) -> bool:
    """Rule 8: whether setting ``level`` would give access an enhanced review in force holds back.

    A level the patient already holds keeps the date it was granted, so saving it again changes nothing."""
    kept = patient.record_level == level.value and patient.record_level_set_at is not None
    granted_on = patient.record_level_set_at.date() if kept and patient.record_level_set_at else None
    return review_cap(flags, level, granted_on) is not None


def _audit_change(
    uow: AbstractUnitOfWork, staff: User, practice: Practice, patient: Patient, old: dict[str, Any], new: dict[str, Any]
) -> None:
    changed = {k for k in new if new[k] != old[k]}
    uow.audit(
        "access.changed",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=patient.id,
        practice_id=practice.id,
        old={k: old[k] for k in changed},
        new={k: new[k] for k in changed},
    )


def record_flag(
    uow: AbstractUnitOfWork, staff: User, practice: Practice, patient_id: int, code: str, recorded_on: dt.date | None
) -> None:
    """Record one of the rule 8 codes on the gateway, for a clinical system that cannot send them."""
    uow.writing()
    patient = _patient(uow, staff, practice, patient_id)
    if code not in FLAG_LABELS:
        raise InputError("Choose which code to record", "code")
    if recorded_on is None:
        raise InputError("Enter the date the code was recorded", "recorded_on")
    if recorded_on > uow.today():
        raise InputError("Date must be today or in the past", "recorded_on")
    if recorded_on < EARLIEST_CODE_DATE:
        raise InputError("Date must be in 2000 or later", "recorded_on")
    old = _state(patient)
    entry: dict[str, str] = {"code": code, "date": recorded_on.isoformat(), "source": SOURCE_PRACTICE}
    if code == FLAG_ENHANCED_REVIEW:
        entry["level_then"] = patient_access(uow.session, patient, uow.today()).record_level.value
    patient.flags = [*(patient.flags or []), entry]
    _audit_change(uow, staff, practice, patient, old, _state(patient))
    uow.commit()


def remove_flag(uow: AbstractUnitOfWork, staff: User, practice: Practice, patient_id: int, index: int) -> None:
    """Remove a code that reception recorded on the gateway; codes from the clinical system are changed there."""
    uow.writing()
    patient = _patient(uow, staff, practice, patient_id)
    flags = list(patient.flags or [])
    if not 0 <= index < len(flags) or flags[index].get("source") != SOURCE_PRACTICE:
        raise InputError("This code comes from the clinical system. Change it there, then read the codes again")
    old = _state(patient)
    patient.flags = flags[:index] + flags[index + 1 :]
    _audit_change(uow, staff, practice, patient, old, _state(patient))
    uow.commit()


def refresh_flags(uow: AbstractUnitOfWork, staff: User, practice: Practice, patient_id: int) -> int:
    """Read the patient's access codes again from the clinical system; returns how many it holds.

    The database transaction is closed before the clinical system is called, and a new one records the outcome.
    """
    patient = _patient(uow, staff, practice, patient_id)
    nhs_number = patient.nhs_number
    system = uow.clinical(practice)
    uow.release()
    found = system.find_patient(nhs_number)  # ClinicalSystemError reaches the page as it is
    if found is None:
        raise InputError("This patient was not found in the clinical system. Check their NHS number")
    uow.writing()
    patient = _patient(uow, staff, practice, patient_id)
    old = _state(patient)
    kept = [f for f in patient.flags or [] if isinstance(f, dict) and f.get("source") == SOURCE_PRACTICE]
    read = _read_flags(uow, patient, found.flags)
    patient.flags = read + kept
    patient.flags_read_at = uow.now()
    new = _state(patient)
    if _codes(new["flags"]) != _codes(old["flags"]):
        _audit_change(uow, staff, practice, patient, old, new)
    uow.commit()
    return len(read)


def _read_flags(uow: AbstractUnitOfWork, patient: Patient, found: tuple[AccessFlag, ...]) -> list[dict[str, str]]:
    """The codes as read, each enhanced review with the level in force when the gateway first saw it (rule 8).

    A review already held keeps the level it noted; a new one notes the level the patient has now, before it."""
    noted = noted_levels(patient)
    now: str | None = None
    read = []
    for flag in found:
        entry = {"code": flag.code, "date": flag.recorded_on.isoformat(), "source": SOURCE_CLINICAL}
        if flag.code == FLAG_ENHANCED_REVIEW:
            then = noted.get((flag.code, entry["date"]))
            if then is None:
                now = now or patient_access(uow.session, patient, uow.today()).record_level.value
                then = now
            entry["level_then"] = then
        read.append(entry)
    return read


def _codes(flags: list[Any]) -> list[tuple[str, str, str]]:
    return sorted((str(f.get("code")), str(f.get("date")), str(f.get("source", SOURCE_CLINICAL))) for f in flags)


def _uk(day: dt.date) -> str:
    return f"{day.day} {day:%B %Y}"
