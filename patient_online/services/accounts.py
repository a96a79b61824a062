"""Accounts: register, confirm email, sign in with a second factor, reset and change credentials.

The use cases that sign a person in hand back the account's ORM row: the web session is started with it.
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass

import pyotp
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from patient_online.crypto import (
    check_password,
    decrypt,
    encrypt,
    hash_password,
    random_code,
    token_hash,
    tokens_match,
)
from patient_online.domain.accounts import AccountKind, CodePurpose, SecondFactor, SignInStep
from patient_online.domain.errors import InputError
from patient_online.domain.passwords import password_problem
from patient_online.models import OneTimeCode, User

from .unit_of_work import AbstractUnitOfWork

CODE_LIFETIME = dt.timedelta(minutes=15)
RESET_LIFETIME = dt.timedelta(hours=1)
MAX_CODE_ATTEMPTS = 5

CODE_EXPIRED = "This security code has expired. Request a new code"
CODE_WRONG = "The security code is not correct. Check it and try again"
# A password reset answers every code it does not accept alike, whether or not the email has an account.
RESET_CODE_WRONG = "The security code is not correct or has expired. Check it, or request a new code"
APP_CODE_WRONG = "The security code is not correct. Enter the 6-digit code your app shows now"
CURRENT_PASSWORD_WRONG = "Your current password is not correct"  # noqa: S105 (a message)
# How many time steps (30 seconds each) either side of now an authenticator code is accepted in, for clocks
# that drift; each step's code is still accepted only once (``User.totp_last_step``).
TOTP_WINDOW = 1
EMAIL_FORMAT = "Enter an email address in the correct format, like name@example.com"

_SUBJECTS = {CodePurpose.CONFIRM_EMAIL: "Confirm your email address", CodePurpose.SIGN_IN: "Your sign-in code"}


@dataclass(frozen=True)
class PasswordChecked:
    """The account whose email and password matched, and what it must do next to finish signing in."""

    user_id: int | None
    next_step: SignInStep


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def find_by_email(uow: AbstractUnitOfWork, email: str) -> User | None:
    """The account with this email address, whatever its case."""
    return uow.session.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))


def account(uow: AbstractUnitOfWork, user_id: int) -> User | None:
    """The account part-way through signing in (kept by id in the browser's session)."""
    return uow.session.get(User, user_id)


# Registration -----------------------------------------------------------------------------------
def register(uow: AbstractUnitOfWork, email: str, password: str, mobile: str = "") -> int | None:
    """Create a patient account and send a confirmation code; the new account's id.

    When the email is already registered nothing is created (None) and the owner is told by email, so the
    page the visitor sees is the same either way (no account enumeration).
    """
    email = normalise_email(email)
    if "@" not in email:
        raise InputError(EMAIL_FORMAT, "email")
    problem = password_problem(password, [email.split("@")[0]])
    if problem:
        raise InputError(problem, "password")
    # Hashed before looking the address up, on every path: hashing is most of the work of registering, so an
    # existing address would otherwise be answered several times faster than a new one (enumeration by timing).
    password_hash = hash_password(password)
    uow.writing()
    existing = find_by_email(uow, email)
    if existing is not None:
        uow.send_email(
            email,
            "register_existing",
            "Someone tried to create an account with your email address",
            "Someone tried to create a Patient Online account with this email address. You already have one: "
            "sign in, or reset your password if you have forgotten it. If this was not you, you can ignore this.",
        )
        uow.audit("account.register_duplicate", subject_user_id=existing.id)
        uow.commit()
        return None
    user = User(kind=AccountKind.PATIENT.value, email=email, password_hash=password_hash, mobile=mobile.strip())
    uow.session.add(user)
    uow.flush()
    uow.audit("account.registered", actor_id=user.id, actor_role="patient", subject_user_id=user.id)
    _send_code(uow, user, CodePurpose.CONFIRM_EMAIL, email, _SUBJECTS[CodePurpose.CONFIRM_EMAIL])
    uow.commit()
    return user.id


def _send_code(
    uow: AbstractUnitOfWork, user: User, purpose: CodePurpose, to: str, subject: str, new_email: str = ""
) -> None:
    code = random_code()
    now = uow.now()
    uow.session.execute(
        update(OneTimeCode)
        .where(OneTimeCode.user_id == user.id, OneTimeCode.purpose == purpose.value, OneTimeCode.used_at.is_(None))
        .values(used_at=now)
    )
    uow.session.add(
        OneTimeCode(
            user_id=user.id,
            purpose=purpose.value,
            code_hash=token_hash(code),
            new_email=new_email,
            expires_at=now + CODE_LIFETIME,
        )
    )
    uow.send_email(
        to,
        purpose.value,
        subject,
        f"Your security code is {code}. It expires in 15 minutes. Do not share it with anyone, including NHS staff.",
    )


def _use_code(
    uow: AbstractUnitOfWork, user: User, purpose: CodePurpose, code: str, expired: str = CODE_EXPIRED, wrong: str = ""
) -> OneTimeCode:
    """The account's latest code for ``purpose`` when ``code`` is it, marked used: a code works once, even for
    two requests at the same moment (the row is claimed by a conditional update). InputError otherwise."""
    uow.writing()
    row = uow.session.scalar(
        select(OneTimeCode)
        .where(OneTimeCode.user_id == user.id, OneTimeCode.purpose == purpose.value, OneTimeCode.used_at.is_(None))
        .order_by(OneTimeCode.id.desc())
    )
    now = uow.now()
    if row is None or row.expires_at < now or row.attempts >= MAX_CODE_ATTEMPTS:
        raise InputError(expired, "code")
    if not tokens_match(row.code_hash, (code or "").strip()):
        row.attempts += 1
        uow.commit()
        raise InputError(wrong or CODE_WRONG, "code")
    claimed = uow.session.execute(
        update(OneTimeCode)
        .where(OneTimeCode.id == row.id, OneTimeCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(claimed) != 1:
        raise InputError(expired, "code")
    set_committed_value(row, "used_at", now)
    return row


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def resend_code(uow: AbstractUnitOfWork, user: User, purpose: CodePurpose) -> None:
    """A new code in place of the last one (which stops working)."""
    _send_code(uow, user, purpose, user.email, _SUBJECTS[purpose])
    uow.commit()


def confirm_email(uow: AbstractUnitOfWork, user: User, code: str) -> None:
    """The code sent at registration proves the person reads that mailbox."""
    if user.email_confirmed_at is not None:
        raise InputError(CODE_WRONG, "code")
    _use_code(uow, user, CodePurpose.CONFIRM_EMAIL, code)
    user.email_confirmed_at = uow.now()
    uow.audit("account.email_confirmed", actor_id=user.id, actor_role="patient", subject_user_id=user.id)
    uow.commit()


# Second factor -------------------------------------------------------------------------------------
def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name="Patient Online")


def _matching_step(secret: str, code: str, after: int | None) -> int | None:
    """The time step, within the window around now and later than ``after``, whose code ``code`` is."""
    totp = pyotp.TOTP(secret)
    now_step = totp.timecode(dt.datetime.now(dt.UTC))
    for step in range(now_step - TOTP_WINDOW, now_step + TOTP_WINDOW + 1):
        if after is not None and step <= after:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _accept_totp(uow: AbstractUnitOfWork, user: User, code: str) -> bool:
    """True when ``code`` is the account's authenticator code for a time step not yet used. The step is
    claimed by a conditional update, so a code seen over a shoulder or sent twice at once works only once."""
    secret = decrypt(user.totp_secret)
    if not secret:
        return False
    uow.writing()
    step = _matching_step(secret, code, user.totp_last_step)
    if step is None:
        return False
    claimed = uow.session.execute(
        update(User)
        .where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(claimed) != 1:
        return False
    set_committed_value(user, "totp_last_step", step)
    return True


def enrol_totp(uow: AbstractUnitOfWork, user: User, secret: str, code: str) -> None:
    """Keep the authenticator secret once the person shows their app produces the right code; they are then
    signed in (enrolment happens at first sign-in). The code used here cannot be used again to sign in."""
    step = _matching_step(secret, (code or "").strip(), None)
    if step is None:
        raise InputError("The code is not correct. Enter the 6-digit code your app shows now", "code")
    user.totp_secret = encrypt(secret)
    user.totp_last_step = step
    user.totp_enrolled_at = uow.now()
    user.second_factor = SecondFactor.TOTP.value
    uow.audit("account.totp_enrolled", actor_id=user.id, subject_user_id=user.id)
    _record_sign_in(uow, user)
    uow.commit()


def choose_email_codes(uow: AbstractUnitOfWork, user: User) -> None:
    """Patients may take codes by email instead of an app; the first code is sent now."""
    if user.is_staff:
        raise InputError("Staff must use an authenticator app", "second_factor")
    user.second_factor = SecondFactor.EMAIL.value
    uow.audit("account.second_factor_email", actor_id=user.id, subject_user_id=user.id)
    _send_code(uow, user, CodePurpose.SIGN_IN, user.email, _SUBJECTS[CodePurpose.SIGN_IN])
    uow.commit()


def needs_second_factor_setup(user: User) -> bool:
    return user.totp_enrolled_at is None and (user.is_staff or user.second_factor == SecondFactor.TOTP)


def _needs_setup(user: User) -> bool:
    """A patient who has not confirmed their email, or anyone without the second factor they must have."""
    return needs_second_factor_setup(user) or (user.kind == AccountKind.PATIENT and user.email_confirmed_at is None)


def _codes_by_email(user: User) -> bool:
    return user.second_factor == SecondFactor.EMAIL and not user.is_staff


# Sign in ---------------------------------------------------------------------------------------------
def check_password_sign_in(
    uow: AbstractUnitOfWork, email: str, password: str, *, guarded: bool = False
) -> PasswordChecked | None:
    """The account when email and password match and it may sign in (audited either way), with its next step;
    an email code is sent now when that is the account's second factor.

    ``guarded``: this email address has had many failed attempts lately, from anywhere. Rather than lock the
    account (which anyone could do to its owner), the password step then says nothing: every attempt goes on
    to the security code, and only the right password with the right code signs in. A guesser learns nothing
    about the password, and the owner still gets in. ``user_id`` is None when the password was wrong."""
    user = find_by_email(uow, email)
    ok = check_password(user.password_hash if user else "", password)
    if user is None or not ok or not user.active:
        if user is not None:
            uow.audit("sign_in.failed", subject_user_id=user.id, stage="password")
            uow.commit()
        return PasswordChecked(None, SignInStep.CODE) if guarded else None
    if guarded:
        if not _needs_setup(user):
            start_second_factor(uow, user)
        return PasswordChecked(user.id, SignInStep.CODE)
    if _needs_setup(user):
        return PasswordChecked(user.id, SignInStep.SETUP)
    start_second_factor(uow, user)
    return PasswordChecked(user.id, SignInStep.CODE)


def start_second_factor(uow: AbstractUnitOfWork, user: User) -> None:
    """Send an email code when that is the account's second factor."""
    if _codes_by_email(user):
        _send_code(uow, user, CodePurpose.SIGN_IN, user.email, _SUBJECTS[CodePurpose.SIGN_IN])
        uow.commit()


def check_second_factor(uow: AbstractUnitOfWork, user: User, code: str) -> None:
    """Sign the account in when the code is right for its second factor; InputError (audited) otherwise."""
    code = (code or "").strip().replace(" ", "")
    if _needs_setup(user):  # set up happens with the password alone, on its own pages; never here
        uow.audit("sign_in.failed", subject_user_id=user.id, stage="code")
        uow.commit()
        raise InputError(APP_CODE_WRONG, "code")
    if _codes_by_email(user):
        try:
            _use_code(uow, user, CodePurpose.SIGN_IN, code)
        except InputError:
            uow.audit("sign_in.failed", subject_user_id=user.id, stage="code")
            uow.commit()
            raise
    elif not _accept_totp(uow, user, code):
        uow.audit("sign_in.failed", subject_user_id=user.id, stage="code")
        uow.commit()
        raise InputError(APP_CODE_WRONG, "code")
    _record_sign_in(uow, user)
    uow.commit()


def _record_sign_in(uow: AbstractUnitOfWork, user: User) -> None:
    role = "staff" if user.is_staff else "patient"
    user.last_sign_in_at = uow.now()
    uow.audit("sign_in", actor_id=user.id, actor_role=role, subject_user_id=user.id)


def sign_out(uow: AbstractUnitOfWork, user: User) -> None:
    """Signing out ends every session of the account, on every device."""
    user.session_epoch += 1
    uow.audit("sign_out", actor_id=user.id, subject_user_id=user.id)
    uow.commit()


# Password reset and changes -----------------------------------------------------------------------
def request_password_reset(uow: AbstractUnitOfWork, email: str) -> None:
    """Email a reset code when the account exists; say nothing either way."""
    user = find_by_email(uow, email)
    if user is None:
        return
    _send_code(uow, user, CodePurpose.RESET_PASSWORD, user.email, "Reset your password")
    uow.audit("account.reset_requested", subject_user_id=user.id)
    uow.commit()


def reset_password(uow: AbstractUnitOfWork, email: str, code: str, new_password: str) -> None:
    """A new password for the account whose reset code this is; every session of the account ends.

    The answers never tell an address with an account from one without: the password's rules are checked
    first, against what was typed (the same for any address), then the code, with one message for a code that
    is wrong, expired, used or was never sent."""
    email = normalise_email(email)
    problem = password_problem(new_password, [email.split("@")[0]])
    if problem:
        raise InputError(problem, "password")
    user = find_by_email(uow, email)
    if user is None:
        raise InputError(RESET_CODE_WRONG, "code")
    _use_code(uow, user, CodePurpose.RESET_PASSWORD, code, expired=RESET_CODE_WRONG, wrong=RESET_CODE_WRONG)
    user.password_hash = hash_password(new_password)
    user.must_change_password = False
    user.session_epoch += 1
    uow.audit("account.password_reset", subject_user_id=user.id)
    uow.commit()


def change_password(uow: AbstractUnitOfWork, user: User, current: str, new_password: str) -> None:
    """Change the password and end every other session of the account; a temporary password is then no longer
    owed a change."""
    if not check_password(user.password_hash, current):
        raise InputError(CURRENT_PASSWORD_WRONG, "current_password")
    problem = password_problem(new_password, [user.email.split("@")[0]])
    if problem:
        raise InputError(problem, "password")
    if new_password == current:
        raise InputError("Choose a new password, different from your current one", "password")
    user.password_hash = hash_password(new_password)
    user.must_change_password = False
    user.session_epoch += 1
    uow.audit("account.password_changed", actor_id=user.id, subject_user_id=user.id)
    uow.commit()


def start_email_change(uow: AbstractUnitOfWork, user: User, current_password: str, new_email: str) -> None:
    """Send a code to the new address, unless another account uses it (the page says the same either way).

    The current password is asked first: a session left open on a shared computer must not be enough to move
    the account (and its password resets) to someone else's mailbox."""
    if not user.password_hash:
        raise InputError("You sign in with NHS login. Change your email address in your NHS login account", "email")
    if not check_password(user.password_hash, current_password):
        raise InputError(CURRENT_PASSWORD_WRONG, "current_password")
    new_email = normalise_email(new_email)
    if "@" not in new_email:
        raise InputError(EMAIL_FORMAT, "email")
    if find_by_email(uow, new_email) is None:
        _send_code(uow, user, CodePurpose.CHANGE_EMAIL, new_email, "Confirm your new email address", new_email)
    uow.audit("account.email_change_requested", actor_id=user.id, subject_user_id=user.id)
    uow.commit()


def confirm_email_change(uow: AbstractUnitOfWork, user: User, code: str) -> None:
    """The code sent to the new address proves it is theirs. The old address is told, and every session of the
    account ends (the caller starts this browser's again): whoever else was signed in must sign in anew."""
    row = _use_code(uow, user, CodePurpose.CHANGE_EMAIL, code)
    if find_by_email(uow, row.new_email) is not None:
        raise InputError("That email address cannot be used. Choose another", "code")
    old = user.email
    user.email = row.new_email
    user.email_confirmed_at = uow.now()
    user.session_epoch += 1
    uow.send_email(
        old,
        "email_changed",
        "Your email address was changed",
        "The email address of your Patient Online account was changed, and you were signed out on every device. "
        "If this was not you, contact your GP practice straight away.",
    )
    uow.audit("account.email_changed", actor_id=user.id, subject_user_id=user.id)
    uow.commit()
