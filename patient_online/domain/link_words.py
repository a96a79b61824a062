"""A practice's link to its clinical system in words staff read: "Connected", "Slow", "Not connected since 10:42".

Reception and practice management both show it. The adapters report a ``LinkState`` (ok, and a technical
detail such as "circuit open; GP Connect: last call failed at 10:42:07 UTC"); ``words_for`` reads that detail,
and ``link_words`` turns the facts themselves into words, for a caller that holds them.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from .ports import LinkState

LONDON = ZoneInfo("Europe/London")
_CIRCUIT = re.compile(r"circuit (closed|open|half-open)")
_AT = re.compile(r"last call (failed|succeeded) at (\d{2}):(\d{2}):(\d{2}) UTC")


class LinkStatus(enum.StrEnum):
    CONNECTED = "connected"
    SLOW = "slow"
    NOT_CONNECTED = "not connected"


@dataclass(frozen=True)
class LinkWords:
    """The link's status (for a coloured tag) and one sentence that says what it means."""

    status: LinkStatus
    sentence: str

    @property
    def ok(self) -> bool:
        return self.status is LinkStatus.CONNECTED

    @property
    def tag(self) -> str:
        """The NHS.UK tag colour for the status."""
        return {LinkStatus.CONNECTED: "green", LinkStatus.SLOW: "yellow", LinkStatus.NOT_CONNECTED: "red"}[self.status]


def _clock(at: dt.datetime) -> str:
    return at.astimezone(LONDON).strftime("%H:%M")


def link_words(
    ok: bool,
    *,
    circuit: str | None = None,
    last_ok: dt.datetime | None = None,
    last_failure: dt.datetime | None = None,
) -> LinkWords:
    """The link in words, from what is known of it: whether it works, the circuit breaker's state
    ("closed", "open", "half-open") and when the last call succeeded or failed (aware datetimes)."""
    failing_since = last_failure if last_failure is not None and (last_ok is None or last_failure > last_ok) else None
    if circuit == "open":
        down_at = failing_since or last_failure
        since = f" since {_clock(down_at)}" if down_at is not None else ""
        return LinkWords(
            LinkStatus.NOT_CONNECTED,
            f"Not connected{since}. Patients cannot book, order or see their record until it is back; "
            "the gateway tries again by itself.",
        )
    if circuit == "half-open":
        return LinkWords(LinkStatus.SLOW, "Slow: the link failed a moment ago and is being tried again.")
    if failing_since is not None or not ok:
        since = f" since {_clock(failing_since)}" if failing_since is not None else ""
        return LinkWords(
            LinkStatus.NOT_CONNECTED if circuit is None else LinkStatus.SLOW,
            f"Not connected{since}. Some calls fail; patients may be asked to try again later."
            if circuit is None
            else f"Slow: calls are failing{since}. Patients may be asked to try again later.",
        )
    if last_ok is not None:
        return LinkWords(LinkStatus.CONNECTED, f"Patients' requests reach it. Last answered at {_clock(last_ok)}.")
    return LinkWords(LinkStatus.CONNECTED, "Patients' requests reach it.")


def words_for(state: LinkState, now: dt.datetime) -> LinkWords:
    """A ``LinkState`` in words; ``now`` (aware) dates the times of day the adapters report in UTC."""
    circuit = _CIRCUIT.search(state.detail)
    at = _AT.search(state.detail)
    last_ok = last_failure = None
    if at is not None:
        day = now.astimezone(dt.UTC)
        when = day.replace(hour=int(at[2]), minute=int(at[3]), second=int(at[4]), microsecond=0)
        if when > day:
            when -= dt.timedelta(days=1)
        if at[1] == "failed":
            last_failure = when
        else:
            last_ok = when
    return link_words(state.ok, circuit=circuit[1] if circuit else None, last_ok=last_ok, last_failure=last_failure)
