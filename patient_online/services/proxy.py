"""Proxy access: ask to act for someone, reception's review, consent, switching, ending, and the age rules.

Design rules 17, 18 and 19. Every change writes its audit event in the same transaction, and tells the
people concerned by email (the proxy, and the patient when they have an account of their own).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from patient_online.domain.access import ADULT_AGE, EffectiveAccess, Service
from patient_online.domain.errors import DomainError, NotAllowed, NotFound
from patient_online.domain.nhs_number import is_valid, normalise
from patient_online.domain.proxy import (
    REASON_MAX,
    RELATIONSHIP_MAX,
    AgeDecision,
    LinkFacts,
    Milestone,
    Notice,
    ProxyBasis,
    ProxyStatus,
    age_on,
    approval_problem,
    proxy_review_due,
)
from patient_online.domain.record import RecordLevel
from patient_online.extensions import WRITE_TRANSACTION
from patient_online.models import AccountLink, Patient, Practice, ProxyLink, User, Verification, utcnow

from . import audit, notify
from .access import Acting, Standing, acting_for, active_proxy_links, own_links, patient_access
from .access import today as london_today
from .clinical import system_for
from .linking import ensure_patient, practice_by_ods

LEVELS = (RecordLevel.NONE, RecordLevel.SUMMARY, RecordLevel.DETAILED, RecordLevel.FULL, RecordLevel.HISTORIC)


class ProxyError(DomainError):
    """A proxy rule refused the request; ``field`` names the answer to fix."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def _begin_write(session: Session) -> None:
    """End the request's reads and start a transaction that holds the write lock (SQLite) from its start."""
    session.commit()  # a no-op when nothing was read yet
    session.connection(execution_options=WRITE_TRANSACTION)


def _link_for_update(session: Session, link_id: int) -> ProxyLink | None:
    return session.get(ProxyLink, link_id, with_for_update=True, populate_existing=True)


def _status(link: ProxyLink) -> ProxyStatus:
    return ProxyStatus(link.status)


def _basis(link: ProxyLink) -> ProxyBasis:
    return ProxyBasis(link.basis)


def _own_active_links(session: Session, user: User) -> list[AccountLink]:
    return list(
        session.scalars(
            select(AccountLink)
            .where(AccountLink.user_id == user.id, AccountLink.status == "active")
            .order_by(AccountLink.id)
        )
    )


def _patient_accounts(session: Session, patient_id: int) -> list[User]:
    """The patient's own accounts (usually one), to tell them about people acting for them."""
    return list(
        session.scalars(
            select(User)
            .join(AccountLink, AccountLink.user_id == User.id)
            .where(AccountLink.patient_id == patient_id, AccountLink.status == "active")
        )
    )


def _clean_reason(reason: str, what: str = "a reason") -> str:
    text = (reason or "").strip()
    if not text:
        raise ProxyError(f"Enter {what}", "reason")
    if len(text) > REASON_MAX:
        raise ProxyError(f"Enter a reason of {REASON_MAX} characters or fewer", "reason")
    return text


def _tell(session: Session, users: list[User], template: str, subject: str, body: str) -> None:
    for user in {u.id: u for u in users}.values():
        notify.send_email(session, user.email, template, subject, body)


def _sign_off(practice: Practice) -> str:
    phone = f" on {practice.phone}" if practice.phone else ""
    return f"If you have questions, contact {practice.name}{phone}."


# Asking ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProxyRequest:
    """What a patient tells us about the person they want to act for."""

    practice_ods: str
    nhs_number: str
    date_of_birth: dt.date
    relationship: str
    basis: str


