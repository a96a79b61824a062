"""Reception pages: the practice's online bookings, cancellations and changes, today and the next days."""

from __future__ import annotations

from flask import g, render_template, request

from patient_online.services.appointments import practice_bookings
from patient_online.wiring import uow

from . import bp

DAY_CHOICES = (1, 3, 7, 14)


@bp.get("/appointments")
def bookings() -> str:
    days = request.args.get("days", type=int)
    days = days if days in DAY_CHOICES else 7
    first = uow().today()
    return render_template(
        "reception/bookings.html",
        practice=g.practice,
        days=days,
        choices=DAY_CHOICES,
        first=first,
        booking_days=practice_bookings(uow(), g.practice, first, days),
    )
