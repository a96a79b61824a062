"""A patient's logical id in each clinical system a practice has used.

``Patient.clinical_id`` is the id at the practice's current system. This table remembers the id found at each
system (keyed by ``system_key``: the adapter's name and where it reaches, for example ``gpconnect:<base url>``)
so that a changed adapter, a migration between systems or its rollback never sends one system's id to another.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, intpk, utcnow


class PatientSystemId(Base):
    __tablename__ = "patient_system_id"
    __table_args__ = (UniqueConstraint("patient_id", "system_key"),)

    id: Mapped[intpk]
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"), index=True)
    system_key: Mapped[str] = mapped_column(String(200))
    logical_id: Mapped[str] = mapped_column(String(64))
    found_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
