"""Subject access: everything the gateway holds about a person, as a ZIP of JSON with a readable summary.

What is in it: the online account (never its password hash, authenticator secret or codes), its sign-in
history, the identity checks with how they were done, the linkage letters issued (never their keys), the links
to GP records, proxy access both ways, the access each record has online, the appointments and repeat
prescription requests made through the gateway, the messages sent, and the audit events about the person.

What is not: the GP record itself. It stays with the practice's clinical system and the gateway keeps no copy,
so nothing withheld from online access (confidential or third-party entries) can appear here. Safeguarding
notes that reception wrote about a proxy request stay with the practice too: the practice decides what of
them to release under the exemptions for serious harm (docs/dpia.md).
"""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select

from patient_online.domain.errors import NotFound
from patient_online.domain.waitlist import WEEKDAYS
from patient_online.models import (
    AccountClosure,
    AccountLink,
    AppointmentReminder,
    AuditEvent,
    BookingRecord,
    ContactPreference,
    LinkageLetter,
    LinkRequest,
    Notification,
    Patient,
    Practice,
    PrescriptionOrder,
    ProxyLink,
    SlotOffer,
    User,
    Verification,
    WaitlistEntry,
)

from .audit_chain import SIGN_IN_ACTIONS
from .unit_of_work import AbstractUnitOfWork

# The parts of the download, in the order the summary shows them, with the words a person reads.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("accounts", "Your online account"),
    ("sign_in_history", "When your account was signed in to"),
    ("gp_records", "The GP records your account is linked to, and the access each has online"),
    ("link_requests", "Requests to link your account to a GP record"),
    ("identity_checks", "How your identity was checked"),
    ("linkage_letters", "Letters with a Linkage Key issued to you (the keys are never kept)"),
    ("proxy_access_you_have", "People you can act for"),
    ("proxy_access_to_you", "People who can act for you"),
    ("appointments", "Appointments booked or changed through this service"),
    ("prescription_requests", "Repeat prescription requests made through this service"),
    ("earlier_appointment_requests", "Requests to be offered an earlier appointment, and the offers made"),
    ("messages", "Messages we sent you"),
    ("activity", "Everything recorded about your account and record (the audit trail)"),
)


@dataclass(frozen=True)
class SubjectAccessExport:
    """The ZIP a person downloads, its file name and how many items each part holds."""

    filename: str
    content: bytes
    counts: dict[str, int]


def download_my_data(uow: AbstractUnitOfWork, user: User) -> SubjectAccessExport:
    """A patient's own download: their account and the GP records it is linked to as their own (audited)."""
    patients = list(
        uow.session.scalars(
            select(Patient)
            .join(AccountLink, AccountLink.patient_id == Patient.id)
            .where(AccountLink.user_id == user.id)
        )
    )
    export = _export(uow, [user], patients)
    uow.audit(
        "subject_access.downloaded",
        actor_id=user.id,
        actor_role="patient",
        subject_user_id=user.id,
        patient_id=patients[0].id if len(patients) == 1 else None,
        patients=[p.id for p in patients],
        by="patient",
    )
    uow.commit()
    return export


def produce_at_desk(uow: AbstractUnitOfWork, staff: User, practice: Practice, patient_id: int) -> SubjectAccessExport:
    """Reception produces the download for a patient of the practice who asks at the desk (audited)."""
    patient = uow.session.get(Patient, patient_id)
    if patient is None or patient.practice_id != practice.id:
        raise NotFound()
    users = list(
        uow.session.scalars(
            select(User).join(AccountLink, AccountLink.user_id == User.id).where(AccountLink.patient_id == patient.id)
        )
    )
    export = _export(uow, users, [patient])
    uow.audit(
        "subject_access.produced",
        actor_id=staff.id,
        actor_role="receptionist",
        patient_id=patient.id,
        practice_id=practice.id,
        accounts=[u.id for u in users],
        by="reception",
    )
    uow.commit()
    return export


