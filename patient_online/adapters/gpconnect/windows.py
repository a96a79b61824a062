"""Date windows for slot searches: split long windows, and write times as UK local time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from .constants import MAX_SLOT_WINDOW_DAYS

LONDON = ZoneInfo("Europe/London")


def split_window(
    start: dt.datetime, end: dt.datetime, max_days: int = MAX_SLOT_WINDOW_DAYS
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Consecutive windows of at most ``max_days`` covering start..end, as GP Connect allows one search."""
    if end <= start:
        return []
    step = dt.timedelta(days=max_days)
    windows: list[tuple[dt.datetime, dt.datetime]] = []
    cursor = start
    while cursor < end:
        upper = min(cursor + step, end)
        windows.append((cursor, upper))
        cursor = upper
    return windows


def london_iso(moment: dt.datetime) -> str:
    """An aware moment as Europe/London local time with its offset, e.g. 2024-07-01T09:00:00+01:00."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(LONDON).replace(microsecond=0).isoformat()


def appointment_search_dates(today: dt.date, since: dt.date, days: int) -> tuple[dt.date, dt.date]:
    """The ``start=ge``/``start=le`` dates of a patient's appointment search.

    GP Connect returns future appointments only: no part of the range may be in the past, so the lower date
    is never before ``today`` (UK local date), whatever ``since`` asks. The upper date is ``days`` after it.
    """
    lower = max(today, since)
    return lower, lower + dt.timedelta(days=max(days, 0))
