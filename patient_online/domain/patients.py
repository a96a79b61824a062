"""Who a patient is in a practice's clinical system."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PatientRef:
    """Enough to address one patient in one practice's clinical system."""

    practice_ods: str
    nhs_number: str
    clinical_id: str


@dataclass(frozen=True)
class AccessFlag:
    """A SNOMED CT code on the patient's record that steers online access."""

    code: str
    recorded_on: dt.date
    # For an enhanced-review code: the record level the patient had when the gateway learned of the code
    # (rule 8 keeps it). Stored as the level's value so this module does not depend on the record levels.
    level_then: str | None = None


@dataclass(frozen=True)
class Demographics:
    """A patient as the clinical system knows them."""

    ref: PatientRef
    given_name: str
    family_name: str
    date_of_birth: dt.date
    postcode: str
    address: str = ""
    sex: str = ""
    flags: tuple[AccessFlag, ...] = field(default_factory=tuple)

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    def age_on(self, day: dt.date) -> int:
        """Whole years of age on ``day``; someone born on 29 February turns a year older on 1 March."""
        born = self.date_of_birth
        years = day.year - born.year
        if (day.month, day.day) < (born.month, born.day):
            years -= 1
        return years
