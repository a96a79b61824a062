"""Audit events: every state change and every view of clinical data (design rule 19)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created, intpk


class AuditEvent(Base):
    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_patient_at", "patient_id", "at"),
        Index("ix_audit_event_subject_user_at", "subject_user_id", "at"),
        Index("ix_audit_event_practice_at", "practice_id", "at"),
        # The hash chain per practice (services/audit_chain.py): walked in chain order, unsealed rows found fast.
        Index("ix_audit_event_practice_chain", "practice_id", "chain_seq"),
        Index("ix_audit_event_chain_seq", "chain_seq"),
    )

    id: Mapped[intpk]
    at: Mapped[created]
    action: Mapped[str] = mapped_column(String(60), index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    actor_role: Mapped[str] = mapped_column(String(30), default="")
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"), nullable=True)
    subject_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    practice_id: Mapped[int | None] = mapped_column(ForeignKey("practice.id"), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request_id: Mapped[str] = mapped_column(String(40), default="")
    # Set once, when the event is sealed into its practice's hash chain; never changed after.
    chain_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