# Gathering ------------------------------------------------------------------------------------------------
def _export(uow: AbstractUnitOfWork, users: Sequence[User], patients: Sequence[Patient]) -> SubjectAccessExport:
    data = collect(uow, users, patients)
    made = uow.now()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("summary.html", _summary(data, made))
        archive.writestr("data.json", json.dumps(data, indent=2, default=_jsonable, ensure_ascii=False))
        for key, _title in SECTIONS:
            archive.writestr(f"json/{key}.json", json.dumps(data[key], indent=2, default=_jsonable, ensure_ascii=False))
    stamp = made.strftime("%Y-%m-%d")
    return SubjectAccessExport(
        filename=f"my-gp-online-data-{stamp}.zip",
        content=buffer.getvalue(),
        counts={key: len(data[key]) for key, _ in SECTIONS},
    )


def collect(uow: AbstractUnitOfWork, users: Sequence[User], patients: Sequence[Patient]) -> dict[str, Any]:
    """Everything held about these accounts and these patients, as plain JSON-ready values."""
    session = uow.session
    user_ids = [u.id for u in users]
    patient_ids = [p.id for p in patients]
    practices = {p.id: p.name for p in session.scalars(select(Practice))}
    names = _names(session, user_ids, patient_ids)
    closures = {
        c.user_id: c for c in session.scalars(select(AccountClosure).where(AccountClosure.user_id.in_(user_ids)))
    }

    accounts = [
        {
            "email": u.email,
            "mobile": u.mobile,
            "first_name": u.given_name,
            "last_name": u.family_name,
            "created": u.created_at,
            "email_confirmed": u.email_confirmed_at,
            "security_codes": "authenticator app" if u.second_factor == "totp" else "by email",
            "authenticator_app_set_up": u.totp_enrolled_at,
            "uses_nhs_login": bool(u.nhs_login_sub),
            "nhs_login_identity_level": u.identity_proofing_level,
            "last_signed_in": u.last_sign_in_at,
            "open": u.active,
            "closed": closures[u.id].closed_at if u.id in closures else None,
        }
        for u in users
    ]
    sign_ins = [
        {"when": e.at, "what": _words(e.action), "stage": e.detail.get("stage", "")}
        for e in session.scalars(
            select(AuditEvent)
            .where(AuditEvent.subject_user_id.in_(user_ids), AuditEvent.action.in_(SIGN_IN_ACTIONS))
            .order_by(AuditEvent.at, AuditEvent.id)
        )
    ]
    records = []
    for link in session.scalars(
        select(AccountLink).where(or_(AccountLink.user_id.in_(user_ids), AccountLink.patient_id.in_(patient_ids)))
    ):
        patient = session.get(Patient, link.patient_id)
        assert patient is not None
        records.append(
            {
                "account": names.get(("user", link.user_id), ""),
                "practice": practices.get(patient.practice_id, ""),
                "nhs_number": patient.nhs_number,
                "name": patient.full_name,
                "date_of_birth": patient.date_of_birth,
                "linked": link.linked_at,
                "how_identity_was_checked": link.method,
                "status": link.status,
                "suspended": link.suspended_at,
                "suspended_reason": link.suspended_reason,
                "gp_record_access": patient.record_level or "practice default",
                "appointments_online": patient.appointments_enabled,
                "repeat_prescriptions_online": patient.prescriptions_enabled,
                "nominated_pharmacy": patient.nominated_pharmacy_ods,
            }
        )
    link_requests = [
        {
            "practice": practices.get(r.practice_id, ""),
            "nhs_number": r.nhs_number,
            "first_name": r.given_name,
            "last_name": r.family_name,
            "date_of_birth": r.date_of_birth,
            "postcode": r.postcode,
            "status": r.status,
            "asked": r.created_at,
            "decided": r.decided_at,
            "reason_given": r.rejection_reason,
        }
        for r in session.scalars(select(LinkRequest).where(LinkRequest.user_id.in_(user_ids)))
    ]
    checks = [
        {
            "when": v.verified_at,
            "method": v.method,
            "documents_seen": list(v.documents),
            "remote": v.remote,
            "notes": v.notes,
        }
        for v in session.scalars(
            select(Verification)
            .where(or_(Verification.patient_id.in_(patient_ids), Verification.user_id.in_(user_ids)))
            .order_by(Verification.verified_at)
        )
    ]
    letters = [
        {
            "issued": letter.issued_at,
            "expires": letter.expires_at,
            "used": letter.used_at,
            "withdrawn": letter.revoked_at,
            "identity_checked_by": letter.verification_method,
        }
        for letter in session.scalars(
            select(LinkageLetter).where(LinkageLetter.patient_id.in_(patient_ids)).order_by(LinkageLetter.issued_at)
        )
    ]
    as_proxy = [
        _proxy(link, names.get(("patient", link.patient_id), ""), "for")
        for link in session.scalars(select(ProxyLink).where(ProxyLink.proxy_user_id.in_(user_ids)))
    ]
    to_patient = [
        _proxy(link, names.get(("user", link.proxy_user_id), ""), "by")
        for link in session.scalars(select(ProxyLink).where(ProxyLink.patient_id.in_(patient_ids)))
    ]
    appointments = [
        {"when_recorded": b.created_at, "what": _words(b.action), "appointment_reference": b.appointment_ref}
        for b in session.scalars(
            select(BookingRecord).where(BookingRecord.patient_id.in_(patient_ids)).order_by(BookingRecord.created_at)
        )
    ]
    orders = [
        {
            "asked": o.created_at,
            "medicines": list(o.item_names),
            "note": o.note,
            "collect_from": o.collection,
            "pharmacy": o.pharmacy_ods,
            "status": o.status,
            "sent_to_practice": o.sent_at,
            "ready_by": o.ready_by,
            "reason_given": o.rejection_reason,
        }
        for o in session.scalars(
            select(PrescriptionOrder)
            .where(PrescriptionOrder.patient_id.in_(patient_ids))
            .order_by(PrescriptionOrder.created_at)
        )
    ]
    reminders = [
        {"appointment_reference": r.appointment_ref, "appointment_at": r.starts_at, "hours_before": r.hours_before}
        for r in session.scalars(
            select(AppointmentReminder)
            .where(AppointmentReminder.patient_id.in_(patient_ids))
            .order_by(AppointmentReminder.created_at)
        )
    ]
    entries = list(
        session.scalars(
            select(WaitlistEntry).where(WaitlistEntry.patient_id.in_(patient_ids)).order_by(WaitlistEntry.created_at)
        )
    )
    offers: dict[int, list[SlotOffer]] = {}
    for offer in session.scalars(
        select(SlotOffer).where(SlotOffer.entry_id.in_([e.id for e in entries])).order_by(SlotOffer.offered_at)
    ):
        offers.setdefault(offer.entry_id, []).append(offer)
    earlier = [
        {
            "asked": e.created_at,
            "type_of_appointment": e.slot_type or "any",
            "days": [WEEKDAYS[int(d)] for d in e.weekdays or ()],
            "times_of_day": list(e.parts or ()),
            "until": e.until,
            "instead_of_appointment": e.replacing_ref,
            "status": e.status,
            "ended": e.ended_at,
            "offers": [
                {"time_offered": o.slot_start, "offered": o.offered_at, "held_until": o.hold_until, "outcome": o.status}
                for o in offers.get(e.id, [])
            ],
        }
        for e in entries
    ]
    preferences = list(session.scalars(select(ContactPreference).where(ContactPreference.user_id.in_(user_ids))))
    contact = [
        {
            "account": names.get(("user", c.user_id), ""),
            "mobile": c.mobile,
            "mobile_confirmed": c.mobile_verified_at,
            "mobile_waiting_for_its_code": c.pending_mobile,
            "how_you_are_told": dict(c.channels),
        }
        for c in preferences
    ]
    addresses = [a for u in users for a in (u.email, u.mobile) if a]
    addresses += [a for c in preferences for a in (c.mobile, c.pending_mobile) if a]
    messages = [
        {"sent": n.created_at, "to": n.to, "by": n.channel, "subject": n.subject, "message": n.body}
        for n in session.scalars(
            select(Notification).where(Notification.to.in_(addresses)).order_by(Notification.created_at)
        )
    ]
    conditions = [AuditEvent.subject_user_id.in_(user_ids), AuditEvent.actor_user_id.in_(user_ids)]
    if patient_ids:
        conditions.append(AuditEvent.patient_id.in_(patient_ids))
    activity = [
        {
            "when": e.at,
            "what": _words(e.action),
            "who": _who(e, user_ids, names),
            "details": e.detail,
        }
        for e in session.scalars(select(AuditEvent).where(or_(*conditions)).order_by(AuditEvent.at, AuditEvent.id))
    ]
    return {
        "accounts": accounts,
        "sign_in_history": sign_ins,
        "gp_records": records,
        "link_requests": link_requests,
        "identity_checks": checks,
        "linkage_letters": letters,
        "proxy_access_you_have": as_proxy,
        "proxy_access_to_you": to_patient,
        "appointments": appointments,
        "prescription_requests": orders,
        "appointment_reminders": reminders,
        "earlier_appointment_requests": earlier,
        "contact_preferences": contact,
        "messages": messages,
        "activity": activity,
    }


