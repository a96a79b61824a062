"""Seed the demo: two practices, their clinical systems' data, and sign-in accounts for every audience.

Repeatable: every row has a natural or derived key and is only added when missing, so running the seed
again (on any day) tops the data up and leaves one consistent set.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patient_online.crypto import encrypt, hash_password
from patient_online.domain.access import FLAG_DECLINED, FLAG_ENHANCED_REVIEW, FLAG_REVIEW_NOT_INDICATED, Service
from patient_online.domain.nhs_number import check_digit
from patient_online.domain.record import range_flag
from patient_online.models import (
    AccountLink,
    Patient,
    Pharmacy,
    Practice,
    ProxyLink,
    ServiceSwitch,
    StaffMembership,
    User,
    Verification,
)
from patient_online.models.base import utcnow

from .models import (
    DemoAppointment,
    DemoClinician,
    DemoMedication,
    DemoPatient,
    DemoRecordEntry,
    DemoRepeatRequest,
    DemoSlot,
)

LONDON = ZoneInfo("Europe/London")
DEMO_PASSWORD = "Demo-gateway-2026!"
WEEKS_AHEAD = 6
FUTURE_DEMO_SHARE = 0.05  # of future booked slots, held by demo patients (within the practice's maximum)
POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
ONLINE_TYPES = ["GP appointment", "Nurse appointment", "Blood test", "Medication review"]


@dataclass(frozen=True)
class DemoPractice:
    ods: str
    name: str
    address: str
    postcode: str
    phone: str
    nhs_start: int  # first eight digits after 999 are built from this


PRACTICES = (
    DemoPractice("Y02001", "Riverside Medical Centre", "12 Mill Lane, Kingsbridge", "KB1 4RT", "01632 960 101", 1000),
    DemoPractice("Y02002", "Hillview Surgery", "3 Station Road, Ashcombe", "AS2 7HL", "01632 960 202", 5000),
)

PHARMACIES = (
    ("FA101", "Kingsbridge Pharmacy", "4 High Street, Kingsbridge", "KB1 2AA", "01632 960 301"),
    ("FA102", "Mill Lane Chemist", "20 Mill Lane, Kingsbridge", "KB1 4RU", "01632 960 302"),
    ("FA103", "Riverside Late Night Pharmacy", "Unit 2 Riverside Retail Park, Kingsbridge", "KB3 9PQ", "01632 960 303"),
    ("FA104", "Ashcombe Pharmacy", "1 Market Place, Ashcombe", "AS2 1BB", "01632 960 304"),
    ("FA105", "Station Road Pharmacy", "45 Station Road, Ashcombe", "AS2 7HN", "01632 960 305"),
    ("FA106", "Hillview Healthcare Pharmacy", "8 Hill Rise, Ashcombe", "AS3 4DF", "01632 960 306"),
    ("FA107", "Greenway Pharmacy", "110 Greenway Road, Kingsbridge", "KB2 6LM", "01632 960 307"),
    ("FA108", "Online Pharmacy Direct (distance selling)", "PO Box 99, Kingsbridge", "KB9 9ZZ", "0300 100 0101"),
)

# Where the practices and pharmacies are (latitude, longitude), for "pharmacies near your GP practice". The
# distance-selling pharmacy has no premises to visit, so no location: it is listed after those with one.
COORDINATES: dict[str, tuple[float, float]] = {
    "Y02001": (50.2840, -3.7770),
    "Y02002": (50.6050, -3.5480),
    "FA101": (50.2832, -3.7765),
    "FA102": (50.2846, -3.7790),
    "FA103": (50.2905, -3.7850),
    "FA104": (50.6062, -3.5466),
    "FA105": (50.6046, -3.5492),
    "FA106": (50.6101, -3.5402),
    "FA107": (50.2780, -3.7688),
}

GIVEN_F = [
    "Amelia",
    "Olivia",
    "Isla",
    "Ava",
    "Mia",
    "Grace",
    "Freya",
    "Aisha",
    "Priya",
    "Zara",
    "Margaret",
    "Susan",
    "Helen",
    "Joan",
    "Fatima",
    "Chloe",
    "Ruth",
    "Megan",
    "Nia",
    "Elif",
]
GIVEN_M = [
    "Oliver",
    "George",
    "Arthur",
    "Noah",
    "Leo",
    "Harry",
    "Mohammed",
    "Jack",
    "Arjun",
    "Kwame",
    "David",
    "Peter",
    "John",
    "Brian",
    "Tomasz",
    "Ryan",
    "Callum",
    "Dylan",
    "Ibrahim",
    "Samuel",
]
FAMILY = [
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Patel",
    "Khan",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "Hughes",
    "Okafor",
    "Nowak",
    "Begum",
    "Campbell",
    "Ahmed",
    "Clarke",
]
STREETS = ["Church Street", "Park Road", "Victoria Road", "Green Lane", "Manor Road", "Queens Road", "The Crescent"]

CLINICIANS = (
    ("GP1", "Dr Sarah Mitchell", "GP"),
    ("GP2", "Dr Rajesh Iyer", "GP"),
    ("GP3", "Dr Emma Clarke", "GP"),
    ("NU1", "Nurse Janet Hughes", "Practice nurse"),
    ("NU2", "Nurse Daniel Osei", "Practice nurse"),
    ("HC1", "Linda Price", "Healthcare assistant"),
    ("PH1", "Tom Becker", "Clinical pharmacist"),
)

# (clinician suffix, slot type, minutes per slot, sessions [(start, end)], delivery modes cycled)
SESSIONS = (
    ("GP1", "GP appointment", 10, [("08:30", "11:30"), ("14:00", "17:00")], ["face_to_face", "telephone"]),
    ("GP2", "GP appointment", 10, [("08:30", "11:30")], ["face_to_face", "face_to_face", "video"]),
    ("GP2", "Urgent on the day", 10, [("14:00", "16:00")], ["telephone"]),
    ("GP3", "GP appointment", 15, [("09:00", "12:00"), ("15:00", "18:00")], ["telephone", "face_to_face"]),
    ("NU1", "Nurse appointment", 15, [("08:30", "12:30")], ["face_to_face"]),
    ("NU2", "Nurse appointment", 15, [("13:30", "17:30")], ["face_to_face"]),
    ("NU2", "Baby clinic", 20, [("09:30", "11:30")], ["face_to_face"]),
    ("HC1", "Blood test", 10, [("08:00", "11:00")], ["face_to_face"]),
    ("PH1", "Medication review", 20, [("10:00", "13:00")], ["telephone", "video"]),
)

# name, code (dm+d-like), dosage, quantity, type, controlled
MEDICINES = (
    ("Amlodipine 5mg tablets", "319283006", "One tablet a day", "28 tablets", "repeat", False),
    ("Atorvastatin 20mg tablets", "320029008", "One tablet at night", "28 tablets", "repeat", False),
    ("Metformin 500mg tablets", "325278007", "One tablet twice a day with food", "56 tablets", "repeat", False),
    ("Ramipril 5mg capsules", "318901003", "One capsule a day", "28 capsules", "repeat", False),
    ("Salbutamol 100micrograms/dose inhaler", "320176004", "Two puffs when needed", "1 inhaler", "repeat", False),
    (
        "Levothyroxine 50microgram tablets",
        "315257007",
        "One tablet each morning",
        "28 tablets",
        "repeat_dispensing",
        False,
    ),
    ("Sertraline 50mg tablets", "321968008", "One tablet a day", "28 tablets", "repeat", False),
    ("Omeprazole 20mg gastro-resistant capsules", "317331008", "One capsule a day", "28 capsules", "repeat", False),
    (
        "Morphine sulfate 10mg modified-release tablets",
        "322452000",
        "One tablet twice a day",
        "56 tablets",
        "repeat",
        True,
    ),
    (
        "Amoxicillin 500mg capsules",
        "323509004",
        "One capsule three times a day for 5 days",
        "15 capsules",
        "acute",
        False,
    ),
    ("Prednisolone 5mg tablets", "325427002", "Six tablets once a day for 5 days", "30 tablets", "acute", False),
)

# name, dosage: a medicine every adult once took and has stopped (no code: the demo does not make one up)
STOPPED_MEDICINE = ("Naproxen 500mg tablets", "One tablet twice a day with food")

ALLERGIES = (
    ("Penicillin allergy", "91936005", "Rash", "Moderate"),
    ("Allergy to peanuts", "91935009", "Swelling of lips", "Severe"),
    ("Codeine adverse reaction", "292036006", "Nausea and vomiting", "Mild"),
)
PROBLEMS = (
    ("Essential hypertension", "59621000"),
    ("Type 2 diabetes mellitus", "44054006"),
    ("Asthma", "195967001"),
    ("Hypothyroidism", "40930008"),
    ("Depressive episode", "35489007"),
    ("Osteoarthritis of knee", "239873007"),
)
IMMUNISATIONS = (
    ("Influenza vaccination", "86198006"),
    ("COVID-19 vaccination", "1324681000000101"),
    ("Pneumococcal vaccination", "12866006"),
    ("Tetanus, diphtheria and polio booster", "414619005"),
    ("MMR vaccination", "38598009"),
)
TESTS = (
    ("Haemoglobin A1c level", "1019431000000105", "mmol/mol", 20, 60, "20 - 41"),
    ("Serum cholesterol", "1005671000000105", "mmol/L", 3, 7, "0 - 5"),
    ("Serum TSH level", "1022791000000101", "mU/L", 0.2, 6, "0.35 - 5.5"),
    ("Haemoglobin concentration", "1022431000000105", "g/L", 100, 170, "115 - 165"),
    ("eGFR", "1011481000000105", "mL/min/1.73m2", 40, 100, "> 60"),
)


def _nhs_numbers(start: int, count: int) -> list[str]:
    numbers: list[str] = []
    n = start
    while len(numbers) < count:
        nine = f"999{n:06d}"
        digit = check_digit(nine)
        if digit is not None:
            numbers.append(nine + str(digit))
        n += 1
    return numbers


def _totp_secret(email: str) -> str:
    """A stable secret per demo account, so reseeding never breaks an authenticator already set up."""
    return base64.b32encode(hashlib.sha256(("demo-totp:" + email).encode()).digest()[:20]).decode()


def _local(day: dt.date, hhmm: str) -> dt.datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=LONDON).astimezone(dt.UTC)


def seed(session: Session, today: dt.date | None = None) -> list[dict[str, Any]]:
    """Seed or top up everything; returns the demo sign-in accounts."""
    today = today or dt.datetime.now(LONDON).date()
    for ods, name, address, postcode, phone in PHARMACIES:
        pharmacy = session.get(Pharmacy, ods)
        if pharmacy is None:
            pharmacy = Pharmacy(ods_code=ods, name=name, address=address, postcode=postcode, phone=phone)
            session.add(pharmacy)
        if pharmacy.latitude is None and ods in COORDINATES:
            pharmacy.latitude, pharmacy.longitude = COORDINATES[ods]
    accounts: list[dict[str, Any]] = []
    for spec in PRACTICES:
        practice = _practice(session, spec)
        patients = _patients(session, spec, today)
        _clinicians(session, spec)
        session.flush()
        _slots(session, spec, patients, today, practice.max_future_appointments)
        for p in patients:
            _clinical_data(session, p, today)
        session.flush()
        accounts += _accounts(session, practice, spec, patients, today)
    accounts.append(_admin(session))
    session.commit()
    return accounts


def _practice(session: Session, spec: DemoPractice) -> Practice:
    practice = session.scalar(select(Practice).where(Practice.ods_code == spec.ods))
    if practice is None:
        practice = Practice(
            ods_code=spec.ods,
            name=spec.name,
            address=spec.address,
            postcode=spec.postcode,
            phone=spec.phone,
            email=f"{spec.ods.lower()}.practice@example.com",
            adapter_name="demo",
            adapter_options={},
            online_slot_types=list(ONLINE_TYPES),
            never_online=["morphine", "diazepam", "pregabalin"],
            waitlist_enabled=True,
        )
        session.add(practice)
        session.flush()
    if practice.latitude is None and spec.ods in COORDINATES:
        practice.latitude, practice.longitude = COORDINATES[spec.ods]
    have = {s.service for s in practice.switches}
    for service in Service:
        if service.value not in have:
            practice.switches.append(ServiceSwitch(service=service.value, enabled=True))
    return practice


def _patients(session: Session, spec: DemoPractice, today: dt.date) -> list[DemoPatient]:
    rng = random.Random(spec.ods)
    numbers = _nhs_numbers(spec.nhs_start, 64)
    rows: list[DemoPatient] = []
    existing = {p.id: p for p in session.scalars(select(DemoPatient).where(DemoPatient.practice_ods == spec.ods))}
    for i, nhs in enumerate(numbers):
        pid = f"{spec.ods}-P{i + 1:03d}"
        female = rng.random() < 0.52
        given = rng.choice(GIVEN_F if female else GIVEN_M)
        family = rng.choice(FAMILY)
        age = _age_for(i, rng)
        born = dt.date(2026 - age, rng.randint(1, 12), rng.randint(1, 28))
        if i == 7:  # a leap-day birthday, for the proxy age rules
            born = dt.date(2016, 2, 29)
        flags: list[dict[str, str]] = []
        if i == 9:
            flags = [{"code": FLAG_ENHANCED_REVIEW, "date": "2025-05-02"}]
        elif i == 10:
            flags = [{"code": FLAG_DECLINED, "date": "2024-02-12"}]
        elif i == 11:
            flags = [
                {"code": FLAG_ENHANCED_REVIEW, "date": "2024-11-04"},
                {"code": FLAG_REVIEW_NOT_INDICATED, "date": "2025-01-20"},
            ]
        row = existing.get(pid)
        if row is None:
            row = DemoPatient(
                id=pid,
                practice_ods=spec.ods,
                nhs_number=nhs,
                given_name=given,
                family_name=family,
                date_of_birth=born,
                sex="female" if female else "male",
                address=f"{rng.randint(1, 120)} {rng.choice(STREETS)}, {spec.address.split(', ')[-1]}",
                postcode=f"{spec.postcode[:3]} {rng.randint(1, 9)}{''.join(rng.choices(POSTCODE_LETTERS, k=2))}",
                flags=flags,
            )
            session.add(row)
        rows.append(row)
    return rows


def _age_for(i: int, rng: random.Random) -> int:
    # Family groups first: 0-3 adults with children 4-8; then a spread of every age.
    fixed = {0: 42, 1: 38, 2: 67, 3: 81, 4: 6, 5: 10, 6: 15, 8: 2, 12: 16}
    if i in fixed:
        return fixed[i]
    band = rng.random()
    if band < 0.2:
        return rng.randint(0, 15)
    if band < 0.75:
        return rng.randint(16, 64)
    return rng.randint(65, 96)


def _clinicians(session: Session, spec: DemoPractice) -> None:
    for suffix, name, role in CLINICIANS:
        cid = f"{spec.ods}-{suffix}"
        if session.get(DemoClinician, cid) is None:
            session.add(DemoClinician(id=cid, practice_ods=spec.ods, name=name, role=role))


def _slots(session: Session, spec: DemoPractice, patients: list[DemoPatient], today: dt.date, limit: int) -> None:
    """Two weeks of past and six weeks of future sessions, filled as a busy practice's are.

    Past appointments belong to demo patients. A future booked slot belongs to a demo patient only now and
    then, and never beyond the practice's maximum of future appointments (``limit``); the others are held by
    patients outside the demo list, so the slot is booked with no demo appointment behind it."""
    held = _future_holdings(session, spec, today)
    existing = set(
        session.scalars(
            select(DemoSlot.id).where(
                DemoSlot.practice_ods == spec.ods, DemoSlot.start >= _local(today - dt.timedelta(days=14), "00:00")
            )
        )
    )
    bookers = list(patients[13:])
    new_slots: list[DemoSlot] = []
    new_appointments: list[DemoAppointment] = []
    for offset in range(-14, WEEKS_AHEAD * 7 + 1):
        day = today + dt.timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        rng = random.Random(f"{spec.ods}{day.isoformat()}")
        # Realistic fill: the next few days are nearly full, later weeks mostly free; past days were full.
        fill = 0.9 if offset < 0 else max(0.15, 0.85 - 0.03 * offset)
        for suffix, slot_type, minutes, sessions, modes in SESSIONS:
            clinician = f"{spec.ods}-{suffix}"
            for start_s, end_s in sessions:
                start = _local(day, start_s)
                end = _local(day, end_s)
                n = 0
                while start < end:
                    sid = f"{spec.ods}-S{day:%Y%m%d}{start:%H%M}-{suffix}"
                    if sid not in existing:
                        booked = rng.random() < fill
                        slot = DemoSlot(
                            id=sid,
                            practice_ods=spec.ods,
                            start=start,
                            end=start + dt.timedelta(minutes=minutes),
                            clinician_id=clinician,
                            slot_type=slot_type,
                            delivery_mode=modes[n % len(modes)],
                            location=spec.name if modes[n % len(modes)] == "face_to_face" else "",
                            status="booked" if booked else "free",
                        )
                        new_slots.append(slot)
                        holder = _holder(rng, bookers, held, limit, future=offset >= 0) if booked else None
                        if holder is not None:
                            new_appointments.append(
                                DemoAppointment(
                                    id=f"A-{sid}",
                                    slot_id=sid,
                                    patient_id=holder,
                                    reason="",
                                    booked_online=rng.random() < 0.3,
                                    status="fulfilled" if offset < 0 else "booked",
                                    booked_at=_booked_at(rng, start, today),
                                )
                            )
                    start += dt.timedelta(minutes=minutes)
                    n += 1
    session.add_all(new_slots)
    session.flush()
    session.add_all(new_appointments)


def _future_holdings(session: Session, spec: DemoPractice, today: dt.date) -> Counter[str]:
    """Future appointments each demo patient already holds, so a top-up on a later day keeps to the limit."""
    rows = session.execute(
        select(DemoAppointment.patient_id, func.count())
        .join(DemoSlot, DemoSlot.id == DemoAppointment.slot_id)
        .where(
            DemoSlot.practice_ods == spec.ods,
            DemoSlot.start >= _local(today, "00:00"),
            DemoAppointment.status == "booked",
        )
        .group_by(DemoAppointment.patient_id)
    )
    return Counter({patient_id: int(n) for patient_id, n in rows.tuples()})


def _holder(
    rng: random.Random, bookers: list[DemoPatient], held: Counter[str], limit: int, *, future: bool
) -> str | None:
    """The demo patient who holds a booked slot, or None for a patient outside the demo list."""
    chosen = rng.choice(bookers).id
    if not future:
        return chosen
    if rng.random() >= FUTURE_DEMO_SHARE or held[chosen] >= limit:
        return None
    held[chosen] += 1
    return chosen


def _booked_at(rng: random.Random, start: dt.datetime, today: dt.date) -> dt.datetime:
    """Some days before the appointment, and always before the seeding day began: no report, past or current,
    counts a booking made after today."""
    booked_at = start - dt.timedelta(days=rng.randint(1, 20))
    today_began = _local(today, "00:00")
    if booked_at < today_began:
        return booked_at
    return today_began - dt.timedelta(minutes=rng.randint(1, 14 * 24 * 60))


def _clinical_data(session: Session, p: DemoPatient, today: dt.date) -> None:
    if session.scalar(select(DemoRecordEntry.id).where(DemoRecordEntry.patient_id == p.id).limit(1)) is not None:
        return
    rng = random.Random(p.id)
    age = today.year - p.date_of_birth.year
    entries: list[DemoRecordEntry] = []

    def entry(section: str, when: dt.date, term: str, **kw: Any) -> None:
        entries.append(
            DemoRecordEntry(
                id=f"{p.id}-E{len(entries) + 1:03d}", patient_id=p.id, section=section, date=when, term=term, **kw
            )
        )

    def past(days_max: int, days_min: int = 1) -> dt.date:
        return today - dt.timedelta(days=rng.randint(days_min, days_max))

    for term, code, reaction, severity in rng.sample(ALLERGIES, k=rng.randint(0, 2)):
        entry("allergies", past(4000, 200), term, code=code, reaction=reaction, severity=severity, status="active")
    meds = []
    if age >= 16:
        meds = rng.sample(MEDICINES[:8], k=rng.randint(1, 4))
        for term, code in rng.sample(PROBLEMS, k=rng.randint(1, 3)):
            entry("problems", past(3000, 100), term, code=code, status=rng.choice(["active", "active", "past"]))
        for name, code, unit, low, high, rng_text in rng.sample(TESTS, k=3):
            for _ in range(2):
                value = round(rng.uniform(low, high), 1)
                filed_when = past(700, 3)
                entry(
                    "test-results",
                    filed_when,
                    name,
                    code=code,
                    value=str(value),
                    unit=unit,
                    reference_range=rng_text,
                    outside_range=range_flag(str(value), rng_text) is not None,
                    filed_on=filed_when + dt.timedelta(days=1),
                    clinician="Dr Sarah Mitchell",
                )
        # A result still waiting for a clinician to file it: never shown online.
        entry(
            "test-results",
            today - dt.timedelta(days=1),
            "Serum ferritin",
            code="1001311000000109",
            value="8",
            unit="ug/L",
            reference_range="15 - 300",
            outside_range=True,
            filed=False,
        )
    for term, code in rng.sample(IMMUNISATIONS, k=rng.randint(1, 3)):
        entry("immunisations", past(3000, 30), term, code=code, status="given")
    for _ in range(rng.randint(2, 4)):
        when = past(1500, 5)
        entry(
            "consultations",
            when,
            "Consultation with GP",
            code="185317003",
            free_text=f"Reviewed {p.given_name}. Discussed symptoms and agreed a plan; safety-netting advice given.",
            clinician=rng.choice(["Dr Sarah Mitchell", "Dr Rajesh Iyer", "Dr Emma Clarke"]),
        )
    # Entries that must never leave the server.
    entry(
        "consultations",
        past(300, 20),
        "Safeguarding discussion",
        code="225337009",
        free_text=f"CONFIDENTIAL-{p.id}: discussion with social services.",
        confidential=True,
    )
    entry(
        "consultations",
        past(200, 10),
        "Information from relative",
        code="",
        free_text=f"THIRDPARTY-{p.id}: sister reports concerns.",
        third_party=True,
    )
    entry(
        "documents",
        past(500, 10),
        "Hospital discharge letter",
        free_text="Discharged home after an uncomplicated stay.",
    )
    entry(
        "documents", dt.date(2021, 3, 4), "Outpatient letter (2021)", free_text="Seen in clinic, no follow-up needed."
    )
    entry(
        "documents",
        past(100, 5),
        "Letter about a family member",
        free_text=f"HARM-{p.id}: not to be shared.",
        serious_harm=True,
    )
    for term, code, dosage, _quantity, _kind, _controlled in meds:
        entry("medications", past(400, 10), term, code=code, dosage=dosage, status="current")
    stopped_on = _stopped_on(p, today)
    if age >= 16:  # a medicine stopped some time ago: listed under past medicines, never orderable
        name, dosage = STOPPED_MEDICINE
        entry("medications", stopped_on - dt.timedelta(days=180), name, dosage=dosage, status="stopped")
    session.add_all(entries)
    if age >= 16 and p.id.endswith(("P001", "P002", "P003", "P004")):
        _stopped_and_used_up(session, p, today, stopped_on)

    medicines = list(meds)
    if age >= 16 and p.id.endswith(("P001", "P002", "P003", "P004")):
        medicines = [MEDICINES[0], MEDICINES[1], MEDICINES[4], MEDICINES[6], MEDICINES[8], MEDICINES[9]]
    for k, (name, code, dosage, quantity, kind, controlled) in enumerate(medicines):
        review = today + dt.timedelta(days=rng.randint(30, 300))
        if k == 3:
            review = today - dt.timedelta(days=12)  # due for review
        session.add(
            DemoMedication(
                id=f"{p.id}-M{k + 1:02d}",
                patient_id=p.id,
                name=name,
                code=code,
                dosage=dosage,
                quantity=quantity,
                prescription_type=kind,
                last_issued=today - dt.timedelta(days=rng.randint(10, 40)),
                review_date=None if kind == "acute" else review,
                issues_allowed=6 if kind == "repeat_dispensing" else None,
                issues_used=rng.randint(0, 5) if kind == "repeat_dispensing" else 0,
                controlled_drug=controlled,
            )
        )


def _stopped_on(p: DemoPatient, today: dt.date) -> dt.date:
    """When the patient's stopped medicine was stopped: its own generator, so the rest of the data stays put."""
    return today - dt.timedelta(days=random.Random(f"{p.id}-stopped").randint(40, 400))


