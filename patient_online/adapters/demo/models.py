"""Tables of the embedded demo clinical system. They stand in for EMIS Web or SystmOne, so the gateway
reads them only through the demo adapter, never directly."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from patient_online.models.base import Base, utcnow


class DemoPatient(Base):
    __tablename__ = "demo_patient"
    __table_args__ = (Index("ix_demo_patient_practice_nhs", "practice_ods", "nhs_number", unique=True),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    practice_ods: Mapped[str] = mapped_column(String(10))
    nhs_number: Mapped[str] = mapped_column(String(10))
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(10), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    postcode: Mapped[str] = mapped_column(String(10), default="")
    flags: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"code": ..., "date": "YYYY-MM-DD"}]


class DemoClinician(Base):
    __tablename__ = "demo_clinician"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    practice_ods: Mapped[str] = mapped_column(String(10), index=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(60))


class DemoSlot(Base):
    __tablename__ = "demo_slot"
    __table_args__ = (Index("ix_demo_slot_search", "practice_ods", "status", "start"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    practice_ods: Mapped[str] = mapped_column(String(10))
    start: Mapped[dt.datetime]
    end: Mapped[dt.datetime]
    clinician_id: Mapped[str] = mapped_column(ForeignKey("demo_clinician.id"))
    slot_type: Mapped[str] = mapped_column(String(60))
    delivery_mode: Mapped[str] = mapped_column(String(20))
    location: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(10), default="free")  # free / booked


class DemoAppointment(Base):
    __tablename__ = "demo_appointment"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot_id: Mapped[str] = mapped_column(ForeignKey("demo_slot.id"), index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("demo_patient.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="booked")
    reason: Mapped[str] = mapped_column(String(100), default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    idempotency_key: Mapped[str | None] = mapped_column(String(80), unique=True, nullable=True)
    booked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    booked_online: Mapped[bool] = mapped_column(Boolean, default=False)
    cancellation_reason: Mapped[str] = mapped_column(String(200), default="")
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class DemoMedication(Base):
    __tablename__ = "demo_medication"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("demo_patient.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(20), default="")
    dosage: Mapped[str] = mapped_column(String(200), default="")
    quantity: Mapped[str] = mapped_column(String(60), default="")
    prescription_type: Mapped[str] = mapped_column(String(20), default="repeat")
    last_issued: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    review_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    issues_allowed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    issues_used: Mapped[int] = mapped_column(Integer, default=0)
    controlled_drug: Mapped[bool] = mapped_column(Boolean, default=False)
    stopped_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class DemoRepeatRequest(Base):
    __tablename__ = "demo_repeat_request"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("demo_patient.id"), index=True)
    item_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(String(1000), default="")
    pharmacy_ods: Mapped[str] = mapped_column(String(10), default="")
    collection: Mapped[str] = mapped_column(String(20), default="pharmacy", server_default="pharmacy")
    status: Mapped[str] = mapped_column(String(20), default="requested")
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    rejection_reason: Mapped[str] = mapped_column(String(500), default="")


class DemoRecordEntry(Base):
    __tablename__ = "demo_record_entry"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("demo_patient.id"), index=True)
    section: Mapped[str] = mapped_column(String(20))
    date: Mapped[dt.date] = mapped_column(Date)
    term: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(20), default="")
    free_text: Mapped[str] = mapped_column(String(2000), default="")
    status: Mapped[str] = mapped_column(String(20), default="")
    value: Mapped[str] = mapped_column(String(40), default="")
    unit: Mapped[str] = mapped_column(String(40), default="")
    reference_range: Mapped[str] = mapped_column(String(60), default="")
    outside_range: Mapped[bool] = mapped_column(Boolean, default=False)
    filed: Mapped[bool] = mapped_column(Boolean, default=True)
    filed_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    clinician: Mapped[str] = mapped_column(String(100), default="")
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    third_party: Mapped[bool] = mapped_column(Boolean, default=False)
    serious_harm: Mapped[bool] = mapped_column(Boolean, default=False)
    severity: Mapped[str] = mapped_column(String(40), default="")
    reaction: Mapped[str] = mapped_column(String(200), default="")
    dosage: Mapped[str] = mapped_column(String(200), default="")
