"""Who the signed-in patient is acting for, and what they may do there (rules 5, 8, 17)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from functools import cache
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, bindparam, exists, not_, select
from sqlalchemy.orm import Session, aliased, joinedload

from patient_online.domain.access import (
    AccessInputs,
    EffectiveAccess,
    PracticeSwitch,
    Service,
    effective_access,
)
from patient_online.domain.errors import NotAllowed, ServiceOff
from patient_online.domain.patients import AccessFlag, PatientRef
from patient_online.domain.proxy import LinkFacts, ProxyBasis, ProxyStatus, proxy_review_due
from patient_online.domain.record import RecordLevel
from patient_online.domain.system_migration import checking_message
from patient_online.models import AccountLink, Patient, Practice, ProxyLink, User, Verification

LONDON = ZoneInfo("Europe/London")


def today() -> dt.date:
    return dt.datetime.now(LONDON).date()


@dataclass(frozen=True)
class Acting:
    """The patient whose services the signed-in person is using, and on what terms."""

    user: User
    patient: Patient
    practice: Practice
    access: EffectiveAccess
    proxy: ProxyLink | None = None

    @property
    def ref(self) -> PatientRef:
        return PatientRef(self.practice.ods_code, self.patient.nhs_number, self.patient.clinical_id)

    @property
    def is_proxy(self) -> bool:
        return self.proxy is not None

    @property
    def actor_role(self) -> str:
        return "proxy" if self.proxy else "patient"

    def require(self, service: Service) -> None:
        """Refuse in the service layer when the service is off for this patient (or this proxy)."""
        if not self.access.allows(service):
            message = self.access.messages.get(service) or ServiceOff.message
            raise ServiceOff(message)


def practice_switches(practice: Practice) -> dict[Service, PracticeSwitch]:
    found = {s.service: s for s in practice.switches}
    return {
        service: PracticeSwitch(enabled=found[service.value].enabled, message=found[service.value].message)
        if service.value in found
        else PracticeSwitch(enabled=False)
        for service in Service
    }


@dataclass(frozen=True)
class Checks:
    """What the patient's identity verifications add up to (rule 3: remote vouching alone limits the record)."""

    in_person: bool
    any: bool
    first_link: bool = False  # the account's link is the patient's first (automatic access dates from it)


def patient_access(
    session: Session,
    patient: Patient,
    on: dt.date | None = None,
    *,
    link: AccountLink | None = None,
    checks: Checks | None = None,
) -> EffectiveAccess:
    """The patient's own effective access, from the practice switches, reception's settings and flags.

    ``link`` and ``checks``, when the caller has them already (the patient gate loads them with the account's
    links), save the two look-ups; ``link`` is used only when ``checks`` says it is the patient's first."""
    day = on or today()
    practice = patient.practice
    if link is None or not (checks and checks.first_link):
        link = session.scalar(select(AccountLink).where(AccountLink.patient_id == patient.id).order_by(AccountLink.id))
    if checks is None:
        found = list(
            session.execute(
                select(Verification.method, Verification.remote).where(Verification.patient_id == patient.id)
            )
        )
        checks = Checks(
            in_person=any(not (method in REMOTE_METHODS and remote) for method, remote in found), any=bool(found)
        )
    remote_only = not checks.in_person and (checks.any or bool(link and link.remote_vouching_only))
    inputs = AccessInputs(
        today=day,
        practice_services=practice_switches(practice),
        practice_default_level=RecordLevel(practice.default_record_level),
        practice_access_start=practice.record_access_start,
        age=_age(patient.date_of_birth, day),
        flags=stored_flags(patient),
        patient_level=RecordLevel(patient.record_level) if patient.record_level else None,
        patient_level_granted_on=patient.record_level_set_at.date() if patient.record_level_set_at else None,
        patient_appointments=patient.appointments_enabled,
        patient_prescriptions=patient.prescriptions_enabled,
        remote_vouching_only=remote_only,
        automatic_since=link.linked_at.date() if link else None,
        practice_name=practice.name,
        # No id at the practice's system: after a change of system, reception is checking who they are there.
        held_message="" if patient.clinical_id else checking_message(practice.name, practice.phone),
    )
    return effective_access(inputs)


REMOTE_METHODS = ("vouching", "vouching_with_confirmation")


def stored_flags(patient: Patient) -> tuple[AccessFlag, ...]:
    """The SNOMED CT access flags the gateway holds for the patient (from the clinical system or reception)."""
    return flags_from(patient.flags)


