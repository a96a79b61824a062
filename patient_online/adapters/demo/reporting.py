"""Figures for the uptake report from the demo clinical system (its side of the optional ReportFigures port).

A system without that port is not asked: the report says its figures are not available, rather than guessing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from sqlalchemy import String, case, cast, func, or_, select
from sqlalchemy.orm import Session

from patient_online.domain.access import codes_in_force
from patient_online.domain.patients import AccessFlag
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
        list_size = s.scalar(select(func.count(DemoPatient.id)).where(DemoPatient.practice_ods == practice_ods))
        flagged = s.scalars(
            select(DemoPatient.flags).where(
                DemoPatient.practice_ods == practice_ods,
                or_(*[cast(DemoPatient.flags, String).like(f"%{code}%") for code in codes]),
            )
        )
        counts = dict.fromkeys(codes, 0)
        for items in flagged:
            for code in codes_in_force(_flags(items)):
                if code in counts:
                    counts[code] += 1
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
        list_size=int(list_size or 0),
        bookings=int(bookings[0]),
        online_bookings=int(bookings[1]),
        slots=int(slots[0]),
        online_type_slots=int(slots[1]),
        flag_counts=counts,
    )


def _flags(items: object) -> tuple[AccessFlag, ...]:
    """The patient's rule 8 codes (the demo system stores them as {code, date} entries)."""
    return tuple(
        AccessFlag(str(f["code"]), dt.date.fromisoformat(str(f["date"])))
        for f in (items if isinstance(items, list) else [])
        if isinstance(f, dict) and "code" in f and "date" in f
    )
