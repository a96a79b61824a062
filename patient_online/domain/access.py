"""Effective access: what one patient may use online, computed in one place and explained."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from .patients import AccessFlag
from .record import EARLIEST_PROSPECTIVE_START, RecordLevel

FLAG_DECLINED = "1290331000000103"
FLAG_ENHANCED_REVIEW = "1364731000000104"
FLAG_REVIEW_NOT_INDICATED = "1364751000000106"

FLAG_LABELS = {
    FLAG_DECLINED: "Online access declined",
    FLAG_ENHANCED_REVIEW: "Enhanced review indicated",
    FLAG_REVIEW_NOT_INDICATED: "Enhanced review not indicated",
}

ADULT_AGE = 16


class Service(enum.StrEnum):
    APPOINTMENTS = "appointments"
    PRESCRIPTIONS = "prescriptions"
    RECORD = "record"
    PROXY = "proxy"

    @property
    def label(self) -> str:
        return {
            "appointments": "Online appointments",
            "prescriptions": "Repeat prescriptions",
            "record": "GP record access",
            "proxy": "Proxy access",
        }[self.value]

    @property
    def phrase(self) -> str:
        """The label as it reads inside a sentence ("Enter why GP record access ...")."""
        return self.label if self is Service.RECORD else self.label.lower()

    @property
    def contractual(self) -> bool:
        """Services the GP contract requires practices to offer online."""
        return self is not Service.PROXY

    @property
    def contract_duty(self) -> str:
        """What the GP contract asks of the practice, as one sentence for the manager's page ("" for proxy)."""
        return _DUTIES.get(self, "")


_DUTIES = {
    Service.APPOINTMENTS: "Practices must let patients book appointments online.",
    Service.PRESCRIPTIONS: "Practices must let patients order repeat prescriptions online.",
    Service.RECORD: "Practices must offer online access to at least the summary record.",
}


class VerificationMethod(enum.StrEnum):
    DOCUMENTS = "documents"
    VOUCHING = "vouching"
    VOUCHING_WITH_CONFIRMATION = "vouching_with_confirmation"
    NHS_LOGIN = "nhs_login"
    LINKAGE_LETTER = "linkage_letter"

    @property
    def label(self) -> str:
        return {
            "documents": "Identity documents",
            "vouching": "Vouching by practice staff",
            "vouching_with_confirmation": "Vouching with questions about the record",
            "nhs_login": "NHS login (photo ID checked)",
            "linkage_letter": "Linkage letter",
        }[self.value]


@dataclass(frozen=True)
class PracticeSwitch:
    enabled: bool
    message: str = ""


@dataclass(frozen=True)
class AccessInputs:
    """Everything effective access depends on."""

    today: dt.date
    practice_services: dict[Service, PracticeSwitch]
    practice_default_level: RecordLevel
    practice_access_start: dt.date
    age: int
    flags: tuple[AccessFlag, ...] = ()
    patient_level: RecordLevel | None = None  # granted by reception; None = practice default
    patient_level_granted_on: dt.date | None = None
    patient_appointments: bool = True
    patient_prescriptions: bool = True
    remote_vouching_only: bool = False
    automatic_since: dt.date | None = None  # when the practice default first applied to this patient
    practice_name: str = "your GP practice"  # for the patient's wording when a service is off
    # Set while reception checks the patient's details after the practice changed clinical system: every
    # service waits, with these words instead of an error (see domain.system_migration).
    held_message: str = ""


@dataclass(frozen=True)
class EffectiveAccess:
    services: dict[Service, bool]
    record_level: RecordLevel
    access_start: dt.date
    explanation: tuple[str, ...] = field(default_factory=tuple)
    messages: dict[Service, str] = field(default_factory=dict)

    def allows(self, service: Service) -> bool:
        if service is Service.RECORD:
            return self.services.get(Service.RECORD, False) and self.record_level > RecordLevel.NONE
        return self.services.get(service, False)

    def in_plain_words(self, acting_for: str | None = None) -> tuple[str, ...]:
        """What the patient (or a proxy, ``acting_for`` naming the person) can do online, for their own pages.

        ``explanation`` is for practice staff: it names levels as the contract does and gives the reasons,
        some of which (an enhanced review) are not the patient's to read on a home page."""
        whose = f"{acting_for}'s" if acting_for else "your"
        lines = [f"You are acting for {acting_for}."] if acting_for else []
        lines.append(
            f"You can book, check and cancel {whose} appointments online."
            if self.allows(Service.APPOINTMENTS)
            else f"You cannot manage {whose} appointments online."
        )
        lines.append(
            f"You can order {whose} repeat prescriptions online."
            if self.allows(Service.PRESCRIPTIONS)
            else f"You cannot order {whose} repeat prescriptions online."
        )
        lines.append(
            _record_words(
                self.record_level if self.allows(Service.RECORD) else RecordLevel.NONE, whose, self.access_start
            )
        )
        return tuple(lines)