def flags_from(items: object) -> tuple[AccessFlag, ...]:
    """Access flags from their stored form (a list of {code, date[, level_then]} entries)."""
    flags = []
    for item in items if isinstance(items, list) else []:
        try:
            then = item.get("level_then")
            flags.append(
                AccessFlag(str(item["code"]), dt.date.fromisoformat(str(item["date"])), str(then) if then else None)
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            continue  # a malformed entry steers nothing; the clinical system stays the source of truth
    return tuple(flags)


def noted_levels(patient: Patient) -> dict[tuple[str, str], str]:
    """The level noted on each enhanced-review code the gateway holds, by (code, date): reading the codes
    again from the clinical system must keep them, or rule 8 would forget what access the patient had."""
    return {
        (str(f.get("code")), str(f.get("date"))): str(f["level_then"])
        for f in patient.flags or []
        if isinstance(f, dict) and f.get("level_then")
    }


def _age(born: dt.date, day: dt.date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def proxy_access(session: Session, link: ProxyLink) -> EffectiveAccess:
    """A proxy gets what reception allowed them, never more than the patient's own access.

    When the practice has switched proxy access off, a proxy can use nothing for the patient.
    """
    own = patient_access(session, link.patient)
    proxy_on = own.services[Service.PROXY]
    services = dict(own.services)
    services[Service.APPOINTMENTS] = proxy_on and services[Service.APPOINTMENTS] and link.can_appointments
    services[Service.PRESCRIPTIONS] = proxy_on and services[Service.PRESCRIPTIONS] and link.can_prescriptions
    services[Service.RECORD] = proxy_on and services[Service.RECORD]
    services[Service.PROXY] = False
    level = min(own.record_level, RecordLevel(link.record_level), key=lambda lv: lv.rank)
    messages = dict(own.messages)
    if not proxy_on:
        level = RecordLevel.NONE
        off_message = own.messages.get(Service.PROXY, "")
        if off_message:
            messages.update({s: messages.get(s, off_message) for s in Service})
        explanation = (
            *own.explanation,
            "As a proxy you can use nothing: the GP practice has switched proxy access off",
        )
    else:
        explanation = (*own.explanation, f"As a proxy you may see: {level.label.lower()}")
    return replace(own, services=services, record_level=level, explanation=explanation, messages=messages)


def own_links(session: Session, user: User) -> list[AccountLink]:
    """The user's own links, with each patient, practice and practice switches loaded in the same query."""
    return [link for link, _checks in _own_links_with_checks(session, user)]


def _own_links_with_checks(session: Session, user: User) -> list[tuple[AccountLink, Checks]]:
    """Every patient page needs these through the gate, so one statement brings them all: the links, each
    patient, practice and practice switches, and what the patient's identity checks add up to."""
    rows = session.execute(_links_statement(), {"user_id": user.id}).unique()
    return [(link, _checks(person, any_check, is_first)) for link, person, any_check, is_first in rows]


def _checks(in_person: object, any_check: object, first_link: object) -> Checks:
    return Checks(in_person=bool(in_person), any=bool(any_check), first_link=bool(first_link))


def active_proxy_links(session: Session, user: User) -> list[ProxyLink]:
    """The people the user acts for, each with their patient and practice (the header names them)."""
    return list(session.scalars(_proxies_statement(), {"user_id": user.id}).unique())


# The gate's statements are built once: building a statement with eager loads and subqueries costs more CPU
# than running it (about 2 ms against 0.6 ms), and the gate runs on every patient page.
@cache
def _links_statement() -> Select[tuple[AccountLink, bool, bool, bool]]:
    return (
        select(AccountLink, *_link_checks())
        .where(AccountLink.user_id == bindparam("user_id"))
        .order_by(AccountLink.id)
        .options(_LINK_LOADS)
    )


def _link_checks() -> tuple[ColumnElement[bool], ColumnElement[bool], ColumnElement[bool]]:
    """A link's identity-check facts as EXISTS columns (see Checks)."""
    verified = Verification.patient_id == AccountLink.patient_id
    in_person = exists().where(verified, not_(and_(Verification.method.in_(REMOTE_METHODS), Verification.remote)))
    earlier = aliased(AccountLink)
    first = ~exists().where(earlier.patient_id == AccountLink.patient_id, earlier.id < AccountLink.id)
    return in_person.label("in_person"), exists().where(verified).label("any_check"), first.label("first_link")


_LINK_LOADS = joinedload(AccountLink.patient).joinedload(Patient.practice).joinedload(Practice.switches)


@cache
def _proxies_statement() -> Select[tuple[ProxyLink]]:
    return (
        select(ProxyLink)
        .where(ProxyLink.proxy_user_id == bindparam("user_id"), ProxyLink.status == "active")
        .order_by(ProxyLink.id)
        .options(joinedload(ProxyLink.patient).joinedload(Patient.practice).joinedload(Practice.switches))
    )


@dataclass(frozen=True)
class Standing:
    """Everything the patient gate learns about a signed-in account, read once per request: whose services
    the page is for, the account's own links (suspended ones too) and the people it may act for."""

    acting: Acting | None
    links: list[AccountLink]
    proxies: list[ProxyLink]

    @property
    def switch_choices(self) -> list[tuple[int | None, str]]:
        """Whose account the header can show: the person's own record first, then each person they act for."""
        own: list[tuple[int | None, str]] = (
            [(None, "Your own account")] if any(link.status == "active" for link in self.links) else []
        )
        return own + [(proxy.patient_id, proxy.patient.full_name) for proxy in self.proxies]


@dataclass(frozen=True)
class Account:
    """The signed-in user as the user loader reads them: with their own links (and what the identity checks
    on each add up to) and whether they act for anyone, so the patient gate reads nothing more for most
    people."""

    user: User
    acts_for_others: bool
    links: list[tuple[AccountLink, Checks]]


def signed_in_account(session: Session, user_id: int) -> Account | None:
    """The user with their links, in one statement (one row per link, or one row without a link)."""
    rows = session.execute(_account_statement(), {"user_id": user_id}).unique().all()
    if not rows:
        return None
    links = [(row[2], _checks(*row[3:])) for row in rows if row[2] is not None]
    return Account(user=rows[0][0], acts_for_others=bool(rows[0][1]), links=links)


@cache
def _account_statement() -> Select[tuple[User, bool, AccountLink, bool, bool, bool]]:
    acts = exists().where(ProxyLink.proxy_user_id == User.id, ProxyLink.status == "active")
    return (
        select(User, acts.label("acts_for_others"), AccountLink, *_link_checks())
        .outerjoin(AccountLink, AccountLink.user_id == User.id)
        .where(User.id == bindparam("user_id"))
        .order_by(AccountLink.id)
        .options(_LINK_LOADS)
    )


def standing(session: Session, user: User, patient_id: int | None, account: Account | None = None) -> Standing:
    """The gate's one read: see ``acting_for``. With the ``account`` the user loader read, only the proxy
    links are left to read, and only for someone who acts for others."""
    if account is None or account.user is not user:
        rows, acts_for_others = _own_links_with_checks(session, user), True
    else:
        rows, acts_for_others = account.links, account.acts_for_others
    proxies = active_proxy_links(session, user) if acts_for_others else []
    return Standing(_choose(session, user, patient_id, rows, proxies), [link for link, _ in rows], proxies)


def acting_for(session: Session, user: User, patient_id: int | None) -> Acting | None:
    """The Acting context for the chosen patient (own record by default), or None when not linked yet.

    Raises NotAllowed when the chosen patient is neither the user's own linked record nor an active proxy link.
    """
    return standing(session, user, patient_id).acting


def _choose(
    session: Session,
    user: User,
    patient_id: int | None,
    rows: list[tuple[AccountLink, Checks]],
    proxies: list[ProxyLink],
) -> Acting | None:
    active = [(link, checks) for link, checks in rows if link.status == "active"]
    if patient_id is not None:
        for link, checks in active:
            if link.patient_id == patient_id:
                return _own(session, user, link, checks)
        for proxy in proxies:
            if proxy.patient_id == patient_id:
                if held_for_age_review(proxy):
                    raise NotAllowed("Access for this person is paused until their GP practice reviews it.")
                return Acting(user, proxy.patient, proxy.patient.practice, proxy_access(session, proxy), proxy)
        raise NotAllowed("You cannot act for this person.")
    return _own(session, user, *active[0]) if active else None


def held_for_age_review(link: ProxyLink, on: dt.date | None = None) -> bool:
    """Rule 18 at request time too: a parental link past the review age (or 16) gives nothing, even before
    the daily `proxies review` run has suspended it formally."""
    facts = LinkFacts(
        basis=ProxyBasis(link.basis),
        status=ProxyStatus(link.status),
        competence_assessed=link.competence_assessed,
        child_consent=link.child_consent,
    )
    decision = proxy_review_due(
        facts, link.patient.date_of_birth, on or today(), link.patient.practice.proxy_review_age
    )
    return decision.suspend is not None


def _own(session: Session, user: User, link: AccountLink, checks: Checks) -> Acting:
    access = patient_access(session, link.patient, link=link, checks=checks)
    return Acting(user, link.patient, link.patient.practice, access)