def request_proxy(session: Session, user: User, wanted: ProxyRequest) -> None:
    """Ask to act for another patient; the answer is the same whether or not the person exists (no enumeration).

    Only a match with the practice's clinical system creates a request for reception, and an existing open
    link for the same person is not duplicated. The asker is told by email that the practice will check.
    """
    relationship = (wanted.relationship or "").strip()
    if not relationship:
        raise ProxyError("Enter how you are related to the person, for example: mother", "relationship")
    if len(relationship) > RELATIONSHIP_MAX:
        raise ProxyError(f"Enter a relationship of {RELATIONSHIP_MAX} characters or fewer", "relationship")
    try:
        basis = ProxyBasis(wanted.basis)
    except ValueError:
        raise ProxyError("Choose why you can act for this person", "basis") from None
    number = normalise(wanted.nhs_number)
    if not is_valid(number):
        raise ProxyError("Enter a valid 10-digit NHS number", "nhs_number")
    if not _own_active_links(session, user):
        raise NotAllowed("Link your account to your GP record before you ask to act for someone else.")
    practice = practice_by_ods(session, wanted.practice_ods)
    if practice is None:
        raise ProxyError("Choose the person's GP practice", "practice")
    if not proxy_offered(practice):
        raise ProxyError(f"{practice.name} does not offer proxy access online. Contact the practice.", "practice")
    session.commit()  # never hold a transaction open across the clinical-system call
    person = system_for(practice).find_patient(number)
    matched = person is not None and person.date_of_birth == wanted.date_of_birth

    _begin_write(session)
    link: ProxyLink | None = None
    if matched and person is not None:
        patient = ensure_patient(session, practice, person)
        if any(own.patient_id == patient.id for own in _own_active_links(session, user)):
            session.rollback()
            raise ProxyError(
                "That is your own record. Enter the details of the person you want to act for", "nhs_number"
            )
        existing = session.scalar(
            select(ProxyLink).where(
                ProxyLink.proxy_user_id == user.id,
                ProxyLink.patient_id == patient.id,
                ProxyLink.status.in_([s.value for s in ProxyStatus if s.open]),
            )
        )
        if existing is None:
            link = ProxyLink(
                proxy_user_id=user.id,
                patient_id=patient.id,
                relationship_text=relationship,
                basis=basis.value,
                status=ProxyStatus.REQUESTED.value,
                notices_sent=[],
            )
            session.add(link)
            session.flush()
    audit.record(
        session,
        "proxy.requested",
        actor_id=user.id,
        actor_role="patient",
        subject_user_id=user.id,
        practice_id=practice.id,
        matched=matched,
        link_id=link.id if link else None,
        basis=basis.value,
    )
    notify.send_email(
        session,
        user.email,
        "proxy_requested",
        "We have your request to act for someone",
        f"You asked to act for someone registered at {practice.name}. If the details match a patient there, "
        "the practice will check your request and we will email you when they have decided.\n\n" + _sign_off(practice),
    )
    session.commit()


def proxy_offered(practice: Practice) -> bool:
    """Whether the practice offers proxy access online (its "proxy" service switch)."""
    switch = practice.switch(Service.PROXY.value)
    return bool(switch and switch.enabled)


# The patient's /proxy page -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProxyOverview:
    """Everything the signed-in person's /proxy page shows about acting for others and others acting for them."""

    own: Patient | None
    acting_for: list[ProxyLink]  # active links: people I can switch to
    my_requests: list[ProxyLink]  # decided requests I made that are not active; undecided ones are not shown,
    # so the page never says whether the details matched someone (the email says the same either way)
    consent_requests: list[ProxyLink]  # people asking to act for me, waiting for my answer
    acting_for_me: list[ProxyLink]  # active and suspended links on my own record
    history_for_me: list[ProxyLink] = field(default_factory=list)  # ended, rejected links on my record


def proxy_overview(session: Session, user: User) -> ProxyOverview:
    """The /proxy page: whom I act for, what I asked for, and who acts (or asks to act) for me."""
    linked = _own_active_links(session, user)
    own = linked[0].patient if linked else None
    mine = list(session.scalars(select(ProxyLink).where(ProxyLink.proxy_user_id == user.id).order_by(ProxyLink.id)))
    for_me: list[ProxyLink] = []
    if linked:
        for_me = list(
            session.scalars(
                select(ProxyLink)
                .where(ProxyLink.patient_id.in_([link.patient_id for link in linked]))
                .order_by(ProxyLink.id.desc())
            )
        )
    return ProxyOverview(
        own=own,
        acting_for=[link for link in mine if _status(link) is ProxyStatus.ACTIVE],
        my_requests=[
            link for link in reversed(mine) if _status(link) not in (ProxyStatus.ACTIVE, ProxyStatus.REQUESTED)
        ],
        consent_requests=[link for link in for_me if _status(link) is ProxyStatus.AWAITING_CONSENT],
        acting_for_me=[link for link in for_me if _status(link) in (ProxyStatus.ACTIVE, ProxyStatus.SUSPENDED)],
        history_for_me=[link for link in for_me if _status(link) in (ProxyStatus.ENDED, ProxyStatus.REJECTED)],
    )


