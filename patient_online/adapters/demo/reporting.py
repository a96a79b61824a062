"""Figures for the uptake report from the demo clinical system (its side of the optional ReportFigures port).

A system without that port is not asked: the report says its figures are not available, rather than guessing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from sqlalchemy import String, case, cast, func, select
from sqlalchemy.orm import Session

from patient_online.domain.reports import ClinicalFigures

from .models import DemoAppointment, DemoPatient, DemoSlot


def clinical_figures(
    session_factory: Callable[[], Session],
    practice_ods: str,
    start: dt.datetime,
    end: dt.datetime,
    online_slot_types: Iterable[str],
    flag_codes: Iterable[str],
) -> ClinicalFigures:
    """List size, bookings made in [start, end) (and how many online), slots starting then, patients per flag."""
    online_types = sorted(set(online_slot_types))
    codes = list(flag_codes)
    with session_factory() as s:
        flag_columns = [
            func.coalesce(func.sum(case((cast(DemoPatient.flags, String).like(f"%{code}%"), 1), else_=0)), 0)
            for code in codes
        ]
        patients = s.execute(
            select(func.count(DemoPatient.id), *flag_columns).where(DemoPatient.practice_ods == practice_ods)
        ).one()
        bookings = s.execute(
            select(
                func.count(DemoAppointment.id),
                func.coalesce(func.sum(case((DemoAppointment.booked_online.is_(True), 1), else_=0)), 0),
            )
            .join(DemoSlot, DemoAppointment.slot_id == DemoSlot.id)
            .where(
                DemoSlot.practice_ods == practice_ods,
                DemoAppointment.booked_at >= start,
                DemoAppointment.booked_at < end,
            )
        ).one()
        slots = s.execute(
            select(
                func.count(DemoSlot.id),
                func.coalesce(func.sum(case((DemoSlot.slot_type.in_(online_types), 1), else_=0)), 0),
            ).where(DemoSlot.practice_ods == practice_ods, DemoSlot.start >= start, DemoSlot.start < end)
        ).one()
    return ClinicalFigures(
        list_size=int(patients[0]),
        bookings=int(bookings[0]),
        online_bookings=int(bookings[1]),
        slots=int(slots[0]),
        online_type_slots=int(slots[1]),
        flag_counts={code: int(n) for code, n in zip(codes, patients[1:], strict=True)},
    )
