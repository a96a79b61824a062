"""Earlier appointments: the patients waiting to be offered an earlier time, the offers made to them, and when
each practice's book was last searched for free times.

Two unique keys carry the rules across every node and worker: ``waitlist_entry.active_key`` (one active entry
per patient and practice) and ``slot_offer.live_key`` (one offer at a time for a slot). Each is set while the
row is active and cleared (NULL, which a unique constraint does not count) when it ends.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created, intpk, utcnow


class WaitlistEntry(Base):
    """A patient asking to be offered an earlier time (by the account holder, or a proxy acting for them)."""

    __tablename__ = "waitlist_entry"
    __table_args__ = (Index("ix_waitlist_entry_queue", "practice_id", "status", "created_at"),)

    id: Mapped[intpk]
    practice_id: Mapped[int] = mapped_column(ForeignKey("practice.id", ondelete="CASCADE"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))  # offers go to them
    actor_role: Mapped[str] = mapped_column(String(30), default="patient")
    slot_type: Mapped[str] = mapped_column(String(120), default="")  # "" for any type offered online
    weekdays: Mapped[list[Any]] = mapped_column(default=list)
    parts: Mapped[list[Any]] = mapped_column(default=list)
    until: Mapped[dt.date]
    replacing_ref: Mapped[str] = mapped_column(String(120), default="")  # the appointment it would replace
    replacing_start: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="waiting")
    active_key: Mapped[str | None] = mapped_column(String(60), nullable=True, unique=True)
    created_at: Mapped[created]
    ended_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class SlotOffer(Base):
    """A free time offered to one waiting patient, held for them until ``hold_until``."""

    __tablename__ = "slot_offer"
    __table_args__ = (Index("ix_slot_offer_status_hold", "status", "hold_until"),)

    id: Mapped[intpk]
    practice_id: Mapped[int] = mapped_column(ForeignKey("practice.id", ondelete="CASCADE"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("waitlist_entry.id", ondelete="CASCADE"), index=True)
    slot_id: Mapped[str] = mapped_column(String(120))
    slot_start: Mapped[dt.datetime]
    slot_end: Mapped[dt.datetime]
    slot_type: Mapped[str] = mapped_column(String(120), default="")
    clinician: Mapped[str] = mapped_column(String(200), default="")
    clinician_role: Mapped[str] = mapped_column(String(120), default="")
    delivery_mode: Mapped[str] = mapped_column(String(20), default="")
    location: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(20), default="held")
    live_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    offered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    hold_until: Mapped[dt.datetime]
    decided_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    appointment_ref: Mapped[str] = mapped_column(String(120), default="")  # the booking, once accepted


class WaitlistLook(Base):
    """When the practice's book is next to be searched for times to offer; a cancellation makes it due now."""

    __tablename__ = "waitlist_look"

    practice_id: Mapped[int] = mapped_column(ForeignKey("practice.id", ondelete="CASCADE"), primary_key=True)
    due_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    looked_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
