"""A GP practice on the gateway: its clinical-system adapter, service switches and rules."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false

from .base import Base, created, intpk, str_code, str_short, utcnow


class Practice(Base):
    __tablename__ = "practice"

    id: Mapped[intpk]
    ods_code: Mapped[str] = mapped_column(String(10), unique=True)
    name: Mapped[str_short]
    address: Mapped[str] = mapped_column(String(300), default="")
    postcode: Mapped[str] = mapped_column(String(10), default="")
    phone: Mapped[str] = mapped_column(String(30), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    # Where the practice is (decimal degrees), so nearby pharmacies can be listed nearest first; None if unknown.
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    adapter_name: Mapped[str_code] = mapped_column(default="demo")
    adapter_options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[created]

    # Appointment rules (design rule 6)
    online_slot_types: Mapped[list[Any]] = mapped_column(JSON, default=list)
    booking_horizon_days: Mapped[int] = mapped_column(Integer, default=28)
    min_lead_time_hours: Mapped[int] = mapped_column(Integer, default=2)
    max_future_appointments: Mapped[int] = mapped_column(Integer, default=2)
    cancellation_allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    cancellation_cutoff_hours: Mapped[int] = mapped_column(Integer, default=24)
    # Prescription rules (design rule 7)
    turnaround_working_days: Mapped[int] = mapped_column(Integer, default=2)
    max_note_length: Mapped[int] = mapped_column(Integer, default=300)
    never_online: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Record rules (design rule 8)
    default_record_level: Mapped[str] = mapped_column(String(20), default="full")
    record_access_start: Mapped[dt.date] = mapped_column(Date, default=lambda: dt.date(2023, 10, 31))
    # Proxy rules (design rule 18)
    proxy_review_age: Mapped[int] = mapped_column(Integer, default=11)
    proxy_notice_days: Mapped[int] = mapped_column(Integer, default=30)
    # Earlier appointments (the waitlist): whether patients may join it, and how long an offer is held.
    waitlist_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    waitlist_hold_minutes: Mapped[int] = mapped_column(Integer, default=15, server_default="15")

    switches: Mapped[list[ServiceSwitch]] = relationship(
        back_populates="practice", cascade="all, delete-orphan", order_by="ServiceSwitch.service"
    )

    def switch(self, service: str) -> ServiceSwitch | None:
        return next((s for s in self.switches if s.service == service), None)


class ServiceSwitch(Base):
    """One online service switched on or off for a whole practice."""

    __tablename__ = "service_switch"
    __table_args__ = (UniqueConstraint("practice_id", "service"),)

    id: Mapped[intpk]
    practice_id: Mapped[int] = mapped_column(ForeignKey("practice.id", ondelete="CASCADE"))
    service: Mapped[str_code]
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    message: Mapped[str] = mapped_column(String(500), default="")
    off_reason: Mapped[str] = mapped_column(String(500), default="")
    expected_return: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)

    practice: Mapped[Practice] = relationship(back_populates="switches")


class Pharmacy(Base):
    """A community pharmacy patients can nominate for electronic prescriptions."""

    __tablename__ = "pharmacy"

    ods_code: Mapped[str] = mapped_column(String(10), primary_key=True)
    name: Mapped[str_short]
    address: Mapped[str] = mapped_column(String(300), default="")
    postcode: Mapped[str] = mapped_column(String(10), default="")
    phone: Mapped[str] = mapped_column(String(30), default="")
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