def _stopped_and_used_up(session: Session, p: DemoPatient, today: dt.date, stopped_on: dt.date) -> None:
    """On the demo accounts' templates: a stopped medicine (kept by the system, never offered to order) and,
    except for the first patient whose template the tests pin down, a repeat-dispensing batch used up."""
    name, dosage = STOPPED_MEDICINE
    session.add(
        DemoMedication(
            id=f"{p.id}-M07",
            patient_id=p.id,
            name=name,
            dosage=dosage,
            quantity="56 tablets",
            prescription_type="repeat",
            last_issued=stopped_on - dt.timedelta(days=20),
            stopped_on=stopped_on,
        )
    )
    if p.id.endswith("P001"):
        return
    name, code, dosage, quantity, kind, controlled = MEDICINES[5]
    session.add(
        DemoMedication(
            id=f"{p.id}-M08",
            patient_id=p.id,
            name=name,
            code=code,
            dosage=dosage,
            quantity=quantity,
            prescription_type=kind,
            last_issued=today - dt.timedelta(days=25),
            review_date=today + dt.timedelta(days=90),
            issues_allowed=6,
            issues_used=6,
            controlled_drug=controlled,
        )
    )


def _user(session: Session, email: str, kind: str, given: str, family: str) -> User:
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, kind=kind)
        session.add(user)
    user.given_name, user.family_name = given, family
    user.password_hash = hash_password(DEMO_PASSWORD)
    user.totp_secret = encrypt(_totp_secret(email))
    user.totp_enrolled_at = user.totp_enrolled_at or utcnow()
    user.second_factor = "totp"
    user.email_confirmed_at = user.email_confirmed_at or utcnow()
    user.active = True
    session.flush()
    return user


