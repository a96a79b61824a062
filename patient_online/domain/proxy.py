"""Proxy access: the bases a proxy link rests on, its states, and the age rules for children (rules 17, 18)."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from .access import ADULT_AGE

DEFAULT_REVIEW_AGE = 11
DEFAULT_NOTICE_DAYS = 30
RELATIONSHIP_MAX = 100
REASON_MAX = 500


class ProxyBasis(enum.StrEnum):
    """Why someone may act for a patient (rule 17)."""

    PARENTAL_RESPONSIBILITY = "parental_responsibility"
    CONSENT = "consent"
    LASTING_POWER_OF_ATTORNEY = "lasting_power_of_attorney"
    COURT_DEPUTYSHIP = "court_deputyship"
    BEST_INTERESTS = "best_interests"

    @property
    def label(self) -> str:
        return _BASIS_LABELS[self]

    @property
    def hint(self) -> str:
        return _BASIS_HINTS[self]

    @property
    def parental(self) -> bool:
        """Parental access to a child follows the age rules of rule 18."""
        return self is ProxyBasis.PARENTAL_RESPONSIBILITY

    @property
    def needs_patient_consent(self) -> bool:
        """The patient says yes inside the gateway before the link works."""
        return self is ProxyBasis.CONSENT


_BASIS_LABELS = {
    ProxyBasis.PARENTAL_RESPONSIBILITY: "Parental responsibility",
    ProxyBasis.CONSENT: "The patient's consent",
    ProxyBasis.LASTING_POWER_OF_ATTORNEY: "Lasting power of attorney (health and welfare)",
    ProxyBasis.COURT_DEPUTYSHIP: "Court-appointed deputy",
    ProxyBasis.BEST_INTERESTS: "In the patient's best interests",
}
_BASIS_HINTS = {
    ProxyBasis.PARENTAL_RESPONSIBILITY: "For a child under 16 you are a parent or guardian of",
    ProxyBasis.CONSENT: "The patient is 16 or over and agrees; we will ask them online",
    ProxyBasis.LASTING_POWER_OF_ATTORNEY: "You hold a registered lasting power of attorney for health and welfare",
    ProxyBasis.COURT_DEPUTYSHIP: "The Court of Protection has appointed you as their deputy",
    ProxyBasis.BEST_INTERESTS: "The patient cannot decide for themselves and a clinician agrees this is best",
}


class ProxyStatus(enum.StrEnum):
    REQUESTED = "requested"
    AWAITING_CONSENT = "awaiting_consent"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    ENDED = "ended"
    REJECTED = "rejected"

    @property
    def label(self) -> str:
        return _STATUS_LABELS[self]

    @property
    def open(self) -> bool:
        """A link that can still become, or is, active (and so can be ended)."""
        return self in (ProxyStatus.REQUESTED, ProxyStatus.AWAITING_CONSENT, ProxyStatus.ACTIVE, ProxyStatus.SUSPENDED)


_STATUS_LABELS = {
    ProxyStatus.REQUESTED: "Waiting for the practice",
    ProxyStatus.AWAITING_CONSENT: "Waiting for the patient's consent",
    ProxyStatus.ACTIVE: "Active",
    ProxyStatus.SUSPENDED: "Suspended",
    ProxyStatus.ENDED: "Ended",
    ProxyStatus.REJECTED: "Turned down",
}


# Age ------------------------------------------------------------------------------------------------------
def age_on(born: dt.date, day: dt.date) -> int:
    """Whole years of age on ``day``; someone born on 29 February turns a year older on 1 March."""
    years = day.year - born.year
    if (day.month, day.day) < (born.month, born.day):
        years -= 1
    return years


def birthday(born: dt.date, years: int) -> dt.date:
    """The day someone turns ``years`` old: 1 March in a year without 29 February for a leap-day birthday."""
    year = born.year + years
    try:
        return born.replace(year=year)
    except ValueError:  # 29 February in a common year
        return dt.date(year, 3, 1)


class Milestone(enum.StrEnum):
    REVIEW = "review"  # the practice's review age: parental access needs the child's say
    SIXTEEN = "sixteen"  # parental responsibility no longer gives access

    def explain(self, review_age: int) -> str:
        if self is Milestone.SIXTEEN:
            return f"At {ADULT_AGE} a young person manages their own GP services, so parental proxy access stops"
        return f"At {review_age} the practice checks whether the child understands and agrees to their parent's access"


@dataclass(frozen=True)
class LinkFacts:
    """What the age rules need to know about one proxy link."""

    basis: ProxyBasis
    status: ProxyStatus
    competence_assessed: bool = False
    child_consent: bool = False
    notices_sent: frozenset[str] = frozenset()

    @property
    def child_agreed(self) -> bool:
        """Reception recorded a competence assessment and the child's consent: no suspension at review age."""
        return self.competence_assessed and self.child_consent


