"""Reception's side: approving a request (basis, evidence, safeguarding, capped permissions) and the child's say."""

from __future__ import annotations

from dataclasses import dataclass

from patient_online.domain.access import ADULT_AGE, Service
from patient_online.domain.errors import InputError
from patient_online.domain.proxy import ProxyBasis, ProxyStatus, age_on, approval_problem
from patient_online.domain.record import RecordLevel
from patient_online.models import Patient, Practice, ProxyLink, User

from ..access import patient_access
from ..unit_of_work import AbstractUnitOfWork
from .common import (
    LinkChange,
    allowed_levels,
    basis_of,
    own_active_links,
    patient_accounts,
    proxy_offered,
    sign_off,
    status_of,
    tell,
    tell_both,
)
from .review import practice_link

NOTES_MAX = 2000


@dataclass(frozen=True)
class Approval:
    """What reception records when it approves a proxy request."""

    basis: str
    evidence: str
    safeguarding_checked: bool
    safeguarding_notes: str
    can_appointments: bool
    can_prescriptions: bool
    record_level: str
    competence_assessed: bool = False
    child_consent: bool = False


def _checked_basis(approval: Approval) -> ProxyBasis:
    try:
        return ProxyBasis(approval.basis)
    except ValueError:
        raise InputError("Choose the basis you have confirmed", "basis") from None


def _checked_evidence_and_safeguarding(approval: Approval) -> tuple[str, str]:
    """The evidence seen and the coercion and safeguarding check: both required before any access starts."""
    evidence = approval.evidence.strip()
    if not evidence:
        raise InputError("Enter the evidence you have seen, for example: birth certificate", "evidence")
    if len(evidence) > NOTES_MAX:
        raise InputError(f"Enter evidence of {NOTES_MAX} characters or fewer", "evidence")
    if not approval.safeguarding_checked:
        raise InputError("Confirm that you have checked for coercion and safeguarding concerns", "safeguarding_checked")
    notes = approval.safeguarding_notes.strip()
    if not notes:
        raise InputError(
            "Enter what you checked and found, for example: spoke to the patient alone", "safeguarding_notes"
        )
    if len(notes) > NOTES_MAX:
        raise InputError(f"Enter notes of {NOTES_MAX} characters or fewer", "safeguarding_notes")
    return evidence, notes


def approve_proxy(
    uow: AbstractUnitOfWork, staff: User, practice: Practice, link_id: int, approval: Approval
) -> LinkChange:
    """Reception confirms the basis, the evidence and the safeguarding check, and sets capped permissions.

    With the patient's consent as the basis, the patient is asked inside the gateway and the link waits for them.
    """
    uow.writing()
    link = practice_link(uow, staff, practice, link_id, lock=True)
    if status_of(link) is not ProxyStatus.REQUESTED:
        raise InputError("This request has already been decided", "basis")
    basis = _checked_basis(approval)
    evidence, notes = _checked_evidence_and_safeguarding(approval)
    if not proxy_offered(practice):
        raise InputError("Proxy access is switched off for your practice. A practice manager can switch it on", "basis")
    if not own_active_links(uow, link.proxy_user_id):
        raise InputError(
            "The person asking is no longer linked to their own GP record, so they are not verified", "basis"
        )
    level = _capped_permissions(uow, link.patient, approval)
    age = age_on(link.patient.date_of_birth, uow.today())
    child_agreed = approval.competence_assessed and approval.child_consent
    problem = approval_problem(basis, age, practice.proxy_review_age, child_agreed)
    if problem:
        raise InputError(problem, "basis" if age >= ADULT_AGE else "competence_assessed")
    accounts = patient_accounts(uow, link.patient_id)
    if basis.needs_patient_consent and not accounts:
        raise InputError(
            f"{link.patient.full_name} has no online account, so they cannot give consent online. "
            "Ask them to register first, or choose another basis",
            "basis",
        )
    now = uow.now()
    link.basis = basis.value
    link.evidence = evidence
    link.safeguarding_notes = notes
    link.safeguarding_checked_by_id = staff.id
    link.safeguarding_checked_at = now
    link.can_appointments = approval.can_appointments
    link.can_prescriptions = approval.can_prescriptions
    link.record_level = level.value
    link.competence_assessed = approval.competence_assessed
    link.child_consent = approval.child_consent
    link.decided_at = now
    link.decided_by_id = staff.id
    link.status = (ProxyStatus.AWAITING_CONSENT if basis.needs_patient_consent else ProxyStatus.ACTIVE).value
    uow.audit(
        "proxy.approved",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=link.patient_id,
        subject_user_id=link.proxy_user_id,
        practice_id=practice.id,
        link_id=link.id,
        basis=basis.value,
        appointments=link.can_appointments,
        prescriptions=link.can_prescriptions,
        record_level=link.record_level,
        awaiting_consent=basis.needs_patient_consent,
    )
    _tell_approved(uow, link, practice, accounts)
    uow.commit()
    return LinkChange.of(link)