def switch_acting_for(session: Session, user: User, patient_id: int | None) -> Acting | None:
    """Check that the user may act for ``patient_id`` (None: their own record); the view stores the choice.

    Raises NotAllowed for anyone the user has no active proxy link to (nothing changes).
    """
    chosen = acting_for(session, user, patient_id)
    if chosen is not None and chosen.is_proxy:
        audit.record(
            session,
            "proxy.switched",
            actor_id=user.id,
            actor_role="proxy",
            patient_id=chosen.patient.id,
            practice_id=chosen.practice.id,
        )
        session.commit()
    return chosen


def switch_choices(session: Session, user: User) -> list[tuple[int | None, str]]:
    """Whose account the user can show: their own record first, then each person they act for."""
    return Standing(None, own_links(session, user), active_proxy_links(session, user)).switch_choices


def link_for(session: Session, user: User, link_id: int, as_patient: bool = False) -> ProxyLink:
    """A link the person is part of, as the proxy or (``as_patient``: only) as the patient; NotAllowed otherwise."""
    link = session.get(ProxyLink, link_id)
    own = {a.patient_id for a in _own_active_links(session, user)}
    party = link is not None and (link.patient_id in own or (not as_patient and link.proxy_user_id == user.id))
    if link is None or not party:
        raise NotAllowed("You cannot see this.")
    return link


# Consent (the patient says yes or no inside the gateway) --------------------------------------------------
def _consent_link(session: Session, user: User, link_id: int) -> ProxyLink:
    link = _link_for_update(session, link_id)
    own = {a.patient_id for a in _own_active_links(session, user)}
    if link is None or link.patient_id not in own:
        raise NotAllowed("You cannot answer for this request.")
    if _status(link) is not ProxyStatus.AWAITING_CONSENT:
        raise ProxyError("This request has already been answered", "decision")
    return link


def give_consent(session: Session, user: User, link_id: int) -> ProxyLink:
    """The patient agrees: the link becomes active with the permissions reception set."""
    _begin_write(session)
    link = _consent_link(session, user, link_id)
    link.status = ProxyStatus.ACTIVE.value
    link.patient_consent_at = utcnow()
    audit.record(
        session,
        "proxy.consent_given",
        actor_id=user.id,
        actor_role="patient",
        patient_id=link.patient_id,
        practice_id=link.patient.practice_id,
        link_id=link.id,
    )
    _tell(
        session,
        [link.proxy],
        "proxy_active",
        f"You can now act for {link.patient.given_name}",
        f"{link.patient.full_name} agreed that you can act for them online. Sign in and choose "
        f"{link.patient.given_name} under 'Acting for'.\n\n" + _sign_off(link.patient.practice),
    )
    session.commit()
    return link


def refuse_consent(session: Session, user: User, link_id: int, reason: str = "") -> ProxyLink:
    """The patient says no: the request is turned down, and kept for the record."""
    _begin_write(session)
    link = _consent_link(session, user, link_id)
    text = (reason or "").strip()
    if len(text) > REASON_MAX:
        raise ProxyError(f"Enter a reason of {REASON_MAX} characters or fewer", "reason")
    link.status = ProxyStatus.REJECTED.value
    link.status_reason = text or "The patient did not agree."
    link.ended_at = utcnow()
    link.ended_by_id = user.id
    audit.record(
        session,
        "proxy.consent_refused",
        actor_id=user.id,
        actor_role="patient",
        patient_id=link.patient_id,
        practice_id=link.patient.practice_id,
        link_id=link.id,
    )
    _tell(
        session,
        [link.proxy],
        "proxy_refused",
        "Your request to act for someone was not agreed",
        f"{link.patient.full_name} did not agree to you acting for them online.\n\n" + _sign_off(link.patient.practice),
    )
    session.commit()
    return link


