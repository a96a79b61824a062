"""Audit events: every state change and every view of clinical data (design rule 19)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created, intpk


class AuditEvent(Base):
    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_patient_at", "patient_id", "at"),
        Index("ix_audit_event_subject_user_at", "subject_user_id", "at"),
        Index("ix_audit_event_practice_at", "practice_id", "at"),
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