def _gateway_patient(session: Session, practice: Practice, p: DemoPatient) -> Patient:
    patient = session.scalar(
        select(Patient).where(Patient.practice_id == practice.id, Patient.nhs_number == p.nhs_number)
    )
    if patient is None:
        patient = Patient(
            practice_id=practice.id,
            nhs_number=p.nhs_number,
            clinical_id=p.id,
            given_name=p.given_name,
            family_name=p.family_name,
            date_of_birth=p.date_of_birth,
            online_account_id=f"{practice.ods_code}{p.id[-3:]}{hashlib.sha256(p.id.encode()).hexdigest()[:4].upper()}",
            nominated_pharmacy_ods=PHARMACIES[0 if practice.ods_code == "Y02001" else 3][0],
            flags=list(p.flags),
            flags_read_at=utcnow(),
        )
        session.add(patient)
        session.flush()
    return patient


def _link(session: Session, user: User, patient: Patient, staff: User) -> None:
    if (
        session.scalar(select(AccountLink).where(AccountLink.user_id == user.id, AccountLink.patient_id == patient.id))
        is None
    ):
        session.add(AccountLink(user_id=user.id, patient_id=patient.id, method="documents"))
        session.add(
            Verification(
                patient_id=patient.id,
                user_id=user.id,
                method="documents",
                documents=[{"type": "passport", "photo": True}, {"type": "utility_bill", "photo": False}],
                staff_id=staff.id,
                notes="Demo: documents seen at the front desk.",
            )
        )


