"""The gateway's record of each repeat prescription order, so nothing is lost and nothing sent twice."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created, intpk, text_note, utcnow


class PrescriptionOrder(Base):
    __tablename__ = "prescription_order"

    id: Mapped[intpk]
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"), index=True)
    ordered_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    item_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    item_names: Mapped[list[Any]] = mapped_column(JSON, default=list)
    note: Mapped[text_note]
    pharmacy_ods: Mapped[str] = mapped_column(String(10), default="")
    # Where the patient will collect it (domain.prescriptions.Collection): their pharmacy (EPS) or the surgery.
    collection: Mapped[str] = mapped_column(String(20), default="pharmacy", server_default="pharmacy")
    status: Mapped[str] = mapped_column(String(20), default="queued")
    external_id: Mapped[str] = mapped_column(String(64), default="")
    ready_by: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    rejection_reason: Mapped[text_note]
    created_at: Mapped[created]  # when the patient asked: never changes, whenever it is delivered
    sent_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)  # when the clinical system took it
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
