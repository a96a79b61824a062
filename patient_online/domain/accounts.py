"""Accounts: their kinds, second factors, staff roles and the purposes of one-time codes."""

from __future__ import annotations

import enum


class AccountKind(enum.StrEnum):
    PATIENT = "patient"
    STAFF = "staff"


class SecondFactor(enum.StrEnum):
    TOTP = "totp"
    EMAIL = "email"
    NHS_LOGIN = "nhs_login"


class StaffRole(enum.StrEnum):
    RECEPTIONIST = "receptionist"
    PRACTICE_MANAGER = "practice_manager"
    SYSTEM_ADMIN = "system_admin"


PRACTICE_ROLES = (StaffRole.RECEPTIONIST, StaffRole.PRACTICE_MANAGER)


class CodePurpose(enum.StrEnum):
    """What a one-time code sent by email is for."""

    CONFIRM_EMAIL = "confirm_email"
    SIGN_IN = "sign_in"
    RESET_PASSWORD = "reset_password"  # noqa: S105 (a purpose, not a password)
    CHANGE_EMAIL = "change_email"


class SignInStep(enum.StrEnum):
    """Where a person goes once their password is right."""

    SETUP = "setup"  # confirm the email address, or set up the second factor
    CODE = "code"  # enter the security code
