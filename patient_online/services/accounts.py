"""Accounts: register, confirm email, sign in with a second factor, reset and change credentials."""

from __future__ import annotations

import datetime as dt

import pyotp
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from patient_online.crypto import (
    check_password,
    decrypt,
    encrypt,
    hash_password,
    random_code,
    token_hash,
    tokens_match,
)
from patient_online.domain.errors import DomainError
from patient_online.domain.passwords import password_problem
from patient_online.models import OneTimeCode, User, utcnow

from . import audit, notify

CODE_LIFETIME = dt.timedelta(minutes=15)
RESET_LIFETIME = dt.timedelta(hours=1)
MAX_CODE_ATTEMPTS = 5


class AccountError(DomainError):
    """A problem with what the person typed; ``field`` says which field it belongs to."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def find_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))


# Registration -----------------------------------------------------------------------------------
def register(session: Session, email: str, password: str, mobile: str = "") -> User | None:
    """Create a patient account and send a confirmation code.

    When the email is already registered nothing is created and the owner is told by email, so the page
    the visitor sees is the same either way (no account enumeration).
    """
    email = normalise_email(email)
    problem = password_problem(password, [email.split("@")[0]])
    if problem:
        raise AccountError(problem, "password")
    existing = find_by_email(session, email)
    if existing is not None:
        notify.send_email(
            session,
            email,
            "register_existing",
            "Someone tried to create an account with your email address",
            "Someone tried to create a Patient Online account with this email address. You already have one: "
            "sign in, or reset your password if you have forgotten it. If this was not you, you can ignore this.",
        )
        audit.record(session, "account.register_duplicate", subject_user_id=existing.id)
        session.commit()
        return None
    user = User(kind="patient", email=email, password_hash=hash_password(password), mobile=mobile.strip())
    session.add(user)
    session.flush()
    audit.record(session, "account.registered", actor_id=user.id, actor_role="patient", subject_user_id=user.id)
    _send_code(session, user, "confirm_email", email, "Confirm your email address")
    session.commit()
    return user


def _send_code(session: Session, user: User, purpose: str, to: str, subject: str, new_email: str = "") -> None:
    code = random_code()
    session.execute(
        update(OneTimeCode)
        .where(OneTimeCode.user_id == user.id, OneTimeCode.purpose == purpose, OneTimeCode.used_at.is_(None))
        .values(used_at=utcnow())
    )
    session.add(
        OneTimeCode(
            user_id=user.id,
            purpose=purpose,
            code_hash=token_hash(code),
            new_email=new_email,
            expires_at=utcnow() + CODE_LIFETIME,
        )
    )
    notify.send_email(
        session,
        to,
        purpose,
        subject,
        f"Your security code is {code}. It expires in 15 minutes. Do not share it with anyone, including NHS staff.",
    )


def _use_code(session: Session, user: User, purpose: str, code: str) -> OneTimeCode:
    row = session.scalar(
        select(OneTimeCode)
        .where(OneTimeCode.user_id == user.id, OneTimeCode.purpose == purpose, OneTimeCode.used_at.is_(None))
        .order_by(OneTimeCode.id.desc())
    )
    if row is None or row.expires_at < utcnow() or row.attempts >= MAX_CODE_ATTEMPTS:
        raise AccountError("This security code has expired. Request a new code", "code")
    if not tokens_match(row.code_hash, (code or "").strip()):
        row.attempts += 1
        session.commit()
        raise AccountError("The security code is not correct. Check it and try again", "code")
    row.used_at = utcnow()
    return row


def resend_code(session: Session, user: User, purpose: str) -> None:
    subject = {"confirm_email": "Confirm your email address", "sign_in": "Your sign-in code"}[purpose]
    _send_code(session, user, purpose, user.email, subject)
    session.commit()


def confirm_email(session: Session, user: User, code: str) -> None:
    _use_code(session, user, "confirm_email", code)
    user.email_confirmed_at = utcnow()
    audit.record(session, "account.email_confirmed", actor_id=user.id, actor_role="patient", subject_user_id=user.id)
    session.commit()


# Second factor -------------------------------------------------------------------------------------
def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name="Patient Online")


def enrol_totp(session: Session, user: User, secret: str, code: str) -> None:
    """Keep the authenticator secret once the person shows their app produces the right code."""
    if not pyotp.TOTP(secret).verify((code or "").strip(), valid_window=1):
        raise AccountError("The code is not correct. Enter the 6-digit code your app shows now", "code")
    user.totp_secret = encrypt(secret)
    user.totp_enrolled_at = utcnow()
    user.second_factor = "totp"
    audit.record(session, "account.totp_enrolled", actor_id=user.id, subject_user_id=user.id)
    session.commit()


def choose_email_codes(session: Session, user: User) -> None:
    if user.is_staff:
        raise AccountError("Staff must use an authenticator app", "second_factor")
    user.second_factor = "email"
    audit.record(session, "account.second_factor_email", actor_id=user.id, subject_user_id=user.id)
    session.commit()


def needs_second_factor_setup(user: User) -> bool:
    return user.totp_enrolled_at is None and (user.is_staff or user.second_factor == "totp")


# Sign in ---------------------------------------------------------------------------------------------
def check_credentials(session: Session, email: str, password: str) -> User | None:
    """The account when email and password match and it may sign in; audit either way."""
    user = find_by_email(session, email)
    ok = check_password(user.password_hash if user else "", password)
    if user is None or not ok or not user.active:
        if user is not None:
            audit.record(session, "sign_in.failed", subject_user_id=user.id, stage="password")
            session.commit()
        return None
    return user


def start_second_factor(session: Session, user: User) -> None:
    """Send an email code when that is the account's second factor."""
    if user.second_factor == "email" and not user.is_staff:
        _send_code(session, user, "sign_in", user.email, "Your sign-in code")
        session.commit()