def _tell_approved(uow: AbstractUnitOfWork, link: ProxyLink, practice: Practice, accounts: list[User]) -> None:
    if status_of(link) is ProxyStatus.AWAITING_CONSENT:
        closing = "\n\n" + sign_off(practice)
        tell(
            uow,
            accounts,
            "proxy_consent",
            "Someone has asked to act for you online",
            f"{link.proxy.display_name} ({link.relationship_text}) has asked to act for you online. "
            f"{practice.name} has checked the request. Sign in and go to 'Proxy access' to say yes or no. "
            "Nothing changes until you answer." + closing,
        )
        tell(
            uow,
            [link.proxy],
            "proxy_awaiting_consent",
            "Your request to act for someone has been checked",
            f"{practice.name} has checked your request. {link.patient.given_name} now needs to agree online; "
            "we will email you when they answer." + closing,
        )
        return
    tell_both(
        uow,
        link,
        "proxy_active",
        "Proxy access approved",
        f"{practice.name} approved {link.proxy.display_name}'s access to act for {link.patient.full_name} "
        f"online. {_permission_words(link)}",
    )


def _capped_permissions(uow: AbstractUnitOfWork, patient: Patient, approval: Approval) -> RecordLevel:
    """Refuse permissions above what the practice offers and the patient's own rules allow."""
    own = patient_access(uow.session, patient, uow.today())
    if approval.can_appointments and not own.allows(Service.APPOINTMENTS):
        raise InputError(
            "Online appointments are not available to this patient, so a proxy cannot have them", "can_appointments"
        )
    if approval.can_prescriptions and not own.allows(Service.PRESCRIPTIONS):
        raise InputError(
            "Repeat prescriptions are not available to this patient online, so a proxy cannot have them",
            "can_prescriptions",
        )
    try:
        level = RecordLevel(approval.record_level)
    except ValueError:
        raise InputError("Choose how much of the GP record the proxy can see", "record_level") from None
    allowed = allowed_levels(own)
    if level not in allowed:
        most = allowed[-1]
        raise InputError(
            f"The patient's own access is '{most.label.lower()}'. Choose that or less for the proxy", "record_level"
        )
    if not (approval.can_appointments or approval.can_prescriptions or level > RecordLevel.NONE):
        raise InputError("Choose at least one thing the proxy can do", "can_appointments")
    return level


def _permission_words(link: ProxyLink) -> str:
    can = []
    if link.can_appointments:
        can.append("book and cancel appointments")
    if link.can_prescriptions:
        can.append("order repeat prescriptions")
    level = RecordLevel(link.record_level)
    if level > RecordLevel.NONE:
        can.append(f"see {level.includes}")
    if not can:
        return ""
    return "They can " + ", ".join(can[:-1]) + (" and " if len(can) > 1 else "") + can[-1] + "."


def record_competence(
    uow: AbstractUnitOfWork,
    staff: User,
    practice: Practice,
    link_id: int,
    competence_assessed: bool,
    child_consent: bool,
) -> LinkChange:
    """Reception records (or clears) the child's competence assessment and consent on a parental link."""
    uow.writing()
    link = practice_link(uow, staff, practice, link_id, lock=True)
    if not basis_of(link).parental or not status_of(link).open:
        raise InputError("This applies to open links based on parental responsibility only", "competence_assessed")
    if child_consent and not competence_assessed:
        raise InputError("Record the competence assessment as well as the child's consent", "competence_assessed")
    link.competence_assessed = competence_assessed
    link.child_consent = child_consent
    uow.audit(
        "proxy.competence_recorded",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=link.patient_id,
        practice_id=practice.id,
        link_id=link.id,
        competence_assessed=competence_assessed,
        child_consent=child_consent,
    )
    uow.commit()
    return LinkChange.of(link)