def _accounts(
    session: Session, practice: Practice, spec: DemoPractice, patients: list[DemoPatient], today: dt.date
) -> list[dict[str, Any]]:
    tag = spec.ods.lower()
    out: list[dict[str, Any]] = []
    reception = _user(session, f"reception.{tag}@example.com", "staff", "Rachel", "Green")
    manager = _user(session, f"manager.{tag}@example.com", "staff", "Martin", "Cole")
    for user, role in ((reception, "receptionist"), (manager, "practice_manager")):
        if not any(m.practice_id == practice.id and m.role == role for m in user.memberships):
            session.add(StaffMembership(user_id=user.id, practice_id=practice.id, role=role))
    for index, label in ((0, "patient"), (2, "patient2")):
        p = patients[index]
        user = _user(session, f"{label}.{tag}@example.com", "patient", p.given_name, p.family_name)
        _link(session, user, _gateway_patient(session, practice, p), reception)
        out.append(_account("patient", user, spec.ods, p.nhs_number))
    parent_row, child_row = patients[1], patients[5]
    parent = _user(session, f"parent.{tag}@example.com", "patient", parent_row.given_name, parent_row.family_name)
    _link(session, parent, _gateway_patient(session, practice, parent_row), reception)
    child = _gateway_patient(session, practice, child_row)
    if (
        session.scalar(select(ProxyLink).where(ProxyLink.proxy_user_id == parent.id, ProxyLink.patient_id == child.id))
        is None
    ):
        session.add(
            ProxyLink(
                proxy_user_id=parent.id,
                patient_id=child.id,
                relationship_text="Mother" if parent_row.sex == "female" else "Father",
                basis="parental_responsibility",
                status="active",
                evidence="Demo: birth certificate seen.",
                safeguarding_notes="Demo: no concerns recorded.",
                safeguarding_checked_by_id=reception.id,
                safeguarding_checked_at=utcnow(),
                can_appointments=True,
                can_prescriptions=True,
                record_level="summary",
                decided_at=utcnow(),
                decided_by_id=reception.id,
            )
        )
    out.append(_account("patient", parent, spec.ods, parent_row.nhs_number, acts_for=[child_row.nhs_number]))
    newcomer_row = patients[13]
    newcomer = _user(session, f"newpatient.{tag}@example.com", "patient", "", "")
    out.append(_account("patient", newcomer, spec.ods, newcomer_row.nhs_number, linked=False))
    out.append(_account("receptionist", reception, spec.ods))
    out.append(_account("practice_manager", manager, spec.ods))
    return out


