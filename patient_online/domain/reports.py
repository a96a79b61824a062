"""The uptake report: what a practice's online services are used for, against the GP contract's benchmarks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

# The SNOMED CT concepts the gateway reads on a patient's record to steer online access (design rule 8), each with
# the term the report shows beside its code. The two enhanced review terms are as NHS England's guidance for GP
# practices gives them; the declined term is as the design gives it.
SNOMED_TERMS = {
    "1290331000000103": "Online access declined",
    "1364731000000104": "Enhanced review indicated before granting access to your own health record",
    "1364751000000106": "Enhanced review not indicated before granting access to your own health record",
}

REGISTERED_BENCHMARKS = (10, 20)  # % of the practice list registered for online services
BOOKABLE_BENCHMARK = 25  # % of appointments bookable online


@dataclass(frozen=True)
class Period:
    """A report period: whole days, both ends included."""

    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class ClinicalFigures:
    """Figures only the practice's clinical system holds (its list and its appointment book)."""

    list_size: int
    bookings: int
    online_bookings: int
    slots: int
    online_type_slots: int
    flag_counts: dict[str, int] = field(default_factory=dict)


def percent(part: int | None, whole: int | None) -> float | None:
    """``part`` as a percentage of ``whole``, one decimal place; None when there is nothing to divide by."""
    if part is None or not whole:
        return None
    return round(100 * part / whole, 1)


def meets(value: float | None, benchmark: int) -> bool | None:
    return None if value is None else value >= benchmark


def concept(code: str) -> str:
    """A SNOMED CT code with its term, as a manager reads it: ‘Term’ (SNOMED CT code)."""
    term = SNOMED_TERMS.get(code)
    return f"‘{term}’ (SNOMED CT {code})" if term else f"SNOMED CT {code}"
