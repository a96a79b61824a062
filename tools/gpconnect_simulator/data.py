"""Seed data for the GP Connect simulator: test patients (999 range NHS numbers), clinicians and records.

Plain Python tuples and dataclasses; ``resources.py`` turns them into FHIR.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from patient_online.domain.nhs_number import check_digit

PROVIDER_ASID = "918999198993"
PROVIDER_ODS = "A20047"
PRACTICE_NAME = "Riverside Surgery (simulated)"


def test_nhs_number(first_nine: str) -> str:
    """The first valid NHS number at or after ``first_nine`` (nine digits), check digit appended."""
    number = int(first_nine)
    while True:
        digits = f"{number:09d}"
        digit = check_digit(digits)
        if digit is not None:
            return digits + str(digit)
        number += 1


ALICE = test_nhs_number("999000001")
BOB = test_nhs_number("999000002")
CAROL_CONFIDENTIAL = test_nhs_number("999000003")
DAN_NO_CONSENT = test_nhs_number("999000004")
NOT_FOUND = test_nhs_number("999000099")


@dataclass(frozen=True)
class Clinician:
    id: str
    prefix: str
    given: str
    family: str
    role_code: str
    role_display: str


@dataclass(frozen=True)
class Schedule:
    id: str
    clinician: Clinician
    category: str  # Schedule.serviceCategory text
    service_type: str  # Slot.serviceType text
    first: dt.time
    count: int
    minutes: int
    channels: tuple[str, ...]


@dataclass(frozen=True)
class Entry:
    """One record entry: kind is allergy, medication, problem, immunisation, result or consultation."""

    id: str
    kind: str
    term: str
    code: str
    date: dt.date
    status: str = ""
    text: str = ""
    value: float | None = None
    unit: str = ""
    low: float | None = None
    high: float | None = None
    interpretation: str = ""
    confidential: bool = False
    not_given: bool = False  # an immunisation offered and not given; ``text`` says why


@dataclass(frozen=True)
class Medicine:
    """One line of the repeat template (a MedicationRequest with intent plan)."""

    id: str
    name: str
    code: str
    dosage: str
    quantity: float
    unit: str
    course: str  # acute | continuous | continuous-repeat-dispensing
    issues_allowed: int = 6
    issues_used: int = 1
    expires: dt.date | None = None


@dataclass(frozen=True)
class Patient:
    id: str
    nhs_number: str
    given: str
    family: str
    prefix: str
    birth_date: dt.date
    gender: str
    lines: tuple[str, ...]
    postcode: str
    consent: bool = True
    flags: tuple[tuple[str, dt.date], ...] = ()
    record: tuple[Entry, ...] = ()
    warnings: dict[str, tuple[str, ...]] = field(default_factory=dict)  # section kind -> ListWarningCodes
    medicines: tuple[Medicine, ...] = ()


KHAN = Clinician("1", "Dr", "Amira", "Khan", "R0260", "General Medical Practitioner")
JONES = Clinician("2", "Dr", "Tom", "Jones", "R0260", "General Medical Practitioner")
PRICE = Clinician("3", "", "Sally", "Price", "R0690", "Practice Nurse")

SCHEDULES = (
    Schedule(
        "1",
        KHAN,
        "General GP Appointments",
        "General GP Appointment",
        dt.time(9, 0),
        8,
        15,
        ("In-person", "In-person", "Telephone", "Video"),
    ),
    Schedule(
        "2",
        JONES,
        "General GP Appointments",
        "General GP Appointment",
        dt.time(14, 0),
        8,
        15,
        ("Telephone", "In-person", "Video", "In-person"),
    ),
    Schedule(
        "3",
        PRICE,
        "Nurse Appointments",
        "Nurse Appointment",
        dt.time(9, 30),
        6,
        20,
        ("In-person", "In-person", "Telephone"),
    ),
)
LOCATION_ID = "1"
ORGANIZATION_ID = "1"

_ALICE_RECORD = (
    Entry(
        "al-1",
        "allergy",
        "Penicillin allergy",
        "91936005",
        dt.date(2015, 3, 2),
        "active",
        "Rash",
    ),
    Entry("al-2", "allergy", "Peanut allergy", "91935009", dt.date(2001, 6, 14), "resolved", "Swelling of lips"),
    Entry("ms-1", "medication", "Amlodipine 5mg tablets", "319283006", dt.date(2019, 1, 10), "active", "One daily"),
    Entry(
        "ms-2",
        "medication",
        "Amoxicillin 500mg capsules",
        "323510009",
        dt.date(2023, 2, 1),
        "completed",
        "One three times a day for 7 days",
    ),
    Entry("pr-1", "problem", "Essential hypertension", "59621000", dt.date(2018, 6, 1), "active"),
    Entry("pr-2", "problem", "Asthma", "195967001", dt.date(2005, 9, 20), "inactive"),
    Entry("im-1", "immunisation", "Influenza vaccine", "955701000000107", dt.date(2024, 10, 5), "completed"),
    Entry("im-2", "immunisation", "COVID-19 vaccine", "1324681000000101", dt.date(2024, 4, 1), "completed"),
    Entry(
        "im-3",
        "immunisation",
        "Shingles vaccine",
        "722215002",
        dt.date(2025, 3, 12),
        "completed",
        "Patient declined",
        not_given=True,
    ),
    Entry(
        "tr-1",
        "result",
        "Serum cholesterol",
        "1005671000000105",
        dt.date(2025, 1, 14),
        "final",
        value=5.8,
        unit="mmol/L",
        low=0,
        high=5,
        interpretation="H",
    ),
    Entry(
        "tr-2",
        "result",
        "Haemoglobin A1c level",
        "999791000000106",
        dt.date(2025, 1, 14),
        "final",
        value=39,
        unit="mmol/mol",
        low=20,
        high=42,
    ),
    Entry(
        "tr-3",
        "result",
        "Serum TSH level",
        "1022791000000101",
        dt.date(2025, 2, 2),
        "preliminary",
        value=2.1,
        unit="mU/L",
        low=0.3,
        high=4.2,
    ),
    Entry(
        "co-1",
        "consultation",
        "GP surgery consultation",
        "",
        dt.date(2025, 1, 20),
        "finished",
        "Blood pressure reviewed. Continue amlodipine and recheck in 3 months.",
    ),
)
_CAROL_RECORD = (
    Entry("c-al-1", "allergy", "Latex allergy", "300916003", dt.date(2010, 5, 1), "active", "Hives"),
    Entry("c-pr-1", "problem", "Depressive disorder", "35489007", dt.date(2020, 2, 3), "active", confidential=True),
    Entry("c-pr-2", "problem", "Type 2 diabetes mellitus", "44054006", dt.date(2016, 7, 9), "active"),
    Entry(
        "c-ms-1", "medication", "Metformin 500mg tablets", "325278007", dt.date(2016, 7, 9), "active", "One twice daily"
    ),
    Entry(
        "c-tr-1",
        "result",
        "Serum creatinine",
        "1000731000000107",
        dt.date(2025, 3, 3),
        "final",
        value=120,
        unit="umol/L",
        low=60,
        high=110,
    ),
)

_ALICE_MEDICINES = (
    Medicine("p1-rx-1", "Amlodipine 5mg tablets", "319283006", "One tablet daily", 28, "tablet", "continuous", 12, 3),
    Medicine("p1-rx-2", "Simvastatin 40mg tablets", "320000009", "One tablet at night", 28, "tablet", "continuous"),
    Medicine(
        "p1-rx-3",
        "Salbutamol 100micrograms/dose inhaler",
        "320151008",
        "Two puffs when required",
        1,
        "inhaler",
        "continuous-repeat-dispensing",
    ),
    Medicine(
        "p1-rx-4", "Amoxicillin 500mg capsules", "323510009", "One three times a day", 21, "capsule", "acute", 1, 1
    ),
)

PATIENTS = (
    Patient(
        "1",
        ALICE,
        "Alice",
        "Example",
        "Mrs",
        dt.date(1980, 4, 12),
        "female",
        ("1 River Street", "Leeds"),
        "LS1 4AP",
        record=_ALICE_RECORD,
        medicines=_ALICE_MEDICINES,
    ),
    Patient(
        "2",
        BOB,
        "Robert",
        "Sample",
        "Mr",
        dt.date(1975, 9, 30),
        "male",
        ("2 Mill Lane", "Leeds"),
        "LS2 7EA",
        flags=(("1364731000000104", dt.date(2024, 1, 10)),),
        record=(Entry("b-al-1", "allergy", "Aspirin allergy", "293586001", dt.date(2012, 1, 1), "active"),),
        medicines=(
            Medicine("p2-rx-1", "Lisinopril 10mg tablets", "318873000", "One daily", 28, "tablet", "continuous"),
        ),
    ),
    Patient(
        "3",
        CAROL_CONFIDENTIAL,
        "Carol",
        "Private",
        "Ms",
        dt.date(1968, 12, 1),
        "female",
        ("3 Hill Road", "Leeds"),
        "LS6 2QT",
        record=_CAROL_RECORD,
        warnings={
            "problem": ("confidential-items",),
            "result": ("data-awaiting-filing",),
            "medication": ("data-in-transit",),
        },
        medicines=(
            Medicine("p3-rx-1", "Metformin 500mg tablets", "325278007", "One twice daily", 56, "tablet", "continuous"),
        ),
    ),
    Patient(
        "4",
        DAN_NO_CONSENT,
        "Daniel",
        "Dissent",
        "Mr",
        dt.date(1990, 7, 7),
        "male",
        ("4 Canal Wharf", "Leeds"),
        "LS11 5PS",
        consent=False,
    ),
)
