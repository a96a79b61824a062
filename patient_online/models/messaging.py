"""The durable outbox of writes for clinical systems, and the local notifier outbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created, intpk, utcnow


class OutboxMessage(Base):
    """A write a clinical system could not take at once, delivered later exactly once."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_due", "status", "next_attempt_at"),)

    id: Mapped[intpk]
    practice_id: Mapped[int] = mapped_column(ForeignKey("practice.id"))
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending/delivered/failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    locked_by: Mapped[str] = mapped_column(String(80), default="")
    locked_until: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[created]
    delivered_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class Notification(Base):
    """A message sent to a person; the local notifier keeps them here for the demo and tests."""

    __tablename__ = "notification"

    id: Mapped[intpk]
    to: Mapped[str] = mapped_column(String(254), index=True)
    channel: Mapped[str] = mapped_column(String(10), default="email")
    template: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(String(4000), default="")
    created_at: Mapped[created]
