"""The durable outbox (writes for clinical systems, and every email and text message), the messages sent to
people, and the appointment reminders already dealt with."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import false

from .base import Base, created, intpk, utcnow


class OutboxMessage(Base):
    """A write a clinical system could not take at once, or a message to a person, delivered later exactly once.

    ``priority`` messages (security codes) are taken before any other that is due.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_due", "status", "next_attempt_at"),)

    id: Mapped[intpk]
    practice_id: Mapped[int | None] = mapped_column(ForeignKey("practice.id"), nullable=True)
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
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Notification(Base):
    """A message to a person (email or text), written with the change it tells of and sent by the outbox.

    ``reference`` is the outbox message's key, also given to GOV.UK Notify as its reference. ``status`` is
    queued, sent or failed; the demo mailbox shows these rows, and so do staff (without the text).
    """

    __tablename__ = "notification"

    id: Mapped[intpk]
    to: Mapped[str] = mapped_column(String(254), index=True)
    channel: Mapped[str] = mapped_column(String(10), default="email")
    template: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(String(4000), default="")
    created_at: Mapped[created]
    status: Mapped[str] = mapped_column(String(20), default="queued", server_default="sent")
    priority: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    reference: Mapped[str | None] = mapped_column(String(80), nullable=True, unique=True)
    personalisation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    sent_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    provider_id: Mapped[str] = mapped_column(String(64), default="", server_default="")


class AppointmentReminder(Base):
    """One reminder of one appointment, sent (or skipped) once: unique per appointment and time before it."""

    __tablename__ = "appointment_reminder"
    __table_args__ = (
        UniqueConstraint("practice_id", "appointment_ref", "hours_before", name="uq_appointment_reminder"),
    )

    id: Mapped[intpk]
    practice_id: Mapped[int] = mapped_column(ForeignKey("practice.id", ondelete="CASCADE"))
    appointment_ref: Mapped[str] = mapped_column(String(120))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"), index=True)
    hours_before: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(20), default="sent")  # sent / skipped
    created_at: Mapped[created]