def _record_words(level: RecordLevel, whose: str, start: dt.date) -> str:
    """What of the GP record can be seen, in words a patient would use."""
    if level is RecordLevel.NONE:
        return f"You cannot see {whose} GP record online."
    if level is RecordLevel.FULL:
        return (
            f"You can see {whose} full record: notes and documents from {_date(start)}, and all the allergies, "
            "medicines, health problems, vaccinations, test results and consultations."
        )
    if level is RecordLevel.HISTORIC:
        return f"You can see {whose} whole GP record, including notes and documents from before online access began."
    return f"You can see {whose} {level.plain_label.lower()}: {level.includes}."


def _flag_in_force(flags: tuple[AccessFlag, ...]) -> tuple[AccessFlag | None, AccessFlag | None]:
    """The declined flag, and the enhanced-review flag unless a later 'not indicated' lifted it.

    A 'not indicated' code lifts only an earlier 'review indicated'; it never lifts a decline. When both review
    codes share a date the review stays in force: withholding is the safe reading until someone looks.
    """
    declined = max((f for f in flags if f.code == FLAG_DECLINED), key=lambda f: f.recorded_on, default=None)
    reviews = sorted(
        (f for f in flags if f.code in (FLAG_ENHANCED_REVIEW, FLAG_REVIEW_NOT_INDICATED)),
        key=lambda f: (f.recorded_on, f.code == FLAG_ENHANCED_REVIEW),
    )
    latest = reviews[-1] if reviews else None
    review = latest if latest is not None and latest.code == FLAG_ENHANCED_REVIEW else None
    return declined, review


def _date(day: dt.date) -> str:
    return f"{day.day} {day:%B %Y}"


def _granted_before(review: AccessFlag, granted_on: dt.date | None) -> bool:
    """Rule 8: an enhanced-review code never removes access that was in place before it was recorded."""
    return granted_on is not None and granted_on < review.recorded_on


def review_cap(flags: tuple[AccessFlag, ...], level: RecordLevel, granted_on: dt.date | None) -> RecordLevel | None:
    """Rule 8: the level an enhanced review in force holds ``level`` back to, or None when it stands.

    The review blocks new or wider access to the full record and beyond; it never removes what the patient
    already had: a level granted before the code's date, or no wider than the level in force when the gateway
    learned of the code (``level_then``, which covers a code recorded on the day access was given).
    """
    _declined, review = _flag_in_force(flags)
    if review is None or level < RecordLevel.FULL or _granted_before(review, granted_on):
        return None
    kept = RecordLevel(review.level_then) if review.level_then in set(RecordLevel) else RecordLevel.NONE
    if level <= kept:
        return None
    return kept if kept >= RecordLevel.FULL else RecordLevel.DETAILED


def review_in_force(flags: tuple[AccessFlag, ...]) -> bool:
    """Whether an enhanced-review code is in force: recorded and not lifted by a later 'not indicated'."""
    return _flag_in_force(flags)[1] is not None


def codes_in_force(flags: tuple[AccessFlag, ...]) -> frozenset[str]:
    """The rule 8 codes that steer access today (for counts): a decline, and a review not lifted since."""
    declined, review = _flag_in_force(flags)
    return frozenset(f.code for f in (declined, review) if f is not None)


