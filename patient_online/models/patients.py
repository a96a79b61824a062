"""Practice patients on the gateway, links from accounts to them, verification and proxy access."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, String, UniqueConstraint, event, true
from sqlalchemy.orm import Mapped, Mapper, mapped_column, relationship

from .accounts import User
from .base import Base, created, intpk, str_code, text_note
from .practice import Practice


class Patient(Base):
    """A patient of a practice as the gateway knows them, with the access reception has set."""

    __tablename__ = "patient"
    __table_args__ = (UniqueConstraint("practice_id", "nhs_number"),)

    id: Mapped[intpk]
    practice_id: Mapped[int] = mapped_column(ForeignKey("practice.id", ondelete="CASCADE"))
    nhs_number: Mapped[str] = mapped_column(String(10), index=True)
    clinical_id: Mapped[str] = mapped_column(String(64))
    given_name: Mapped[str] = mapped_column(String(100), default="")
    family_name: Mapped[str] = mapped_column(String(100), default="")
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    online_account_id: Mapped[str] = mapped_column(String(20), unique=True)
    record_level: Mapped[str | None] = mapped_column(String(20), nullable=True)  # None = practice default
    record_level_set_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    appointments_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    prescriptions_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    nominated_pharmacy_ods: Mapped[str] = mapped_column(String(10), default="")
    # SNOMED CT access flags as last read from the clinical system: [{"code": ..., "date": "YYYY-MM-DD"}]
    flags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    flags_read_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[created]

    practice: Mapped[Practice] = relationship()

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()


class AccountLink(Base):
    """A patient's own account linked to their record at a practice."""

    __tablename__ = "account_link"
    __table_args__ = (UniqueConstraint("user_id", "patient_id"),)

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="active")  # "active" / "suspended"
    method: Mapped[str_code]
    remote_vouching_only: Mapped[bool] = mapped_column(Boolean, default=False)
    linked_at: Mapped[created]
    suspended_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    suspended_reason: Mapped[text_note]
    suspended_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    patient: Mapped[Patient] = relationship()


class LinkRequest(Base):
    """A patient's request to be linked to their record, waiting for reception."""

    __tablename__ = "link_request"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practice.id", ondelete="CASCADE"), index=True)
    nhs_number: Mapped[str] = mapped_column(String(10))
    clinical_id: Mapped[str] = mapped_column(String(64), default="")
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    postcode: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    # Whether the details matched the clinical system when asked: reception sees it, the patient is not told.
    matched: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[created]
    decided_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    rejection_reason: Mapped[text_note]

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    practice: Mapped[Practice] = relationship()


class Verification(Base):
    """How a patient's identity was verified, by whom and when. Append-only (design rule 3)."""

    __tablename__ = "verification"

    id: Mapped[intpk]
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    method: Mapped[str_code]
    documents: Mapped[list[Any]] = mapped_column(JSON, default=list)
    remote: Mapped[bool] = mapped_column(Boolean, default=False)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    verified_at: Mapped[created]
    notes: Mapped[text_note]

    staff: Mapped[User | None] = relationship(foreign_keys=[staff_id])


@event.listens_for(Verification, "before_update")
@event.listens_for(Verification, "before_delete")
def _verification_is_append_only(mapper: Mapper[Any], connection: Any, target: Verification) -> None:
    raise ValueError("Verification records are append-only")


class LinkageLetter(Base):
    """A Linkage Key issued on paper by reception; stored hashed, expires, replaced on reissue."""

    __tablename__ = "linkage_letter"

    id: Mapped[intpk]
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(200))
    issued_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    issued_at: Mapped[created]
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    verification_method: Mapped[str] = mapped_column(String(40), default="documents")

    patient: Mapped[Patient] = relationship()


class ProxyLink(Base):
    """One person acting for a patient, on a recorded basis, with per-service permissions."""

    __tablename__ = "proxy_link"

    id: Mapped[intpk]
    proxy_user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"), index=True)
    relationship_text: Mapped[str] = mapped_column(String(100))
    basis: Mapped[str_code]
    status: Mapped[str] = mapped_column(String(20), default="requested", index=True)
    evidence: Mapped[text_note]
    safeguarding_notes: Mapped[text_note]
    safeguarding_checked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    safeguarding_checked_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    can_appointments: Mapped[bool] = mapped_column(Boolean, default=False)
    can_prescriptions: Mapped[bool] = mapped_column(Boolean, default=False)
    record_level: Mapped[str] = mapped_column(String(20), default="none")
    competence_assessed: Mapped[bool] = mapped_column(Boolean, default=False)
    child_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    patient_consent_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    notices_sent: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[created]
    decided_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    status_reason: Mapped[text_note]

    proxy: Mapped[User] = relationship(foreign_keys=[proxy_user_id])
    patient: Mapped[Patient] = relationship()