def _admin(session: Session) -> dict[str, Any]:
    admin = _user(session, "admin@example.com", "staff", "Ayo", "Adeyemi")
    admin.is_system_admin = True
    return _account("system_admin", admin, "")


def _account(
    role: str, user: User, ods: str, nhs: str = "", acts_for: list[str] | None = None, linked: bool = True
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "role": role,
        "email": user.email,
        "password": DEMO_PASSWORD,
        "totp_secret": _totp_secret(user.email),
        "practice_ods": ods,
    }
    if role == "patient":
        data["nhs_number"] = nhs
        data["acts_for"] = acts_for or []
        data["linked"] = linked
    return data


# A second copy of a practice's clinical data: the system the practice moves to ---------------------------------
MISMATCHED = {1: "twin", 2: "missing", 5: "born"}  # demo patients (by index) the new system holds differently


def copy_practice(session: Session, ods: str, copy: str = "2", mismatched: dict[int, str] | None = None) -> str:
    """Copy a practice's demo clinical data under the namespace ``<ods>~<copy>`` (the demo adapter's ``copy``
    option), with new ids, as a practice's new system after a migration holds it. Three patients differ on
    purpose (``MISMATCHED``): one is missing, one has another date of birth, and one has a second record with
    the same name and date of birth. Repeatable: rows already copied are left alone. Returns the namespace."""
    space = f"{ods}~{copy}"
    prefix = f"{copy}~"
    if session.scalar(select(DemoPatient.id).where(DemoPatient.practice_ods == space).limit(1)) is not None:
        return space
    changes = MISMATCHED if mismatched is None else mismatched
    patients = list(
        session.scalars(select(DemoPatient).where(DemoPatient.practice_ods == ods).order_by(DemoPatient.id))
    )
    kept: dict[str, str] = {}
    for index, p in enumerate(patients):
        change = changes.get(index, "")
        if change == "missing":
            continue
        born = p.date_of_birth + dt.timedelta(days=1) if change == "born" else p.date_of_birth
        kept[p.id] = prefix + p.id
        session.add(_copied(p, id=prefix + p.id, practice_ods=space, date_of_birth=born))
        if change == "twin":  # a duplicate registration under a temporary number
            twin = _copied(p, id=f"{prefix}{p.id}-T", practice_ods=space, nhs_number="9990000000")
            session.add(twin)
    clinicians = list(session.scalars(select(DemoClinician).where(DemoClinician.practice_ods == ods)))
    for c in clinicians:
        session.add(_copied(c, id=prefix + c.id, practice_ods=space))
    session.flush()
    slots = list(session.scalars(select(DemoSlot).where(DemoSlot.practice_ods == ods)))
    for slot in slots:
        session.add(_copied(slot, id=prefix + slot.id, practice_ods=space, clinician_id=prefix + slot.clinician_id))
    session.flush()
    models: tuple[Any, ...] = (DemoAppointment, DemoMedication, DemoRecordEntry, DemoRepeatRequest)
    for model in models:
        rows: list[Any] = list(session.scalars(select(model).where(model.patient_id.in_(list(kept)))))
        for row in rows:
            extra: dict[str, Any] = {"id": prefix + row.id, "patient_id": kept[row.patient_id]}
            if isinstance(row, DemoAppointment):
                extra["slot_id"] = prefix + row.slot_id
            if getattr(row, "idempotency_key", None):
                extra["idempotency_key"] = (prefix + str(row.idempotency_key))[:80]
            session.add(_copied(row, **extra))
        session.flush()
    return space


def _copied(row: Any, **changes: Any) -> Any:
    """A new row of the same table with the same values but ``changes``."""
    values = {c.key: getattr(row, c.key) for c in row.__table__.columns}
    values.update(changes)
    return type(row)(**values)
