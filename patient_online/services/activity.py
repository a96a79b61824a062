"""The audit events a patient may see about their own account and record (design rule 19)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import or_, select

from patient_online.models import AccountLink, AuditEvent, User

from .unit_of_work import AbstractUnitOfWork

DESCRIPTIONS = {
    "sign_in": "Signed in",
    "sign_in.failed": "A sign-in attempt failed",
    "sign_out": "Signed out",
    "account.registered": "Account created",
    "account.email_confirmed": "Email address confirmed",
    "account.totp_enrolled": "Authenticator app set up",
    "account.second_factor_email": "Chose security codes by email",
    "account.password_changed": "Password changed",
    "account.password_reset": "Password reset",
    "account.reset_requested": "Password reset requested",
    "account.email_changed": "Email address changed",
    "account.register_duplicate": "Someone tried to register with your email address",
    "link.requested": "Asked to be linked to the GP record",
    "link.request_unmatched": "A request to link could not be matched",
    "link.letter_used": "Linked to the GP record with a linkage letter",
    "link.letter_failed": "A linkage letter attempt failed",
    "link.nhs_login": "Linked to the GP record through NHS login",
    "verification.approved": "Identity verified by the practice",
    "verification.rejected": "Request to link turned down by the practice",
    "linkage_letter.issued": "Linkage letter issued by the practice",
    "account.suspended": "Online access suspended by the practice",
    "account.reinstated": "Online access reinstated by the practice",
    "record.viewed": "Viewed the GP record",
    "record.downloaded": "Downloaded the GP record",
    "appointment.booked": "Booked an appointment",
    "appointment.cancelled": "Cancelled an appointment",
    "appointment.cancel_queued": "Asked to cancel an appointment (sent when the practice system is back)",
    "appointment.cancel_failed": "A cancellation could not be sent to the practice",
    "appointment.rescheduled": "Rescheduled an appointment",
    "appointment.reschedule_incomplete": "Moved an appointment, but the old one could not be cancelled",
    "appointments.viewed": "Viewed appointments",
    "prescription.ordered": "Ordered repeat prescriptions",
    "prescription.cancelled": "Cancelled a repeat prescription request",
    "pharmacy.nominated": "Changed the nominated pharmacy",
    "prescription.template_viewed": "Viewed the repeat medicines",
    "prescription.requests_viewed": "Viewed repeat prescription requests",
    "prescription.sent": "Repeat prescription request sent to the GP practice",
    "prescription.failed": "A repeat prescription request could not be sent to the GP practice",
    "prescription.requested": "The GP practice received a repeat prescription request",
    "prescription.approved": "The GP practice approved a repeat prescription request",
    "prescription.rejected": "The GP practice turned down a repeat prescription request",
    "prescription.issued": "The GP practice sent a prescription to the pharmacy",
    "access.changed": "The practice changed online access",
    "access.viewed": "Looked at your online access settings",
    "proxy.requested": "Asked for proxy access",
    "proxy.approved": "Proxy access approved",
    "proxy.ended": "Proxy access ended",
    "proxy.suspended": "Proxy access suspended",
    "proxy.rejected": "Request for proxy access turned down by the practice",
    "proxy.reinstated": "Proxy access restarted by the practice",
    "proxy.consent_given": "Agreed that someone can act for you",
    "proxy.consent_refused": "Said no to someone acting for you",
    "proxy.competence_recorded": "The practice recorded a child's understanding and consent for proxy access",
    "proxy.notice_sent": "Told in advance that proxy access will change",
    "proxy.switched": "Switched to acting for someone else",
}

ROLE_WORDS = {
    "patient": "You",
    "proxy": "Proxy",
    "receptionist": "Practice staff",
    "practice_manager": "Practice staff",
    "staff": "Practice staff",
    "system": "The system",
    "": "The system",
}


@dataclass(frozen=True)
class ActivityLine:
    at: dt.datetime
    who: str
    what: str


def activity_for(uow: AbstractUnitOfWork, user: User, limit: int = 200) -> list[ActivityLine]:
    """Events about the user's account and their own linked record, newest first, in plain words."""
    session = uow.session
    patient_ids = list(session.scalars(select(AccountLink.patient_id).where(AccountLink.user_id == user.id)))
    conditions = [AuditEvent.subject_user_id == user.id, AuditEvent.actor_user_id == user.id]
    if patient_ids:
        conditions.append(AuditEvent.patient_id.in_(patient_ids))
    events = session.scalars(
        select(AuditEvent).where(or_(*conditions)).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    ).all()
    names = {
        u.id: u.display_name
        for u in session.scalars(select(User).where(User.id.in_({e.actor_user_id for e in events if e.actor_user_id})))
    }
    lines = []
    for e in events:
        if e.actor_user_id == user.id:
            who = "You"
        elif e.actor_role == "proxy" and e.actor_user_id:
            who = f"{names.get(e.actor_user_id, 'A proxy')} (acting for you)"
        else:
            who = ROLE_WORDS.get(e.actor_role, "Practice staff")
        lines.append(
            ActivityLine(
                at=e.at, who=who, what=DESCRIPTIONS.get(e.action, e.action.replace(".", " ").replace("_", " "))
            )
        )
    return lines
