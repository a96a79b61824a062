"""The audit events a patient may see about their own account and record (design rule 19), in plain words.

Each event becomes one sentence that names who did what and, where it matters, what was looked at ("You viewed
your test results", "Riverside Medical Centre staff looked at your request to link your account"). The page is
read on a phone, so it comes a page of 25 at a time, newest first.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, not_, or_, select

from patient_online.domain.record import Section
from patient_online.models import AccountLink, AuditEvent, Patient, Practice, User

from .unit_of_work import AbstractUnitOfWork

LONDON = ZoneInfo("Europe/London")
PER_PAGE = 25

# What someone did, said after who did it: "{who} {phrase}". {your} is "your" or "Sam Jones's" (when the
# patient acts for someone else), {them} is "you" or "Sam Jones", {for_} is "" or " for Sam Jones".
DONE = {
    "sign_in": "signed in",
    "sign_out": "signed out",
    "account.registered": "created your account",
    "account.email_confirmed": "confirmed your email address",
    "account.totp_enrolled": "set up an authenticator app for security codes",
    "account.second_factor_email": "chose to get security codes by email",
    "account.password_changed": "changed your password",
    "account.email_change_requested": "asked to change your email address",
    "account.email_changed": "changed your email address",
    "nhs_login.bound": "connected your NHS login to this account",
    "link.requested": "asked to link your account to your GP record",
    "link.letter_used": "linked your account to your GP record with a linkage letter",
    "link.nhs_login": "linked your account to your GP record through NHS login",
    "verification.viewed": "looked at your request to link your account",
    "patient.viewed": "looked at your details",
    "patient.opened": "looked at your details",
    "verification.approved": "checked your identity and linked your account to your GP record",
    "verification.rejected": "turned down your request to link your account",
    "linkage_letter.issued": "gave you a linkage letter",
    "account.suspended": "suspended your online access",
    "account.reinstated": "restarted your online access",
    "account.closed": "closed your online account",
    "subject_access.downloaded": "downloaded a copy of the data the online service holds about you",
    "subject_access.produced": "gave you a copy of the data the online service holds about you",
    "contact.mobile_code_sent": "sent a code to confirm your mobile number",
    "contact.mobile_confirmed": "confirmed your mobile number for text messages",
    "contact.mobile_removed": "removed your mobile number",
    "contact.channels_changed": "changed how you are told about appointments, prescriptions and your account",
    "appointments.viewed": "viewed {your} appointments",
    "appointment.booked": "booked an appointment{for_}",
    "appointment.cancelled": "cancelled an appointment{for_}",
    "appointment.cancel_queued": "asked to cancel an appointment{for_} (sent when the practice's system is back)",
    "appointment.rescheduled": "moved an appointment{for_} to a new time",
    "appointment.amended": "changed the reason for an appointment{for_}",
    "appointment.reschedule_incomplete": "moved an appointment{for_}, but the old one could not be cancelled",
    "prescription.ordered": "ordered repeat prescriptions{for_}",
    "prescription.cancelled": "cancelled a repeat prescription request{for_}",
    "pharmacy.nominated": "changed {your} nominated pharmacy",
    "prescription.template_viewed": "viewed {your} repeat medicines",
    "prescription.requests_viewed": "viewed {your} repeat prescription requests",
    "prescription.approved": "approved a repeat prescription request{for_}",
    "prescription.rejected": "turned down a repeat prescription request{for_}",
    "prescription.issued": "sent a prescription{for_} to the pharmacy",
    "prescription.requested": "received a repeat prescription request{for_}",
    "access.changed": "changed {your} online access",
    "access.viewed": "looked at {your} online access settings",
    "access.refused": "tried to open a page you do not have access to",
    "proxy.requested": "asked to act for {them}",
    "proxy.approved": "approved a request to act for {them}",
    "proxy.rejected": "turned down a request to act for {them}",
    "proxy.ended": "ended proxy access for {them}",
    "proxy.suspended": "suspended proxy access for {them}",
    "proxy.reinstated": "restarted proxy access for {them}",
    "proxy.consent_given": "agreed that someone can act for {them}",
    "proxy.consent_refused": "said no to someone acting for {them}",
    "proxy.competence_recorded": "recorded whether {them} understood and agreed to proxy access",
    "proxy.switched": "started acting for {them}",
}

# Events nobody in particular did (the gateway's own work, or someone not signed in): whole sentences.
HAPPENED = {
    "sign_in.failed": "Someone tried to sign in to your account, but the details were wrong",
    "account.password_reset": "Your password was reset with a link sent by email",
    "account.reset_requested": "Someone asked for a link to reset your password",
    "account.register_duplicate": "Someone tried to create an account with your email address",
    "link.request_unmatched": "A request to link your account could not be matched to a GP record",
    "link.nhs_login_unmatched": "Your NHS login could not be matched to a GP record",
    "link.letter_failed": "A linkage letter could not be used because the details did not match",
    "appointment.cancel_failed": "A cancellation{for_} could not be sent to the GP practice",
    "prescription.sent": "A repeat prescription request{for_} was sent to the GP practice",
    "prescription.failed": "A repeat prescription request{for_} could not be sent to the GP practice",
    "proxy.suspended": "Proxy access for {them} was suspended",
    "proxy.notice_sent": "We sent a notice that proxy access for {them} will change",
}

FAILED_SIGN_IN = {
    "password": "Someone entered the wrong password for your account",
    "code": "Someone entered a wrong security code for your account",
    "nhs_login": "A sign-in with NHS login did not work",
}

# Described by their detail (the section viewed, the format downloaded), not by DONE.
DESCRIBED_APART = {"record.viewed", "record.downloaded"}

STAFF_ROLES = {"receptionist", "practice_manager", "staff", "system_admin"}

# Staff looking at a patient's details is audited at every page view, but the patient reads it as one line per
# day and practice ("Riverside Medical Centre staff looked at your request to link your account"): eight views
# in one check are one check. What they looked at, in the order it is said.
STAFF_VIEWS = {
    "patient.viewed": "your details",
    "patient.opened": "your details",
    "verification.viewed": "your request to link your account",
    "access.viewed": "{your} online access settings",
}


@dataclass(frozen=True)
class ActivityLine:
    """One event as the patient reads it: ``text`` is the sentence, ``who`` and ``what`` its two halves."""

    at: dt.datetime
    who: str
    what: str
    text: str

    @property
    def day(self) -> dt.date:
        return self.at.astimezone(LONDON).date()


@dataclass(frozen=True)
class ActivityPage:
    lines: list[ActivityLine]
    page: int
    pages: int
    total: int

    @property
    def days(self) -> list[tuple[dt.date, list[ActivityLine]]]:
        """The page's lines grouped by day (London time), newest day first."""
        grouped: dict[dt.date, list[ActivityLine]] = {}
        for line in self.lines:
            grouped.setdefault(line.day, []).append(line)
        return list(grouped.items())