@dataclass(frozen=True)
class Notice:
    """Advance notice of a milestone, sent once (``key`` is kept in the link's notices_sent)."""

    milestone: Milestone
    on: dt.date

    @property
    def key(self) -> str:
        return f"notice:{self.milestone.value}:{self.on.isoformat()}"


@dataclass(frozen=True)
class AgeDecision:
    """What the age rules ask for today: suspend the link (and why), and which notices to send now."""

    age: int
    suspend: Milestone | None = None
    suspend_on: dt.date | None = None
    notices: tuple[Notice, ...] = field(default_factory=tuple)

    @property
    def suspend_key(self) -> str:
        if self.suspend is None or self.suspend_on is None:
            return ""
        return f"suspended:{self.suspend.value}:{self.suspend_on.isoformat()}"

    @property
    def nothing(self) -> bool:
        return self.suspend is None and not self.notices


def check_review_age(review_age: int) -> None:
    """A review age must fall inside childhood: 1 to 16 (16 means: no earlier review)."""
    if not 1 <= review_age <= ADULT_AGE:
        raise ValueError(f"review age must be between 1 and {ADULT_AGE}")


def proxy_review_due(
    link: LinkFacts,
    born: dt.date,
    today: dt.date,
    review_age: int = DEFAULT_REVIEW_AGE,
    notice_days: int = DEFAULT_NOTICE_DAYS,
) -> AgeDecision:
    """Rule 18 for one link on ``today``.

    Parental access to a child is suspended at the review age unless reception recorded a competence
    assessment and the child's consent, and always at 16. Both sides hear ``notice_days`` before (or as soon
    as the link is checked inside that window); a notice already sent is not sent again.
    """
    check_review_age(review_age)
    age = age_on(born, today)
    if not link.basis.parental or link.status is not ProxyStatus.ACTIVE:
        return AgeDecision(age=age)
    if age >= ADULT_AGE:
        return AgeDecision(age=age, suspend=Milestone.SIXTEEN, suspend_on=birthday(born, ADULT_AGE))
    if age >= review_age and not link.child_agreed:
        return AgeDecision(age=age, suspend=Milestone.REVIEW, suspend_on=birthday(born, review_age))
    upcoming = [Notice(Milestone.SIXTEEN, birthday(born, ADULT_AGE))]
    if review_age < ADULT_AGE and age < review_age and not link.child_agreed:
        upcoming.insert(0, Notice(Milestone.REVIEW, birthday(born, review_age)))
    window_end = today + dt.timedelta(days=max(notice_days, 0))
    due = tuple(n for n in upcoming if today < n.on <= window_end and n.key not in link.notices_sent)
    return AgeDecision(age=age, notices=due)


def approval_problem(basis: ProxyBasis, age: int, review_age: int, child_agreed: bool) -> str:
    """Why parental access cannot start (or start again) for a child of ``age``, or "" when it can."""
    if not basis.parental:
        return ""
    if age >= ADULT_AGE:
        return (
            f"The patient is {age}. Parental responsibility does not give proxy access from {ADULT_AGE}: "
            "choose another basis, such as the patient's consent"
        )
    if age >= review_age and not child_agreed:
        return (
            f"The patient is {age}. From {review_age} record a competence assessment and the child's consent "
            "before parental access can start"
        )
    return ""
