"""A person's mobile number (a UK mobile, confirmed with a code sent to it by text) and how they want to be told
about each kind of thing: by email only, or by email and a text message. Without a choice, everything comes by
email. The email carries the details; a text only says there is news (or, for a reminder, when and where)."""

from __future__ import annotations

import datetime as dt
import hmac
import re
from dataclasses import dataclass

from sqlalchemy import select

from patient_online.crypto import random_code, token_hash
from patient_online.domain.errors import InputError
from patient_online.models import ContactPreference, User

from .messages import MOBILE_CODE
from .unit_of_work import AbstractUnitOfWork

APPOINTMENTS = "appointments"
PRESCRIPTIONS = "prescriptions"
SECURITY = "security"
KINDS = {
    APPOINTMENTS: "Appointments: confirmations, changes and reminders",
    PRESCRIPTIONS: "Repeat prescriptions: when a request is approved, issued or not approved",
    SECURITY: "Account security: when your email address or password changes",
}
# Email always carries the details; a text tells you there is news (an appointment reminder says when and where).
CHANNELS = {"email": "Email only", "both": "Email and a text message"}
CODE_LIFETIME = dt.timedelta(minutes=15)
MAX_CODE_ATTEMPTS = 5
MOBILE_FORMAT = "Enter a UK mobile number, like 07700 900123"


def uk_mobile(text: str) -> str:
    """A UK mobile number in international form (+447...), from the ways people write one; InputError if not."""
    digits = re.sub(r"[\s\-().]", "", text or "")
    if digits.startswith("+44"):
        digits = "0" + digits[3:]
    elif digits.startswith("0044"):
        digits = "0" + digits[4:]
    elif digits.startswith("44") and len(digits) == 12:
        digits = "0" + digits[2:]
    if not re.fullmatch(r"07\d{9}", digits):
        raise InputError(MOBILE_FORMAT, "mobile")
    return "+44" + digits[1:]


def display_mobile(number: str) -> str:
    """+447700900123 as 07700 900123."""
    if number.startswith("+44") and len(number) == 13:
        local = "0" + number[3:]
        return f"{local[:5]} {local[5:]}"
    return number


@dataclass(frozen=True)
class ContactChoices:
    mobile: str  # confirmed, as people write it ("" when none)
    pending_mobile: str  # waiting for its code
    channels: dict[str, str]  # every kind -> email/sms/both


def _row(uow: AbstractUnitOfWork, user_id: int) -> ContactPreference | None:
    return uow.session.scalar(select(ContactPreference).where(ContactPreference.user_id == user_id))


def _channels(row: ContactPreference | None) -> dict[str, str]:
    chosen = dict(row.channels or {}) if row is not None and row.mobile else {}
    return {kind: chosen.get(kind, "email") if chosen.get(kind) in CHANNELS else "email" for kind in KINDS}


def choices(uow: AbstractUnitOfWork, user: User) -> ContactChoices:
    row = _row(uow, user.id)
    return ContactChoices(
        display_mobile(row.mobile) if row else "",
        display_mobile(row.pending_mobile) if row else "",
        _channels(row),
    )


def wants(uow: AbstractUnitOfWork, user_id: int, kind: str, channel: str) -> bool:
    """Whether the person wants ``kind`` messages by ``channel`` ("email" or "sms"): email always."""
    chosen = _channels(_row(uow, user_id)).get(kind, "email")
    return channel == "email" or chosen == "both"


def verified_mobile(uow: AbstractUnitOfWork, user_id: int) -> str:
    row = _row(uow, user_id)
    return row.mobile if row is not None and row.mobile_verified_at is not None else ""


def _secret(uow: AbstractUnitOfWork) -> str:
    return str(uow.setting("SECRET_KEY", ""))


def start_mobile_change(uow: AbstractUnitOfWork, user: User, mobile: str) -> str:
    """Send a code by text to the number given; it becomes theirs once they type the code back."""
    number = uk_mobile(mobile)
    code = random_code()
    uow.writing()
    row = _row(uow, user.id)
    if row is None:
        row = ContactPreference(user_id=user.id, channels={})
        uow.session.add(row)
    row.pending_mobile = number
    row.code_hash = token_hash(code, _secret(uow))
    row.code_expires_at = uow.now() + CODE_LIFETIME
    row.code_attempts = 0
    uow.send_sms(
        number,
        MOBILE_CODE,
        f"Your Patient Online code is {code}. It expires in 15 minutes. Do not share it with anyone.",
    )
    uow.audit("contact.mobile_code_sent", actor_id=user.id, actor_role="patient", subject_user_id=user.id)
    uow.commit()
    return display_mobile(number)


def confirm_mobile(uow: AbstractUnitOfWork, user: User, code: str) -> None:
    """The code proves the number is theirs."""
    uow.writing()
    row = _row(uow, user.id)
    if row is None or not row.pending_mobile:
        uow.commit()
        raise InputError("Enter your mobile number first", "code")
    expired = row.code_expires_at is None or row.code_expires_at < uow.now()
    if expired or row.code_attempts >= MAX_CODE_ATTEMPTS:
        uow.commit()
        raise InputError("The code has expired. Ask for a new one", "code")
    if not re.fullmatch(r"\d{6}", (code or "").strip()):
        raise InputError("Enter the 6-digit code we sent to your mobile", "code")
    if not hmac.compare_digest(row.code_hash, token_hash(code, _secret(uow))):
        row.code_attempts += 1
        uow.commit()
        raise InputError("The code is not correct. Check the text message and try again", "code")
    row.mobile, row.pending_mobile, row.code_hash = row.pending_mobile, "", ""
    row.mobile_verified_at = uow.now()
    uow.audit("contact.mobile_confirmed", actor_id=user.id, actor_role="patient", subject_user_id=user.id)
    uow.commit()


def remove_mobile(uow: AbstractUnitOfWork, user: User) -> None:
    """No more text messages: the number is forgotten and everything comes by email."""
    uow.writing()
    row = _row(uow, user.id)
    if row is not None:
        row.mobile, row.pending_mobile, row.code_hash, row.mobile_verified_at = "", "", "", None
        row.channels = {}
        uow.audit("contact.mobile_removed", actor_id=user.id, actor_role="patient", subject_user_id=user.id)
    uow.commit()


def set_channels(uow: AbstractUnitOfWork, user: User, chosen: dict[str, str]) -> None:
    """Email only, or email and a text, for each kind of message; texts need a confirmed mobile number."""
    for kind, channel in chosen.items():
        if kind not in KINDS or channel not in CHANNELS:
            raise InputError("Choose how you want to be told", kind if kind in KINDS else "")
    uow.writing()
    row = _row(uow, user.id)
    if any(c != "email" for c in chosen.values()) and (row is None or not row.mobile):
        uow.commit()
        raise InputError("Add and confirm a mobile number before choosing text messages", "mobile")
    if row is None:
        row = ContactPreference(user_id=user.id, channels={})
        uow.session.add(row)
    row.channels = {kind: chosen.get(kind, "email") for kind in KINDS}
    uow.audit("contact.channels_changed", actor_id=user.id, actor_role="patient", subject_user_id=user.id)
    uow.commit()