# Ending ---------------------------------------------------------------------------------------------------
def end_link(session: Session, user: User, link_id: int, reason: str) -> ProxyLink:
    """The proxy or the patient ends a link (or withdraws a request) at any time, with a reason; it is kept."""
    text = _clean_reason(reason, "why you are ending this")
    _begin_write(session)
    link = _link_for_update(session, link_id)
    own = {a.patient_id for a in _own_active_links(session, user)}
    if link is None or (link.proxy_user_id != user.id and link.patient_id not in own):
        raise NotAllowed("You cannot end this.")
    if not _status(link).open:
        raise ProxyError("This has already ended", "reason")
    by_proxy = link.proxy_user_id == user.id
    _close(session, link, user, ProxyStatus.ENDED, text)
    audit.record(
        session,
        "proxy.ended",
        actor_id=user.id,
        actor_role="proxy" if by_proxy else "patient",
        patient_id=link.patient_id,
        practice_id=link.patient.practice_id,
        link_id=link.id,
        reason=text,
    )
    who = link.proxy.display_name if by_proxy else link.patient.full_name
    _tell_both(
        session,
        link,
        "proxy_ended",
        "Proxy access has ended",
        f"{who} ended {link.proxy.display_name}'s access to act for {link.patient.full_name} online.\nReason: {text}",
    )
    session.commit()
    return link


def _close(session: Session, link: ProxyLink, by: User, status: ProxyStatus, reason: str) -> None:
    link.status = status.value
    link.status_reason = reason
    link.ended_at = utcnow()
    link.ended_by_id = by.id


def _tell_both(session: Session, link: ProxyLink, template: str, subject: str, body: str) -> None:
    _tell(
        session,
        [link.proxy, *_patient_accounts(session, link.patient_id)],
        template,
        subject,
        f"{body}\n\n{_sign_off(link.patient.practice)}",
    )


# Reception ------------------------------------------------------------------------------------------------
def _require_reception(staff: User, practice: Practice) -> None:
    if not any(m.practice_id == practice.id and m.role == "receptionist" for m in staff.memberships):
        raise NotAllowed("Only reception staff of this practice can review proxy access.")


def _practice_link(session: Session, staff: User, practice: Practice, link_id: int, lock: bool = False) -> ProxyLink:
    _require_reception(staff, practice)
    link = _link_for_update(session, link_id) if lock else session.get(ProxyLink, link_id)
    if link is None or link.patient.practice_id != practice.id:
        raise NotFound("We could not find that proxy request at your practice.")
    return link


@dataclass(frozen=True)
class QueueLine:
    link: ProxyLink
    age: int
    due: str = ""  # a plain note when the age rules will act soon


def practice_links(
    session: Session, staff: User, practice: Practice, statuses: tuple[ProxyStatus, ...]
) -> list[QueueLine]:
    """The practice's proxy links in the given states, oldest first, with each patient's age today."""
    _require_reception(staff, practice)
    today = london_today()
    links = session.scalars(
        select(ProxyLink)
        .join(Patient, Patient.id == ProxyLink.patient_id)
        .where(Patient.practice_id == practice.id, ProxyLink.status.in_([s.value for s in statuses]))
        .order_by(ProxyLink.created_at, ProxyLink.id)
    ).all()
    return [
        QueueLine(link, age_on(link.patient.date_of_birth, today), _due_note(link, practice, today)) for link in links
    ]


def _facts(link: ProxyLink) -> LinkFacts:
    return LinkFacts(
        basis=_basis(link),
        status=_status(link),
        competence_assessed=link.competence_assessed,
        child_consent=link.child_consent,
        notices_sent=frozenset(str(k) for k in (link.notices_sent or [])),
    )


def _due_note(link: ProxyLink, practice: Practice, today: dt.date) -> str:
    if not _basis(link).parental or _status(link) is not ProxyStatus.ACTIVE:
        return ""
    facts = LinkFacts(_basis(link), _status(link), link.competence_assessed, link.child_consent)
    decision = proxy_review_due(facts, link.patient.date_of_birth, today, practice.proxy_review_age, 3650)
    if decision.suspend is not None:
        return "Due for suspension at the next check"
    if decision.notices:
        first = decision.notices[0]
        what = "review" if first.milestone is Milestone.REVIEW else "suspension at 16"
        return f"Due for {what} on {first.on.day} {first.on:%B %Y}"
    return ""