def _proxy(link: ProxyLink, other: str, direction: str) -> dict[str, Any]:
    return {
        f"acting_{direction}": other,
        "relationship": link.relationship_text,
        "basis": link.basis,
        "status": link.status,
        "appointments": link.can_appointments,
        "repeat_prescriptions": link.can_prescriptions,
        "gp_record": link.record_level,
        "asked": link.created_at,
        "decided": link.decided_at,
        "ended": link.ended_at,
        "reason_given": link.status_reason,
    }


def _names(session: Any, user_ids: Iterable[int], patient_ids: Iterable[int]) -> dict[tuple[str, int], str]:
    """Display names of the people who appear: the proxy links' other sides and the accounts themselves."""
    wanted_users = set(user_ids)
    wanted_patients = set(patient_ids)
    for link in session.scalars(
        select(ProxyLink).where(
            or_(ProxyLink.proxy_user_id.in_(wanted_users), ProxyLink.patient_id.in_(wanted_patients))
        )
    ):
        wanted_users.add(link.proxy_user_id)
        wanted_patients.add(link.patient_id)
    out: dict[tuple[str, int], str] = {}
    for u in session.scalars(select(User).where(User.id.in_(wanted_users))):
        out[("user", u.id)] = u.display_name
    for p in session.scalars(select(Patient).where(Patient.id.in_(wanted_patients))):
        out[("patient", p.id)] = p.full_name
    return out


