"""A practice's planned move to another clinical system, and what became of each linked patient in it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, created, intpk, utcnow
from .patients import Patient
from .practice import Practice


class SystemMigration(Base):
    """One plan: from the practice's system to a target adapter, in a cut-over window (at most one open)."""

    __tablename__ = "system_migration"

    id: Mapped[intpk]
    practice_id: Mapped[int] = mapped_column(ForeignKey("practice.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(20), default="planned")
    source_adapter: Mapped[str] = mapped_column(String(40))
    source_options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # as stored: secrets encrypted
    source_key: Mapped[str] = mapped_column(String(200))
    target_adapter: Mapped[str] = mapped_column(String(40))
    target_options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # as stored: secrets encrypted
    target_key: Mapped[str] = mapped_column(String(200))
    window_start: Mapped[dt.datetime]
    window_end: Mapped[dt.datetime]
    patient_message: Mapped[str] = mapped_column(String(500), default="")
    # The practice's service switches as they were before the freeze, restored when it ends.
    saved_switches: Mapped[list[Any]] = mapped_column(JSON, default=list)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # counts from the last matching run
    created_at: Mapped[created]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    practice: Mapped[Practice] = relationship()


class MigrationPatient(Base):
    """A linked patient's outcome in a migration: matched (with both ids) or waiting for reception."""

    __tablename__ = "system_migration_patient"
    __table_args__ = (UniqueConstraint("migration_id", "patient_id"),)

    id: Mapped[intpk]
    migration_id: Mapped[int] = mapped_column(ForeignKey("system_migration.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"), index=True)
    outcome: Mapped[str] = mapped_column(String(30))
    old_id: Mapped[str] = mapped_column(String(64))
    new_id: Mapped[str] = mapped_column(String(64), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)

    patient: Mapped[Patient] = relationship()