def effective_access(inputs: AccessInputs) -> EffectiveAccess:
    """Rules 5 and 8: the services and record level one patient has, and why, in plain words.

    The explanation is written so that both the patient and practice staff can read it.
    """
    sw = {service: inputs.practice_services.get(service, PracticeSwitch(enabled=False)) for service in Service}
    services = {
        Service.APPOINTMENTS: sw[Service.APPOINTMENTS].enabled and inputs.patient_appointments,
        Service.PRESCRIPTIONS: sw[Service.PRESCRIPTIONS].enabled and inputs.patient_prescriptions,
        Service.RECORD: sw[Service.RECORD].enabled,
        Service.PROXY: sw[Service.PROXY].enabled,
    }
    messages = {s: p.message or _not_offered(s, inputs.practice_name) for s, p in sw.items() if not p.enabled}
    start = max(inputs.practice_access_start, EARLIEST_PROSPECTIVE_START)
    why: list[str] = []
    held_for_review = False
    declined, review = _flag_in_force(inputs.flags)
    withheld_for_review = (
        f"Full record withheld: enhanced review indicated on {_date(review.recorded_on)}" if review else ""
    )

    if not sw[Service.RECORD].enabled:
        level = RecordLevel.NONE
        why.append("No record access: the GP practice has switched off record access online")
    elif declined is not None:
        level = RecordLevel.NONE
        why.append(f"No record access: online access declined on {_date(declined.recorded_on)}")
    elif inputs.patient_level is not None:
        level = inputs.patient_level
        cap = review_cap(inputs.flags, level, inputs.patient_level_granted_on)
        level, held_for_review = cap or level, cap is not None
        why.append(f"{level.label}: set by the GP practice")
        if cap is not None:
            why.append(withheld_for_review)
    else:
        # Historic entries are only ever opened on request, never by default.
        level = min(inputs.practice_default_level, RecordLevel.FULL, key=lambda lv: lv.rank)
        source = "practice default"
        cap = review_cap(inputs.flags, level, _automatic_from(inputs))
        if level >= RecordLevel.FULL and inputs.age < ADULT_AGE:
            level = RecordLevel.DETAILED
            why.append(f"{level.label}: {source}")
            why.append("Full record withheld: patients under 16 do not get it automatically")
        elif cap is not None:
            level, held_for_review = cap, True
            why.append(f"{level.label}: {source}")
            why.append(withheld_for_review)
        else:
            why.append(f"{level.label}: {source}")
    if sw[Service.RECORD].enabled and (level is RecordLevel.NONE or held_for_review):
        # The same neutral words whatever the reason, so the page never tells the patient (or anyone reading
        # over their shoulder) that a decline or a review is on their record.
        messages[Service.RECORD] = _contact_about(Service.RECORD, inputs.practice_name)

    if level > RecordLevel.SUMMARY and inputs.remote_vouching_only:
        level = RecordLevel.SUMMARY
        why.append("Detailed and full record withheld: identity checked by remote vouching only")

    for service in (Service.APPOINTMENTS, Service.PRESCRIPTIONS):
        if not sw[service].enabled:
            why.append(f"{service.label}: switched off for everyone by the GP practice")
        elif not services[service]:
            why.append(f"{service.label}: switched off for this patient by the GP practice")
            messages[service] = _contact_about(service, inputs.practice_name)
    if not sw[Service.PROXY].enabled:
        why.append(f"{Service.PROXY.label}: switched off for everyone by the GP practice")

    if inputs.held_message:
        services = dict.fromkeys(services, False)
        messages = dict.fromkeys(Service, inputs.held_message)
        why.append("Everything waits: reception is checking the patient's details after the system change")
    return EffectiveAccess(
        services=services, record_level=level, access_start=start, explanation=tuple(why), messages=messages
    )


_OFFERED = {
    Service.APPOINTMENTS: "appointment booking",
    Service.PRESCRIPTIONS: "repeat prescriptions",
    Service.RECORD: "GP record access",
    Service.PROXY: "proxy access",
}
_ACCESS_TO = {
    Service.APPOINTMENTS: "your appointments",
    Service.PRESCRIPTIONS: "your repeat prescriptions",
    Service.RECORD: "your GP record",
    Service.PROXY: "proxy access",
}


def _not_offered(service: Service, practice_name: str) -> str:
    """The patient's words when the practice has switched a service off for everyone (and left no message)."""
    return f"{_capital(practice_name)} does not offer {_OFFERED[service]} online."


def _contact_about(service: Service, practice_name: str) -> str:
    """The patient's words when the service is off for them alone: true for every reason, naming none."""
    return f"Contact {practice_name} about online access to {_ACCESS_TO[service]}."


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _automatic_from(inputs: AccessInputs) -> dt.date | None:
    """When the practice default first reached this patient: linked, and the practice's access start passed."""
    if inputs.automatic_since is None:
        return None
    return max(inputs.automatic_since, inputs.practice_access_start)
