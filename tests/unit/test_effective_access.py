"""Effective access (rules 5 and 8), case by case: one row per situation, the level and services it gives."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import replace
from typing import Any

import pytest

from patient_online.domain.access import (
    FLAG_DECLINED,
    FLAG_ENHANCED_REVIEW,
    FLAG_REVIEW_NOT_INDICATED,
    AccessInputs,
    PracticeSwitch,
    Service,
    effective_access,
)
from patient_online.domain.patients import AccessFlag
from patient_online.domain.record import EARLIEST_PROSPECTIVE_START, RecordLevel

TODAY = dt.date(2026, 6, 1)
LINKED = dt.date(2025, 1, 10)
D = dt.date
N, S, DET, F, H = (
    RecordLevel.NONE,
    RecordLevel.SUMMARY,
    RecordLevel.DETAILED,
    RecordLevel.FULL,
    RecordLevel.HISTORIC,
)


def flag(code: str, day: dt.date) -> AccessFlag:
    return AccessFlag(code, day)


def declined(day: dt.date | None = None) -> AccessFlag:
    return flag(FLAG_DECLINED, day or D(2024, 2, 12))


def review(day: dt.date) -> AccessFlag:
    return flag(FLAG_ENHANCED_REVIEW, day)


def lifted(day: dt.date) -> AccessFlag:
    return flag(FLAG_REVIEW_NOT_INDICATED, day)


def inputs(**kw: Any) -> AccessInputs:
    switches = {s: PracticeSwitch(enabled=True) for s in Service}
    message = kw.pop("message", "")
    for service in kw.pop("off", ()):
        switches[service] = PracticeSwitch(enabled=False, message=message)
    base = AccessInputs(
        today=TODAY,
        practice_services=switches,
        practice_default_level=F,
        practice_access_start=EARLIEST_PROSPECTIVE_START,
        age=40,
        automatic_since=LINKED,
    )
    return replace(base, **kw)


# (case, inputs, expected record level, words expected in the explanation)
CASES = [
    ("adult, practice default full", inputs(), F, "Full record: practice default"),
    ("practice default detailed", inputs(practice_default_level=DET), DET, "practice default"),
    ("practice default summary", inputs(practice_default_level=S), S, "Summary record"),
    ("practice default none", inputs(practice_default_level=N), N, "No record access"),
    ("practice default never gives historic", inputs(practice_default_level=H), F, "practice default"),
    # Declined (103) stops record access whatever else is set.
    ("declined", inputs(flags=(declined(),)), N, "online access declined on 12 February 2024"),
    (
        "declined beats reception grant",
        inputs(flags=(declined(),), patient_level=H, patient_level_granted_on=TODAY),
        N,
        "declined",
    ),
    (
        "declined is not lifted by a later 106",
        inputs(flags=(declined(D(2024, 1, 1)), lifted(D(2025, 1, 1)))),
        N,
        "declined",
    ),
    ("declined with a review too", inputs(flags=(review(D(2025, 5, 2)), declined(D(2024, 1, 1)))), N, "declined"),
    # Enhanced review (104) blocks automatic access; 106 after it lifts it; order is by date, not by list order.
    (
        "104 before linking withholds full",
        inputs(flags=(review(D(2024, 6, 1)),)),
        DET,
        "enhanced review indicated on 1 June 2024",
    ),
    (
        "104 with no link yet withholds full",
        inputs(flags=(review(D(2025, 5, 2)),), automatic_since=None),
        DET,
        "2 May 2025",
    ),
    (
        "104 after access began never removes it",
        inputs(flags=(review(D(2025, 5, 2)),)),
        F,
        "Full record: practice default",
    ),
    ("104 on the day of linking withholds", inputs(flags=(review(LINKED),)), DET, "withheld"),
    ("104 then 106 lifts", inputs(flags=(review(D(2024, 1, 1)), lifted(D(2024, 2, 1)))), F, "practice default"),
    (
        "106 listed first, 104 later by date",
        inputs(flags=(lifted(D(2024, 1, 1)), review(D(2024, 2, 1)))),
        DET,
        "1 February 2024",
    ),
    (
        "104, 106, 104 again",
        inputs(flags=(review(D(2023, 1, 1)), lifted(D(2023, 6, 1)), review(D(2024, 1, 1)))),
        DET,
        "1 January 2024",
    ),
    (
        "104 and 106 on one day: review stays",
        inputs(flags=(lifted(D(2024, 3, 3)), review(D(2024, 3, 3)))),
        DET,
        "3 March 2024",
    ),
    (
        "104 does not touch a detailed default",
        inputs(practice_default_level=DET, flags=(review(D(2024, 1, 1)),)),
        DET,
        "practice default",
    ),
    (
        "104 counts from the practice's access start, not an earlier link",
        inputs(practice_access_start=D(2025, 3, 1), flags=(review(D(2025, 2, 1)),)),
        DET,
        "withheld",
    ),
    # Under 16: no automatic prospective access; reception may still grant.
    ("child gets detailed, not full", inputs(age=15), DET, "under 16"),
    ("16th birthday: full", inputs(age=16), F, "practice default"),
    (
        "child with a reception grant",
        inputs(age=13, patient_level=F, patient_level_granted_on=D(2025, 1, 1)),
        F,
        "set by the GP practice",
    ),
    # Reception's setting replaces the practice default.
    ("reception lowers to summary", inputs(patient_level=S), S, "Summary record: set by the GP practice"),
    ("reception sets none", inputs(patient_level=N), N, "No record access: set by the GP practice"),
    ("historic only by explicit grant", inputs(patient_level=H, patient_level_granted_on=D(2025, 1, 1)), H, "historic"),
    (
        "grant made before a 104 is kept",
        inputs(patient_level=F, patient_level_granted_on=D(2024, 1, 1), flags=(review(D(2024, 5, 1)),)),
        F,
        "set by",
    ),
    (
        "grant made while a 104 is in force is held back",
        inputs(patient_level=H, patient_level_granted_on=D(2025, 1, 1), flags=(review(D(2024, 5, 1)),)),
        DET,
        "withheld",
    ),
    (
        "grant while a 104 was lifted",
        inputs(
            patient_level=F,
            patient_level_granted_on=D(2025, 1, 1),
            flags=(review(D(2024, 5, 1)), lifted(D(2024, 6, 1))),
        ),
        F,
        "set by",
    ),
    # Remote vouching never unlocks the detailed or full record, whoever set the level.
    ("remote vouching caps the default", inputs(remote_vouching_only=True), S, "remote vouching"),
    (
        "remote vouching caps a grant",
        inputs(remote_vouching_only=True, patient_level=H, patient_level_granted_on=TODAY),
        S,
        "remote vouching",
    ),
    (
        "remote vouching leaves summary alone",
        inputs(remote_vouching_only=True, practice_default_level=S),
        S,
        "Summary record",
    ),
    # Practice switch off beats everything.
    ("practice record switch off", inputs(off=[Service.RECORD]), N, "switched off record access"),
    (
        "practice switch off beats a grant",
        inputs(off=[Service.RECORD], patient_level=H, patient_level_granted_on=TODAY),
        N,
        "switched off",
    ),
]


@pytest.mark.parametrize(("case", "given", "level", "words"), CASES, ids=[c[0] for c in CASES])
def test_record_level(case: str, given: AccessInputs, level: RecordLevel, words: str) -> None:
    access = effective_access(given)
    assert access.record_level == level, access.explanation
    assert words.lower() in " ".join(access.explanation).lower(), access.explanation
    assert access.allows(Service.RECORD) == (level > N)


def test_explanation_reads_as_in_the_issue() -> None:
    access = effective_access(inputs(flags=(review(D(2025, 5, 2)),), automatic_since=None))
    assert access.explanation[:2] == (
        "Detailed coded record: practice default",
        "Full record withheld: enhanced review indicated on 2 May 2025",
    )


# Services: practice switch x reception switch, for appointments and prescriptions.
@pytest.mark.parametrize(
    ("service", "practice_on", "patient_on"),
    list(itertools.product([Service.APPOINTMENTS, Service.PRESCRIPTIONS], [True, False], [True, False])),
)
def test_service_needs_practice_and_patient(service: Service, practice_on: bool, patient_on: bool) -> None:
    field = "patient_appointments" if service is Service.APPOINTMENTS else "patient_prescriptions"
    given = inputs(off=[] if practice_on else [service], message="Paused; call 01632 960 101", **{field: patient_on})
    access = effective_access(given)
    assert access.allows(service) is (practice_on and patient_on)
    text = " ".join(access.explanation)
    if not practice_on:
        assert access.messages[service] == "Paused; call 01632 960 101"
        assert "switched off for everyone" in text
    else:
        assert (service in access.messages) is (not patient_on)
        assert ("switched off for this patient" in text) is (not patient_on)


def test_other_services_unaffected_by_one_switch() -> None:
    access = effective_access(inputs(off=[Service.APPOINTMENTS]))
    assert not access.allows(Service.APPOINTMENTS)
    assert access.allows(Service.PRESCRIPTIONS) and access.allows(Service.RECORD) and access.allows(Service.PROXY)


def test_proxy_switch() -> None:
    assert not effective_access(inputs(off=[Service.PROXY])).allows(Service.PROXY)
    assert effective_access(inputs()).allows(Service.PROXY)


def test_missing_switch_counts_as_off() -> None:
    given = inputs()
    switches = dict(given.practice_services)
    del switches[Service.APPOINTMENTS]
    assert not effective_access(replace(given, practice_services=switches)).allows(Service.APPOINTMENTS)


def test_message_only_when_switched_off() -> None:
    switches = {s: PracticeSwitch(enabled=True, message="Kept for later") for s in Service}
    assert effective_access(inputs(practice_services=switches)).messages == {}


@pytest.mark.parametrize(
    ("start", "expected"),
    [(D(2020, 1, 1), EARLIEST_PROSPECTIVE_START), (D(2024, 4, 1), D(2024, 4, 1))],
)
def test_access_start_never_before_31_october_2023(start: dt.date, expected: dt.date) -> None:
    assert effective_access(inputs(practice_access_start=start)).access_start == expected


# Every combination of the three codes (each absent, earlier or later than linking): the invariants hold.
FLAG_OPTIONS = [None, D(2024, 1, 1), D(2025, 6, 1)]


@pytest.mark.parametrize(("d103", "d104", "d106"), list(itertools.product(FLAG_OPTIONS, FLAG_OPTIONS, FLAG_OPTIONS)))
def test_every_flag_combination(d103: dt.date | None, d104: dt.date | None, d106: dt.date | None) -> None:
    flags = tuple(
        flag(code, day)
        for code, day in ((FLAG_DECLINED, d103), (FLAG_ENHANCED_REVIEW, d104), (FLAG_REVIEW_NOT_INDICATED, d106))
        if day is not None
    )
    access = effective_access(inputs(flags=flags))
    review_in_force = d104 is not None and (d106 is None or d106 <= d104)  # a tie keeps the review
    if d103 is not None:
        expected = N
    elif review_in_force and d104 is not None and d104 > LINKED:
        expected = F  # recorded after automatic access began: never removes it
    elif review_in_force:
        expected = DET
    else:
        expected = F
    assert access.record_level == expected, (flags, access.explanation)
    # Appointments and prescriptions are never steered by the record codes.
    assert access.allows(Service.APPOINTMENTS) and access.allows(Service.PRESCRIPTIONS)


# Rule 8 as the design states it: an enhanced review blocks new or wider access, never access already granted.
FORBIDDEN = ("enhanced review", "safeguarding", "104", "withheld", "declined")


def noted_review(day: dt.date, level_then: RecordLevel) -> AccessFlag:
    """A 104 as the gateway stores it: with the level the patient had when the gateway learned of it."""
    return AccessFlag(FLAG_ENHANCED_REVIEW, day, level_then.value)


@pytest.mark.parametrize(
    ("case", "given", "level"),
    [
        ("full by default, 104 recorded the day access began", inputs(flags=(noted_review(LINKED, F),)), F),
        (
            "full set by reception, 104 recorded the same day",
            inputs(patient_level=F, patient_level_granted_on=TODAY, flags=(noted_review(TODAY, F),)),
            F,
        ),
        (
            "full set by reception before a 104 dated earlier than the grant was read",
            inputs(patient_level=F, patient_level_granted_on=D(2025, 3, 1), flags=(noted_review(D(2025, 1, 1), F),)),
            F,
        ),
        (
            "historic kept when it was in force",
            inputs(patient_level=H, patient_level_granted_on=TODAY, flags=(noted_review(TODAY, H),)),
            H,
        ),
        (
            "wider than the level in force is held back to it",
            inputs(patient_level=H, patient_level_granted_on=TODAY, flags=(noted_review(D(2025, 6, 1), F),)),
            F,
        ),
        (
            "detailed when the code came stays detailed though the default is now full",
            inputs(flags=(noted_review(LINKED, DET),)),
            DET,
        ),
        (
            "full granted after the code is new access: held back",
            inputs(patient_level=F, patient_level_granted_on=TODAY, flags=(noted_review(D(2025, 6, 1), DET),)),
            DET,
        ),
    ],
)
def test_rule_8_keeps_access_already_granted(case: str, given: AccessInputs, level: RecordLevel) -> None:
    assert effective_access(given).record_level is level, case


def test_rule_8_review_cap_refuses_only_new_or_wider_access() -> None:
    from patient_online.domain.access import review_cap

    flags = (noted_review(D(2025, 6, 1), F),)
    assert review_cap(flags, F, None) is None  # the level in force stays
    assert review_cap(flags, H, None) is F  # wider is refused
    assert review_cap((noted_review(D(2025, 6, 1), DET),), F, None) is DET  # new is refused
    assert review_cap((review(D(2025, 6, 1)),), F, D(2025, 5, 31)) is None  # granted before the code's date
    assert review_cap((review(D(2025, 6, 1)), lifted(D(2025, 7, 1))), H, None) is None  # lifted


PRACTICE = "Riverside Surgery"


@pytest.mark.parametrize(
    ("case", "given", "service", "words"),
    [
        (
            "practice switch off",
            inputs(off=[Service.RECORD]),
            Service.RECORD,
            f"{PRACTICE} does not offer GP record access online.",
        ),
        (
            "practice switch off, appointments",
            inputs(off=[Service.APPOINTMENTS]),
            Service.APPOINTMENTS,
            f"{PRACTICE} does not offer appointment booking online.",
        ),
        (
            "patient's record set to none",
            inputs(patient_level=N),
            Service.RECORD,
            f"Contact {PRACTICE} about online access to your GP record.",
        ),
        (
            "patient's appointments off",
            inputs(patient_appointments=False),
            Service.APPOINTMENTS,
            f"Contact {PRACTICE} about online access to your appointments.",
        ),
        (
            "patient's prescriptions off",
            inputs(patient_prescriptions=False),
            Service.PRESCRIPTIONS,
            f"Contact {PRACTICE} about online access to your repeat prescriptions.",
        ),
        (
            "access declined",
            inputs(flags=(declined(),)),
            Service.RECORD,
            f"Contact {PRACTICE} about online access to your GP record.",
        ),
        (
            "awaiting enhanced review",
            inputs(flags=(review(D(2024, 12, 1)),)),
            Service.RECORD,
            f"Contact {PRACTICE} about online access to your GP record.",
        ),
    ],
)
def test_patient_wording_is_true_and_names_no_code(
    case: str, given: AccessInputs, service: Service, words: str
) -> None:
    access = effective_access(replace(given, practice_name=PRACTICE))
    assert access.messages[service] == words, case
    patient_text = " ".join([*access.messages.values(), *access.in_plain_words()]).lower()
    assert "not available online at your gp practice" not in patient_text
    for word in FORBIDDEN:
        assert word not in patient_text, (case, word)