def _who(event: AuditEvent, user_ids: Sequence[int], names: dict[tuple[str, int], str]) -> str:
    if event.actor_user_id in user_ids:
        return "you"
    if event.actor_role in ("receptionist", "practice_manager", "staff"):
        return "your GP practice"
    if event.actor_user_id is not None:
        return names.get(("user", event.actor_user_id), "someone acting for you")
    return "the service"


def _words(action: str) -> str:
    return action.replace(".", ": ").replace("_", " ")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


# The readable summary -------------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%d %B %Y %H:%M UTC")
    if isinstance(value, dt.date):
        return value.strftime("%d %B %Y")
    if isinstance(value, list | dict):
        return html.escape(json.dumps(value, default=_jsonable, ensure_ascii=False))
    return html.escape(str(value))


def _summary(data: dict[str, Any], made: dt.datetime) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Your data held by the GP online service</title>",
        "<style>body{font-family:Arial,sans-serif;max-width:60em;margin:1em auto;padding:0 1em;line-height:1.5}"
        "table{border-collapse:collapse;width:100%;display:block;overflow-x:auto}"
        "th,td{border:1px solid #768692;padding:.25em .5em;text-align:left;vertical-align:top}</style>",
        "</head><body>",
        "<h1>Your data held by the GP online service</h1>",
        f"<p>Made on {_cell(made)}. The same data is in <code>data.json</code>, for a computer to read.</p>",
        "<p>Your GP record itself is not here: it is kept by your GP practice's clinical system, not by this "
        "service. To ask for a copy of your GP record, contact your GP practice.</p>",
    ]
    for key, title in SECTIONS:
        rows = data[key]
        parts.append(f"<h2>{html.escape(title)}</h2>")
        if not rows:
            parts.append("<p>Nothing held.</p>")
            continue
        columns = list(rows[0])
        parts.append("<table><thead><tr>")
        parts.extend(f'<th scope="col">{html.escape(c.replace("_", " ").capitalize())}</th>' for c in columns)
        parts.append("</tr></thead><tbody>")
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns) + "</tr>")
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts)
