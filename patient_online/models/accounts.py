"""Sign-in accounts (patients and staff), staff roles, and one-time codes."""

from __future__ import annotations

import datetime as dt

from flask_login import UserMixin
from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, created, intpk, str_code


class User(UserMixin, Base):  # type: ignore[misc]
    """Anyone who signs in: a patient (``kind='patient'``) or a member of staff (``kind='staff'``)."""

    __tablename__ = "user_account"

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(10), default="patient")
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200), default="")
    mobile: Mapped[str] = mapped_column(String(20), default="")
    given_name: Mapped[str] = mapped_column(String(100), default="")
    family_name: Mapped[str] = mapped_column(String(100), default="")
    email_confirmed_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    totp_secret: Mapped[str] = mapped_column(String(300), default="")  # encrypted
    totp_enrolled_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    # The time step of the last authenticator code accepted: a code is good once, never at or before it.
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    second_factor: Mapped[str] = mapped_column(String(10), default="totp")  # "totp" or "email"
    is_system_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set when someone else chose the password (a temporary one for new staff): changed before anything else.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    nhs_login_sub: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    identity_proofing_level: Mapped[str] = mapped_column(String(5), default="")
    created_at: Mapped[created]
    last_sign_in_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)

    memberships: Mapped[list[StaffMembership]] = relationship(
        back_populates="user", cascade="all, delete-orphan", foreign_keys="StaffMembership.user_id"
    )

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    @property
    def display_name(self) -> str:
        name = f"{self.given_name} {self.family_name}".strip()
        return name or self.email


class StaffMembership(Base):
    """A member of staff's role at one practice."""

    __tablename__ = "staff_membership"
    __table_args__ = (UniqueConstraint("user_id", "practice_id", "role"),)

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    practice_id: Mapped[int] = mapped_column(ForeignKey("practice.id", ondelete="CASCADE"), index=True)
    role: Mapped[str_code]  # "receptionist" or "practice_manager"
    created_at: Mapped[created]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)

    user: Mapped[User] = relationship(back_populates="memberships", foreign_keys=[user_id])


class OneTimeCode(Base):
    """A short-lived code or link token sent to a patient (confirm email, sign in, reset password)."""

    __tablename__ = "one_time_code"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str_code]
    code_hash: Mapped[str] = mapped_column(String(200))
    new_email: Mapped[str] = mapped_column(String(254), default="")
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[created]
