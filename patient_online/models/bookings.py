"""What the gateway knows of the bookings it asked clinical systems for: each outcome recorded once, and each
booking about to be asked for, so one the gateway failed to record is found and recorded later."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created, intpk


class BookingRecord(Base):
    """One row per appointment whose booking the gateway has recorded (its audit event and confirmation).

    The unique key is what makes the record exactly-once: two requests recording the same appointment at the
    same moment (a double click on two servers) cannot both insert it, and the one that fails knows the
    booking is recorded already.
    """

    __tablename__ = "booking_record"
    __table_args__ = (UniqueConstraint("practice_id", "appointment_ref", name="uq_booking_record_appointment"),)

    id: Mapped[intpk]
    practice_id: Mapped[int] = mapped_column(ForeignKey("practice.id", ondelete="CASCADE"))
    appointment_ref: Mapped[str] = mapped_column(String(120))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[created]


class BookingIntent(Base):
    """A booking the gateway is about to ask a clinical system for, committed before the call.

    If the clinical system books the slot but the gateway cannot record it (its database failed in between),
    the intent remains; the next look at the patient's appointments finds the booking and records it once.
    Intents that led to no booking are dropped after a while.
    """

    __tablename__ = "booking_intent"
    __table_args__ = (UniqueConstraint("patient_id", "idempotency_key", name="uq_booking_intent_key"),)

    id: Mapped[intpk]
    practice_id: Mapped[int] = mapped_column(ForeignKey("practice.id", ondelete="CASCADE"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    actor_role: Mapped[str] = mapped_column(String(30), default="patient")
    slot_id: Mapped[str] = mapped_column(String(120))
    idempotency_key: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[created]