@dataclass(frozen=True)
class ReviewView:
    """One proxy link as reception reviews it."""

    link: ProxyLink
    age: int
    is_child: bool
    review_age: int
    proxy_patient: Patient | None  # the proxy's own linked record
    proxy_verification: Verification | None
    patient_access: EffectiveAccess
    proxy_offered: bool
    allowed_levels: tuple[RecordLevel, ...]
    patient_has_account: bool
    age_problem: str

    @property
    def offers_appointments(self) -> bool:
        return self.patient_access.allows(Service.APPOINTMENTS)

    @property
    def offers_prescriptions(self) -> bool:
        return self.patient_access.allows(Service.PRESCRIPTIONS)


def review_view(session: Session, staff: User, practice: Practice, link_id: int) -> ReviewView:
    """The link, who the proxy is and how they were verified, the patient's own access, and the age rules."""
    link = _practice_link(session, staff, practice, link_id)
    today = london_today()
    age = age_on(link.patient.date_of_birth, today)
    own_link = session.scalar(
        select(AccountLink)
        .where(AccountLink.user_id == link.proxy_user_id, AccountLink.status == "active")
        .order_by(AccountLink.id)
    )
    verification = (
        session.scalar(
            select(Verification)
            .where(Verification.patient_id == own_link.patient_id)
            .order_by(Verification.verified_at.desc())
        )
        if own_link
        else None
    )
    access = patient_access(session, link.patient)
    return ReviewView(
        link=link,
        age=age,
        is_child=age < ADULT_AGE,
        review_age=practice.proxy_review_age,
        proxy_patient=own_link.patient if own_link else None,
        proxy_verification=verification,
        patient_access=access,
        proxy_offered=proxy_offered(practice),
        allowed_levels=allowed_levels(access),
        patient_has_account=bool(_patient_accounts(session, link.patient_id)),
        age_problem=approval_problem(
            _basis(link), age, practice.proxy_review_age, link.competence_assessed and link.child_consent
        ),
    )


def allowed_levels(access: EffectiveAccess) -> tuple[RecordLevel, ...]:
    """Record levels reception may give a proxy: never more than the patient's own access allows."""
    if not access.services.get(Service.RECORD, False):
        return (RecordLevel.NONE,)
    return tuple(level for level in LEVELS if level <= access.record_level)


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


