"""How a person wants to be told things: a verified mobile number, and email, text or both per kind of message."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, intpk


class ContactPreference(Base):
    """One row per account that has chosen; none means email for everything."""

    __tablename__ = "contact_preference"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), unique=True)
    mobile: Mapped[str] = mapped_column(String(20), default="")  # +447..., once confirmed with a code
    mobile_verified_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    pending_mobile: Mapped[str] = mapped_column(String(20), default="")  # waiting for its code
    code_hash: Mapped[str] = mapped_column(String(128), default="")
    code_expires_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    code_attempts: Mapped[int] = mapped_column(default=0)
    channels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # kind of message -> email/sms/both