def check_second_factor(session: Session, user: User, code: str) -> None:
    """Raise AccountError unless the code is right for the account's second factor."""
    code = (code or "").strip().replace(" ", "")
    if user.second_factor == "email" and not user.is_staff:
        try:
            _use_code(session, user, "sign_in", code)
        except AccountError:
            audit.record(session, "sign_in.failed", subject_user_id=user.id, stage="code")
            session.commit()
            raise
        return
    secret = decrypt(user.totp_secret)
    if not secret or not pyotp.TOTP(secret).verify(code, valid_window=1):
        audit.record(session, "sign_in.failed", subject_user_id=user.id, stage="code")
        session.commit()
        raise AccountError("The security code is not correct. Enter the 6-digit code your app shows now", "code")


def signed_in(session: Session, user: User, role: str) -> None:
    user.last_sign_in_at = utcnow()
    audit.record(session, "sign_in", actor_id=user.id, actor_role=role, subject_user_id=user.id)
    session.commit()


def sign_out(session: Session, user: User) -> None:
    """Signing out ends every session of the account, on every device."""
    user.session_epoch += 1
    audit.record(session, "sign_out", actor_id=user.id, subject_user_id=user.id)
    session.commit()


# Password reset and changes -----------------------------------------------------------------------
def request_password_reset(session: Session, email: str) -> None:
    """Email a reset code when the account exists; say nothing either way."""
    user = find_by_email(session, email)
    if user is None:
        return
    _send_code(session, user, "reset_password", user.email, "Reset your password")
    audit.record(session, "account.reset_requested", subject_user_id=user.id)
    session.commit()


def reset_password(session: Session, email: str, code: str, new_password: str) -> User:
    user = find_by_email(session, email)
    if user is None:
        raise AccountError("The security code is not correct. Check it and try again", "code")
    problem = password_problem(new_password, [user.email.split("@")[0]])
    if problem:
        raise AccountError(problem, "password")
    _use_code(session, user, "reset_password", code)
    user.password_hash = hash_password(new_password)
    user.session_epoch += 1
    audit.record(session, "account.password_reset", subject_user_id=user.id)
    session.commit()
    return user


def change_password(session: Session, user: User, current: str, new_password: str) -> None:
    """Change the password and end every other session of the account."""
    if not check_password(user.password_hash, current):
        raise AccountError("Your current password is not correct", "current_password")
    problem = password_problem(new_password, [user.email.split("@")[0]])
    if problem:
        raise AccountError(problem, "password")
    user.password_hash = hash_password(new_password)
    user.session_epoch += 1
    audit.record(session, "account.password_changed", actor_id=user.id, subject_user_id=user.id)
    session.commit()


def start_email_change(session: Session, user: User, new_email: str) -> None:
    new_email = normalise_email(new_email)
    if "@" not in new_email:
        raise AccountError("Enter an email address in the correct format, like name@example.com", "email")
    if find_by_email(session, new_email) is None:
        _send_code(session, user, "change_email", new_email, "Confirm your new email address", new_email)
    session.commit()


def confirm_email_change(session: Session, user: User, code: str) -> None:
    row = _use_code(session, user, "change_email", code)
    if find_by_email(session, row.new_email) is not None:
        raise AccountError("That email address cannot be used. Choose another", "code")
    old = user.email
    user.email = row.new_email
    user.email_confirmed_at = utcnow()
    notify.send_email(
        session,
        old,
        "email_changed",
        "Your email address was changed",
        "The email address of your Patient Online account was changed. If this was not you, contact your GP practice.",
    )
    audit.record(session, "account.email_changed", actor_id=user.id, subject_user_id=user.id)
    session.commit()