def activity_page(uow: AbstractUnitOfWork, user: User, page: int = 1, per_page: int = PER_PAGE) -> ActivityPage:
    """One page of the events about the user's account and their own linked record, newest first.

    A page past the last shows the last page, so an old bookmark still lands somewhere useful."""
    session = uow.session
    condition, looked = _collapsed(uow, _about(uow, user))
    total = session.scalar(select(func.count()).select_from(AuditEvent).where(condition)) or 0
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    events = session.scalars(
        select(AuditEvent)
        .where(condition)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return ActivityPage(lines=_describe(uow, user, events, looked), page=page, pages=pages, total=total)


def activity_for(uow: AbstractUnitOfWork, user: User, limit: int = 200) -> list[ActivityLine]:
    """The newest ``limit`` events in plain words (for callers that want one list, not pages)."""
    return activity_page(uow, user, 1, per_page=limit).lines


def _own_patient_ids(uow: AbstractUnitOfWork, user: User) -> list[int]:
    return list(uow.session.scalars(select(AccountLink.patient_id).where(AccountLink.user_id == user.id)))


def _about(uow: AbstractUnitOfWork, user: User) -> Any:
    conditions = [AuditEvent.subject_user_id == user.id, AuditEvent.actor_user_id == user.id]
    patient_ids = _own_patient_ids(uow, user)
    if patient_ids:
        conditions.append(AuditEvent.patient_id.in_(patient_ids))
    return or_(*conditions)


def _staff_view() -> Any:
    return and_(AuditEvent.action.in_(sorted(STAFF_VIEWS)), AuditEvent.actor_role.in_(sorted(STAFF_ROLES)))


def _collapsed(uow: AbstractUnitOfWork, condition: Any) -> tuple[Any, dict[int, list[str]]]:
    """The condition narrowed so that staff views show once per day and practice (the newest of each), and for
    each one kept, every kind of view it stands for."""
    groups: dict[tuple[dt.date, int | None], list[tuple[int, str]]] = {}
    for event_id, at, practice_id, action in uow.session.execute(
        select(AuditEvent.id, AuditEvent.at, AuditEvent.practice_id, AuditEvent.action).where(condition, _staff_view())
    ):
        groups.setdefault((at.astimezone(LONDON).date(), practice_id), []).append((event_id, action))
    looked = {max(ids)[0]: sorted({action for _id, action in ids}) for ids in groups.values()}
    return and_(condition, or_(not_(_staff_view()), AuditEvent.id.in_(sorted(looked)))), looked


def _looked_at(actions: Iterable[str], words: dict[str, str]) -> str:
    """ "looked at your details and your online access settings": each thing once, in a fixed order."""
    order = list(dict.fromkeys(STAFF_VIEWS.values()))
    things = sorted({STAFF_VIEWS[a] for a in actions if a in STAFF_VIEWS}, key=order.index)
    said = [thing.format(**words) for thing in things] or ["your details"]
    joined = said[0] if len(said) == 1 else ", ".join(said[:-1]) + " and " + said[-1]
    return f"looked at {joined}"


def _describe(
    uow: AbstractUnitOfWork, user: User, events: Iterable[AuditEvent], looked: dict[int, list[str]] | None = None
) -> list[ActivityLine]:
    events = list(events)
    session = uow.session
    own = set(_own_patient_ids(uow, user))
    actor_ids = {e.actor_user_id for e in events if e.actor_user_id}
    patient_ids = {e.patient_id for e in events if e.patient_id}
    practice_ids = {e.practice_id for e in events if e.practice_id}
    people = {u.id: u.display_name for u in session.scalars(select(User).where(User.id.in_(actor_ids)))}
    patients = {p.id: p.full_name for p in session.scalars(select(Patient).where(Patient.id.in_(patient_ids)))}
    practices = {p.id: p.name for p in session.scalars(select(Practice).where(Practice.id.in_(practice_ids)))}
    lines = []
    for event in events:
        about = patients.get(event.patient_id) if event.patient_id and event.patient_id not in own else None
        words = {
            "your": f"{about}'s" if about else "your",
            "them": about or "you",
            "for_": f" for {about}" if about else "",
        }
        who = _who(event, user, people, practices)
        what = (
            _looked_at(looked[event.id], words) if looked and event.id in looked and who else _what(event, who, words)
        )
        text = f"{who} {what}" if who else what
        lines.append(ActivityLine(at=event.at, who=who or "", what=what, text=text))
    return lines


def _who(event: AuditEvent, user: User, people: dict[int, str], practices: dict[int, str]) -> str:
    """Who did it, as the subject of the sentence; "" when nobody in particular did (a passive sentence)."""
    if event.action not in DONE and event.action not in DESCRIBED_APART and event.action not in STAFF_VIEWS:
        return ""
    if event.action in HAPPENED and (not event.actor_user_id or event.actor_role == "system"):
        return ""
    if event.actor_user_id == user.id:
        return "You"
    if event.actor_role in STAFF_ROLES:
        practice = practices.get(event.practice_id) if event.practice_id else None
        return f"{practice} staff" if practice else "Staff at your GP practice"
    if event.actor_user_id and event.actor_role == "proxy":
        return f"{people.get(event.actor_user_id, 'Someone')} (acting for you)"
    if event.actor_user_id and event.actor_role == "patient":
        return people.get(event.actor_user_id, "Someone")
    return "" if event.action in HAPPENED else "The GP practice"


def _what(event: AuditEvent, who: str, words: dict[str, str]) -> str:
    detail = event.detail or {}
    if not who:
        if event.action == "sign_in.failed":
            return FAILED_SIGN_IN.get(str(detail.get("stage", "")), HAPPENED["sign_in.failed"])
        sentence = HAPPENED.get(event.action)
        if sentence is None:
            return _unknown(event.action)
        return sentence.format(**words)
    if event.action == "record.viewed":
        return f"viewed {words['your']} {_section_words(str(detail.get('section', '')))}"
    if event.action == "record.downloaded":
        how = (
            "downloaded {your} GP record as a data file"
            if detail.get("format") == "fhir-json"
            else ("printed or saved {your} GP record")
        )
        return how.format(**words)
    return DONE[event.action].format(**words)


def _section_words(slug: str) -> str:
    """The part of the record viewed: "GP record" for its overview, else the section ("test results")."""
    try:
        return Section(slug).label.lower()
    except ValueError:
        return "GP record"


def _unknown(action: str) -> str:
    """An event with no words yet still says something readable, never a raw code."""
    return "Your account or record was updated"