def approve_proxy(session: Session, staff: User, practice: Practice, link_id: int, approval: Approval) -> ProxyLink:
    """Reception confirms the basis, the evidence and the safeguarding check, and sets capped permissions.

    With the patient's consent as the basis, the patient is asked inside the gateway and the link waits for them.
    """
    _begin_write(session)
    link = _practice_link(session, staff, practice, link_id, lock=True)
    if _status(link) is not ProxyStatus.REQUESTED:
        raise ProxyError("This request has already been decided", "basis")
    try:
        basis = ProxyBasis(approval.basis)
    except ValueError:
        raise ProxyError("Choose the basis you have confirmed", "basis") from None
    evidence = approval.evidence.strip()
    if not evidence:
        raise ProxyError("Enter the evidence you have seen, for example: birth certificate", "evidence")
    if len(evidence) > 2000:
        raise ProxyError("Enter evidence of 2000 characters or fewer", "evidence")
    if not approval.safeguarding_checked:
        raise ProxyError("Confirm that you have checked for coercion and safeguarding concerns", "safeguarding_checked")
    notes = approval.safeguarding_notes.strip()
    if not notes:
        raise ProxyError(
            "Enter what you checked and found, for example: spoke to the patient alone", "safeguarding_notes"
        )
    if len(notes) > 2000:
        raise ProxyError("Enter notes of 2000 characters or fewer", "safeguarding_notes")
    if not proxy_offered(practice):
        raise ProxyError("Proxy access is switched off for your practice. A practice manager can switch it on", "basis")
    if not _own_links_of(session, link.proxy_user_id):
        raise ProxyError(
            "The person asking is no longer linked to their own GP record, so they are not verified", "basis"
        )
    level = _capped_permissions(session, link.patient, approval)
    today = london_today()
    age = age_on(link.patient.date_of_birth, today)
    child_agreed = approval.competence_assessed and approval.child_consent
    problem = approval_problem(basis, age, practice.proxy_review_age, child_agreed)
    if problem:
        raise ProxyError(problem, "basis" if age >= ADULT_AGE else "competence_assessed")
    patient_accounts = _patient_accounts(session, link.patient_id)
    if basis.needs_patient_consent and not patient_accounts:
        raise ProxyError(
            f"{link.patient.full_name} has no online account, so they cannot give consent online. "
            "Ask them to register first, or choose another basis",
            "basis",
        )
    now = utcnow()
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
    audit.record(
        session,
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
    if basis.needs_patient_consent:
        _tell(
            session,
            patient_accounts,
            "proxy_consent",
            "Someone has asked to act for you online",
            f"{link.proxy.display_name} ({link.relationship_text}) has asked to act for you online. "
            f"{practice.name} has checked the request. Sign in and go to 'Proxy access' to say yes or no. "
            "Nothing changes until you answer.\n\n" + _sign_off(practice),
        )
        _tell(
            session,
            [link.proxy],
            "proxy_awaiting_consent",
            "Your request to act for someone has been checked",
            f"{practice.name} has checked your request. {link.patient.given_name} now needs to agree online; "
            "we will email you when they answer.\n\n" + _sign_off(practice),
        )
    else:
        _tell_both(
            session,
            link,
            "proxy_active",
            "Proxy access approved",
            f"{practice.name} approved {link.proxy.display_name}'s access to act for {link.patient.full_name} "
            f"online. {_permission_words(link)}",
        )
    session.commit()
    return link


def _own_links_of(session: Session, user_id: int) -> list[AccountLink]:
    return list(
        session.scalars(select(AccountLink).where(AccountLink.user_id == user_id, AccountLink.status == "active"))
    )


def _capped_permissions(session: Session, patient: Patient, approval: Approval) -> RecordLevel:
    """Refuse permissions above what the practice offers and the patient's own rules allow."""
    own = patient_access(session, patient)
    if approval.can_appointments and not own.allows(Service.APPOINTMENTS):
        raise ProxyError(
            "Online appointments are not available to this patient, so a proxy cannot have them", "can_appointments"
        )
    if approval.can_prescriptions and not own.allows(Service.PRESCRIPTIONS):
        raise ProxyError(
            "Repeat prescriptions are not available to this patient online, so a proxy cannot have them",
            "can_prescriptions",
        )
    try:
        level = RecordLevel(approval.record_level)
    except ValueError:
        raise ProxyError("Choose how much of the GP record the proxy can see", "record_level") from None
    allowed = allowed_levels(own)
    if level not in allowed:
        most = allowed[-1]
        raise ProxyError(
            f"The patient's own access is '{most.label.lower()}'. Choose that or less for the proxy", "record_level"
        )
    if not (approval.can_appointments or approval.can_prescriptions or level > RecordLevel.NONE):
        raise ProxyError("Choose at least one thing the proxy can do", "can_appointments")
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


def reject_proxy(session: Session, staff: User, practice: Practice, link_id: int, reason: str) -> ProxyLink:
    """Reception turns a request down, with a reason the asker sees."""
    text = _clean_reason(reason, "the reason the person asking will see")
    _begin_write(session)
    link = _practice_link(session, staff, practice, link_id, lock=True)
    if _status(link) is not ProxyStatus.REQUESTED:
        raise ProxyError("This request has already been decided", "reason")
    _close(session, link, staff, ProxyStatus.REJECTED, text)
    link.decided_at = link.ended_at
    link.decided_by_id = staff.id
    audit.record(
        session,
        "proxy.rejected",
        actor_id=staff.id,
        actor_role="receptionist",
        subject_user_id=link.proxy_user_id,
        practice_id=practice.id,
        link_id=link.id,
        reason=text,
    )
    _tell(
        session,
        [link.proxy],
        "proxy_rejected",
        "Your request to act for someone was turned down",
        f"{practice.name} turned down your request to act for someone online.\nReason: {text}\n\n"
        + _sign_off(practice),
    )
    session.commit()
    return link


def record_competence(
    session: Session, staff: User, practice: Practice, link_id: int, competence_assessed: bool, child_consent: bool
) -> ProxyLink:
    """Reception records (or clears) the child's competence assessment and consent on a parental link."""
    _begin_write(session)
    link = _practice_link(session, staff, practice, link_id, lock=True)
    if not _basis(link).parental or not _status(link).open:
        raise ProxyError("This applies to open links based on parental responsibility only", "competence_assessed")
    if child_consent and not competence_assessed:
        raise ProxyError("Record the competence assessment as well as the child's consent", "competence_assessed")
    link.competence_assessed = competence_assessed
    link.child_consent = child_consent
    audit.record(
        session,
        "proxy.competence_recorded",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=link.patient_id,
        practice_id=practice.id,
        link_id=link.id,
        competence_assessed=competence_assessed,
        child_consent=child_consent,
    )
    session.commit()
    return link


def suspend_proxy(session: Session, staff: User, practice: Practice, link_id: int, reason: str) -> ProxyLink:
    """Reception pauses an active link (for example, a change of responsibility); it is kept for audit."""
    text = _clean_reason(reason)
    _begin_write(session)
    link = _practice_link(session, staff, practice, link_id, lock=True)
    if _status(link) is not ProxyStatus.ACTIVE:
        raise ProxyError("Only active access can be suspended", "reason")
    link.status = ProxyStatus.SUSPENDED.value
    link.status_reason = text
    link.decided_at = utcnow()
    link.decided_by_id = staff.id
    audit.record(
        session,
        "proxy.suspended",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=link.patient_id,
        subject_user_id=link.proxy_user_id,
        practice_id=practice.id,
        link_id=link.id,
        reason=text,
    )
    _tell_both(
        session,
        link,
        "proxy_suspended",
        "Proxy access has been paused",
        f"{practice.name} has paused {link.proxy.display_name}'s access to act for {link.patient.full_name} "
        f"online.\nReason: {text}",
    )
    session.commit()
    return link


def reinstate_proxy(session: Session, staff: User, practice: Practice, link_id: int) -> ProxyLink:
    """Reception restarts a suspended link, when the age rules and the practice's switch allow it."""
    _begin_write(session)
    link = _practice_link(session, staff, practice, link_id, lock=True)
    if _status(link) is not ProxyStatus.SUSPENDED:
        raise ProxyError("Only suspended access can be restarted", "reinstate")
    if not proxy_offered(practice):
        raise ProxyError(
            "Proxy access is switched off for your practice. A practice manager can switch it on", "reinstate"
        )
    age = age_on(link.patient.date_of_birth, london_today())
    problem = approval_problem(
        _basis(link), age, practice.proxy_review_age, link.competence_assessed and link.child_consent
    )
    if problem:
        raise ProxyError(problem, "reinstate")
    link.status = ProxyStatus.ACTIVE.value
    link.status_reason = ""
    link.decided_at = utcnow()
    link.decided_by_id = staff.id
    audit.record(
        session,
        "proxy.reinstated",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=link.patient_id,
        subject_user_id=link.proxy_user_id,
        practice_id=practice.id,
        link_id=link.id,
    )
    _tell_both(
        session,
        link,
        "proxy_reinstated",
        "Proxy access has restarted",
        f"{practice.name} has restarted {link.proxy.display_name}'s access to act for {link.patient.full_name} online.",
    )
    session.commit()
    return link


def end_proxy_by_reception(session: Session, staff: User, practice: Practice, link_id: int, reason: str) -> ProxyLink:
    """Reception ends a link (or withdraws a request) for good, with a reason; it is kept for audit."""
    text = _clean_reason(reason)
    _begin_write(session)
    link = _practice_link(session, staff, practice, link_id, lock=True)
    if not _status(link).open:
        raise ProxyError("This has already ended", "reason")
    _close(session, link, staff, ProxyStatus.ENDED, text)
    audit.record(
        session,
        "proxy.ended",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=link.patient_id,
        subject_user_id=link.proxy_user_id,
        practice_id=practice.id,
        link_id=link.id,
        reason=text,
    )
    _tell_both(
        session,
        link,
        "proxy_ended",
        "Proxy access has ended",
        f"{practice.name} ended {link.proxy.display_name}'s access to act for {link.patient.full_name} online.\n"
        f"Reason: {text}",
    )
    session.commit()
    return link


# The age rules (flask proxies review) ---------------------------------------------------------------------
@dataclass
class AgeRulesReport:
    checked: int = 0
    suspended: int = 0
    notices: int = 0

    def __str__(self) -> str:
        return f"checked {self.checked}, suspended {self.suspended}, notices sent {self.notices}"


def apply_age_rules(session: Session, today: dt.date | None = None) -> AgeRulesReport:
    """Rule 18 for every active parental link: notices before the review age and 16, suspension on the day.

    Safe to run as often as you like: a suspended link is not looked at again, and each notice is sent once.
    """
    day = today or london_today()
    report = AgeRulesReport()
    _begin_write(session)
    links = session.scalars(
        select(ProxyLink)
        .where(
            ProxyLink.status == ProxyStatus.ACTIVE.value,
            ProxyLink.basis == ProxyBasis.PARENTAL_RESPONSIBILITY.value,
        )
        .order_by(ProxyLink.id)
        .with_for_update()
    ).all()
    for link in links:
        report.checked += 1
        practice = link.patient.practice
        decision = proxy_review_due(
            _facts(link), link.patient.date_of_birth, day, practice.proxy_review_age, practice.proxy_notice_days
        )
        if decision.suspend is not None:
            _suspend_for_age(session, link, practice, decision)
            report.suspended += 1
            continue
        for notice in decision.notices:
            _send_notice(session, link, practice, notice)
            report.notices += 1
    session.commit()
    return report


def _remember(link: ProxyLink, key: str) -> None:
    link.notices_sent = [*(link.notices_sent or []), key]  # a new list, so the JSON change is saved


def _suspend_for_age(session: Session, link: ProxyLink, practice: Practice, decision: AgeDecision) -> None:
    assert decision.suspend is not None
    why = decision.suspend.explain(practice.proxy_review_age)
    link.status = ProxyStatus.SUSPENDED.value
    link.status_reason = f"{why}."
    link.decided_at = utcnow()
    link.decided_by_id = None
    _remember(link, decision.suspend_key)
    audit.record(
        session,
        "proxy.suspended",
        actor_role="system",
        patient_id=link.patient_id,
        subject_user_id=link.proxy_user_id,
        practice_id=practice.id,
        link_id=link.id,
        milestone=decision.suspend.value,
        age=decision.age,
    )
    next_step = (
        f"{practice.name} can restart it after talking with {link.patient.given_name}."
        if decision.suspend is Milestone.REVIEW
        else f"{link.patient.given_name} can now ask for their own account, and can choose to let you act for them."
    )
    _tell_both(
        session,
        link,
        "proxy_suspended_age",
        "Proxy access has been paused",
        f"{link.proxy.display_name}'s access to act for {link.patient.full_name} online has been paused. "
        f"{why}. {next_step}",
    )


def _send_notice(session: Session, link: ProxyLink, practice: Practice, notice: Notice) -> None:
    _remember(link, notice.key)
    when = f"{notice.on.day} {notice.on:%B %Y}"
    why = notice.milestone.explain(practice.proxy_review_age)
    name = link.patient.given_name
    if notice.milestone is Milestone.REVIEW:
        what = (
            f"{name} turns {practice.proxy_review_age} on {when}. {why}. "
            f"Unless {practice.name} has talked with {name} before then, "
            f"{link.proxy.display_name}'s access will be paused on that day. Contact the practice to arrange this."
        )
    else:
        what = f"{name} turns {ADULT_AGE} on {when}. {why}, so {link.proxy.display_name}'s access will be paused then."
    audit.record(
        session,
        "proxy.notice_sent",
        actor_role="system",
        patient_id=link.patient_id,
        subject_user_id=link.proxy_user_id,
        practice_id=practice.id,
        link_id=link.id,
        milestone=notice.milestone.value,
        on=notice.on.isoformat(),
    )
    _tell_both(session, link, "proxy_notice", "Proxy access will change soon", what)
