"""Generate benchmark data into a PostgreSQL database of its own, fast, with COPY.

    python -m bench.generate small|large [--fresh]

Two scales with the same shape per practice (5,000 patients each), so only the size of the tables differs:
small is 2 practices and 10,000 patients, large is 200 practices and 1,000,000 patients (an area). Each
practice gets the demo system's clinicians and sessions for two weeks back and six weeks ahead (about
6,800 slots, the near days mostly booked), repeat templates and record entries for every patient, and
gateway accounts (a fifth of its patients, linked and verified, with some audit history).

A few hundred of those accounts are benchmark patients who can really sign in: their password hash is
computed once and shared, and their TOTP secrets derive from their email addresses (``totp_secret``), so
the load generator knows them. Ids are deterministic, like the demo seed's.

The schema comes from ``flask db upgrade`` against the new database; the rows go in with COPY, then
sequences are moved past the ids used and the tables analysed.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from argon2 import PasswordHasher
from cryptography.fernet import Fernet

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from patient_online.adapters.demo.seed import (  # noqa: E402
    ALLERGIES,
    CLINICIANS,
    FAMILY,
    GIVEN_F,
    GIVEN_M,
    IMMUNISATIONS,
    MEDICINES,
    ONLINE_TYPES,
    PHARMACIES,
    PROBLEMS,
    SESSIONS,
    STREETS,
    TESTS,
)
from patient_online.domain.nhs_number import check_digit  # noqa: E402

LONDON = ZoneInfo("Europe/London")
ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BENCH_PASSWORD = "Bench-gateway-2026!"  # noqa: S105 (benchmark accounts only, in a benchmark database)
# A fixed key, so the generator and the served app agree on the encrypted TOTP secrets of this database.
ADAPTER_SECRET_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"patient-online-benchmark").digest()).decode()
SCHEMA_VERSION = "1"
PATIENTS_PER_PRACTICE = 5000
ACCOUNT_EVERY = 5  # one patient in five has a gateway account
DAYS_BACK, DAYS_AHEAD = 14, 42
SERIAL_TABLES = ("practice", "service_switch", "user_account", "patient", "account_link", "verification", "audit_event")


@dataclass(frozen=True)
class Scale:
    name: str
    practices: int
    bench_per_practice: int

    @property
    def patients(self) -> int:
        return self.practices * PATIENTS_PER_PRACTICE

    @property
    def database(self) -> str:
        return f"po_bench_{self.name}"

    @property
    def bench_accounts(self) -> int:
        return self.practices * self.bench_per_practice


SCALES = {
    "small": Scale("small", practices=2, bench_per_practice=100),
    "large": Scale("large", practices=200, bench_per_practice=2),
}


def database_url(scale: Scale, driver: str = "postgresql+psycopg") -> str:
    base = ADMIN_URL.rsplit("/", 1)[0].split("://", 1)[1]
    return f"{driver}://{base}/{scale.database}"


def bench_email(n: int) -> str:
    return f"bench{n:04d}@example.com"


def totp_secret(email: str) -> str:
    """The TOTP secret of a benchmark account (the load generator derives it the same way)."""
    return base64.b32encode(hashlib.sha256(("bench-totp:" + email).encode()).digest()[:20]).decode()


def practice_ods(p: int) -> str:
    return f"B{81001 + p}"


def gateway_env(scale: Scale, **extra: str) -> dict[str, str]:
    """The environment the app runs with against this scale's database."""
    return {
        **os.environ,
        "PATIENT_ONLINE_DATABASE_URL": database_url(scale),
        "PATIENT_ONLINE_ADAPTER_SECRET_KEY": ADAPTER_SECRET_KEY,
        "PATIENT_ONLINE_SECRET_KEY": "benchmark-only-not-secret-" + "x" * 16,
        "PATIENT_ONLINE_ENV": "development",
        "PATIENT_ONLINE_DEMO_DATA_ENABLED": "true",
        **extra,
    }


# Reading what is there -------------------------------------------------------------------------------------
def existing(scale: Scale) -> dict[str, str] | None:
    """The benchmark database's description when it is complete and current, else None."""
    try:
        with psycopg.connect(database_url(scale, "postgresql"), connect_timeout=5) as conn:
            rows = conn.execute("SELECT key, value FROM bench_meta").fetchall()
    except psycopg.Error:
        return None
    meta: dict[str, str] = dict(rows)
    if meta.get("complete") != "yes" or meta.get("schema") != SCHEMA_VERSION:
        return None
    if meta.get("today") != dt.datetime.now(LONDON).date().isoformat():
        return None  # slots are laid out around the day of generation
    return meta


# COPY helpers ----------------------------------------------------------------------------------------------
def _text(value: object) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    return str(value)


class Copier:
    """Sends text-format rows to one table with COPY in large chunks, on a connection of its own (so several
    tables can be filled at once) that commits when the block ends."""

    def __init__(self, url: str, table: str, columns: Sequence[str]) -> None:
        self.url = url
        self.table = table
        self.columns = columns
        self.lines: list[str] = []
        self.rows = 0

    def __enter__(self) -> Copier:
        self.conn = psycopg.connect(self.url)
        self.conn.execute("SET synchronous_commit TO off")
        cols = ", ".join(f'"{c}"' for c in self.columns)
        self._copy_cm = self.conn.cursor().copy(f'COPY "{self.table}" ({cols}) FROM STDIN')
        self.copy = self._copy_cm.__enter__()
        return self

    def add(self, line: str) -> None:
        self.lines.append(line)
        if len(self.lines) >= 20000:
            self.flush()

    def row(self, *values: object) -> None:
        self.add("\t".join(_text(v) for v in values))

    def flush(self) -> None:
        if self.lines:
            self.rows += len(self.lines)
            self.copy.write("\n".join(self.lines) + "\n")
            self.lines = []

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        if kind is None:
            self.flush()
        self._copy_cm.__exit__(kind, error, tb)  # type: ignore[arg-type]
        if kind is None:
            self.conn.commit()
        self.conn.close()


# The data --------------------------------------------------------------------------------------------------
def _ts(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _local(day: dt.date, hhmm: str) -> dt.datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=LONDON)


@dataclass(frozen=True)
class SlotShape:
    key: str  # date+time+clinician part of the id
    start: dt.datetime
    start_text: str
    end_text: str
    suffix: str
    slot_type: str
    mode: str
    offset: int


def slot_shapes(today: dt.date) -> list[SlotShape]:
    """Every practice runs the demo system's sessions, so one list of times serves them all."""
    shapes = []
    for offset in range(-DAYS_BACK, DAYS_AHEAD + 1):
        day = today + dt.timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        for suffix, slot_type, minutes, sessions, modes in SESSIONS:
            for start_s, end_s in sessions:
                start, end = _local(day, start_s), _local(day, end_s)
                n = 0
                while start < end:
                    stop = start + dt.timedelta(minutes=minutes)
                    shapes.append(
                        SlotShape(
                            key=f"{day:%Y%m%d}{start:%H%M}-{suffix}",
                            start=start,
                            start_text=_ts(start),
                            end_text=_ts(stop),
                            suffix=suffix,
                            slot_type=slot_type,
                            mode=modes[n % len(modes)],
                            offset=offset,
                        )
                    )
                    start = stop
                    n += 1
    return shapes


def nhs_number(serial: int) -> str:
    """A valid, unique NHS number for patient ``serial`` (skips prefixes whose check digit would be 10)."""
    n = 100_000_000 + serial * 10
    while True:
        nine = f"{n:09d}"
        digit = check_digit(nine)
        if digit is not None:
            return nine + str(digit)
        n += 1


def generate(scale: Scale, fresh: bool = False, quiet: bool = False) -> dict[str, str]:
    """Create (or reuse) the scale's database and fill it; returns its description."""
    if not fresh:
        found = existing(scale)
        if found is not None:
            if not quiet:
                print(f"{scale.database}: reusing the data generated on {found['today']} ({found['seconds']} s)")
            return found
    started = time.monotonic()
    _create_database(scale)
    _upgrade(scale)
    counts: dict[str, int] = {}
    today = dt.datetime.now(LONDON).date()
    now = dt.datetime.now(dt.UTC)
    url = database_url(scale, "postgresql")
    counts.update(_fill(url, scale, today, now, quiet))
    with psycopg.connect(url) as conn:
        for table in SERIAL_TABLES:
            sequence = f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608
            conn.execute(sequence)
        conn.commit()
    with psycopg.connect(database_url(scale, "postgresql"), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        seconds = f"{time.monotonic() - started:.0f}"
        meta = {
            "schema": SCHEMA_VERSION,
            "scale": scale.name,
            "today": today.isoformat(),
            "seconds": seconds,
            "practices": str(scale.practices),
            "patients": str(scale.patients),
            "bench_accounts": str(scale.bench_accounts),
            "rows": json.dumps(counts),
            "complete": "yes",
        }
        conn.execute("CREATE TABLE bench_meta (key text PRIMARY KEY, value text NOT NULL)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO bench_meta VALUES (%s, %s)", list(meta.items()))
    if not quiet:
        total = sum(counts.values())
        print(f"{scale.database}: {total:,} rows in {seconds} s ({', '.join(f'{k} {v:,}' for k, v in counts.items())})")
    return meta


def _create_database(scale: Scale) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{scale.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{scale.database}"')


def _upgrade(scale: Scale) -> None:
    done = subprocess.run(  # noqa: S603 (our own interpreter and arguments)
        [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],
        cwd=PROJECT_ROOT,
        env=gateway_env(scale),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"flask db upgrade failed:\n{done.stdout}\n{done.stderr}")


def _progress(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, flush=True)


def _fill(url: str, scale: Scale, today: dt.date, now: dt.datetime, quiet: bool) -> dict[str, int]:
    counts: dict[str, int] = {}
    now_text = _ts(now)
    shapes = slot_shapes(today)
    services = ("appointments", "prescriptions", "proxy", "record")

    with Copier(url, "pharmacy", ("ods_code", "name", "address", "postcode", "phone")) as c:
        for ods, name, address, postcode, phone in PHARMACIES:
            c.row(ods, name, address, postcode, phone)
    counts["pharmacy"] = c.rows

    practice_cols = [
        "id",
        "ods_code",
        "name",
        "address",
        "postcode",
        "phone",
        "email",
        "adapter_name",
        "adapter_options",
        "created_at",
        "online_slot_types",
        "booking_horizon_days",
        "min_lead_time_hours",
        "max_future_appointments",
        "cancellation_allowed",
        "cancellation_cutoff_hours",
        "turnaround_working_days",
        "max_note_length",
        "never_online",
        "default_record_level",
        "record_access_start",
        "proxy_review_age",
        "proxy_notice_days",
    ]
    with Copier(url, "practice", practice_cols) as c:
        for p in range(scale.practices):
            ods = practice_ods(p)
            c.row(
                p + 1,
                ods,
                f"Practice {ods}",
                f"{p + 1} High Street, Town {p % 40}",
                f"TN{p % 90 + 1} 1AA",
                "01632 960 999",
                f"{ods.lower()}.practice@example.com",
                "demo",
                "{}",
                now_text,
                json.dumps(ONLINE_TYPES),
                28,
                2,
                4,
                True,
                24,
                2,
                300,
                json.dumps(["morphine", "diazepam", "pregabalin"]),
                "full",
                "2023-10-31",
                11,
                30,
            )
    counts["practice"] = c.rows

    with Copier(
        url, "service_switch", ("id", "practice_id", "service", "enabled", "message", "off_reason", "updated_at")
    ) as c:
        for p in range(scale.practices):
            for k, service in enumerate(services):
                c.row(p * len(services) + k + 1, p + 1, service, True, "", "", now_text)
    counts["service_switch"] = c.rows

    with Copier(url, "demo_clinician", ("id", "practice_ods", "name", "role")) as c:
        for p in range(scale.practices):
            ods = practice_ods(p)
            for suffix, name, role in CLINICIANS:
                c.row(f"{ods}-{suffix}", ods, name, role)
    counts["demo_clinician"] = c.rows

    # Patients, as the clinical system knows them -------------------------------------------------------------
    _progress(quiet, f"  demo patients ({scale.patients:,})")
    with Copier(
        url,
        "demo_patient",
        (
            "id",
            "practice_ods",
            "nhs_number",
            "given_name",
            "family_name",
            "date_of_birth",
            "sex",
            "address",
            "postcode",
            "flags",
        ),
    ) as c:
        for p in range(scale.practices):
            ods = practice_ods(p)
            rng = random.Random(ods)
            for i in range(PATIENTS_PER_PRACTICE):
                female = rng.random() < 0.52
                c.add(
                    f"{ods}-P{i:05d}\t{ods}\t{nhs_number(p * PATIENTS_PER_PRACTICE + i)}\t"
                    f"{rng.choice(GIVEN_F if female else GIVEN_M)}\t{rng.choice(FAMILY)}\t"
                    f"{_born(i, rng, today)}\t{'female' if female else 'male'}\t"
                    f"{rng.randint(1, 120)} {rng.choice(STREETS)}, Town {p % 40}\t"
                    f"TN{p % 90 + 1} {rng.randint(1, 9)}AB\t[]"
                )
    counts["demo_patient"] = c.rows

    # Slots and appointments ----------------------------------------------------------------------------------
    _progress(quiet, f"  slots and appointments ({len(shapes) * scale.practices:,} slots)")
    appointments: list[str] = []
    with Copier(
        url,
        "demo_slot",
        ("id", "practice_ods", "start", "end", "clinician_id", "slot_type", "delivery_mode", "location", "status"),
    ) as c:
        for p in range(scale.practices):
            ods = practice_ods(p)
            rng = random.Random(f"slots-{ods}")
            for shape in shapes:
                fill = 0.9 if shape.offset < 0 else max(0.15, 0.85 - 0.03 * shape.offset)
                booked = rng.random() < fill
                sid = f"{ods}-S{shape.key}"
                location = f"Practice {ods}" if shape.mode == "face_to_face" else ""
                c.add(
                    f"{sid}\t{ods}\t{shape.start_text}\t{shape.end_text}\t{ods}-{shape.suffix}\t{shape.slot_type}\t"
                    f"{shape.mode}\t{location}\t{'booked' if booked else 'free'}"
                )
                if booked:
                    # Booked by patients without a benchmark account, so benchmark patients start with none.
                    who = _non_account_patient(rng)
                    booked_at = _ts(shape.start - dt.timedelta(days=rng.randint(1, 20)))
                    appointments.append(
                        f"A-{sid}\t{sid}\t{ods}-P{who:05d}\t{'fulfilled' if shape.offset < 0 else 'booked'}\t\t1\t\\N\t"
                        f"{booked_at}\t{'t' if rng.random() < 0.3 else 'f'}\t\t\\N"
                    )
    counts["demo_slot"] = c.rows
    with Copier(
        url,
        "demo_appointment",
        (
            "id",
            "slot_id",
            "patient_id",
            "status",
            "reason",
            "version",
            "idempotency_key",
            "booked_at",
            "booked_online",
            "cancellation_reason",
            "cancelled_at",
        ),
    ) as c:
        for line in appointments:
            c.add(line)
    counts["demo_appointment"] = c.rows
    del appointments

    # Repeat templates and record entries ---------------------------------------------------------------------
    _progress(quiet, "  medication and record entries")
    entry_cols = [
        "id",
        "patient_id",
        "section",
        "date",
        "term",
        "code",
        "free_text",
        "status",
        "value",
        "unit",
        "reference_range",
        "outside_range",
        "filed",
        "filed_on",
        "clinician",
        "confidential",
        "third_party",
        "serious_harm",
        "severity",
        "reaction",
        "dosage",
    ]
    med_cols = [
        "id",
        "patient_id",
        "name",
        "code",
        "dosage",
        "quantity",
        "prescription_type",
        "last_issued",
        "review_date",
        "issues_allowed",
        "issues_used",
        "controlled_drug",
        "stopped_on",
    ]
    with Copier(url, "demo_medication", med_cols) as meds, Copier(url, "demo_record_entry", entry_cols) as entries:
        for p in range(scale.practices):
            ods = practice_ods(p)
            rng = random.Random(f"record-{ods}")
            for i in range(PATIENTS_PER_PRACTICE):
                _clinical(meds, entries, f"{ods}-P{i:05d}", i, p < scale.practices and _is_bench(i, scale), rng, today)
    counts["demo_medication"] = meds.rows
    counts["demo_record_entry"] = entries.rows

    # Gateway accounts ----------------------------------------------------------------------------------------
    _progress(quiet, "  gateway accounts, links, verifications, audit history")
    shared_hash = PasswordHasher().hash(BENCH_PASSWORD)
    fernet = Fernet(ADAPTER_SECRET_KEY.encode())
    shared = fernet.encrypt(totp_secret("shared@example.com").encode()).decode()
    user_cols = [
        "id",
        "kind",
        "email",
        "password_hash",
        "mobile",
        "given_name",
        "family_name",
        "email_confirmed_at",
        "totp_secret",
        "totp_enrolled_at",
        "second_factor",
        "is_system_admin",
        "active",
        "session_epoch",
        "identity_proofing_level",
        "created_at",
        "must_change_password",
    ]
    patient_cols = [
        "id",
        "practice_id",
        "nhs_number",
        "clinical_id",
        "given_name",
        "family_name",
        "date_of_birth",
        "online_account_id",
        "appointments_enabled",
        "prescriptions_enabled",
        "nominated_pharmacy_ods",
        "flags",
        "flags_read_at",
        "created_at",
    ]
    link_cols = [
        "id",
        "user_id",
        "patient_id",
        "status",
        "method",
        "remote_vouching_only",
        "linked_at",
        "suspended_reason",
    ]
    verification_cols = ["id", "patient_id", "user_id", "method", "documents", "remote", "verified_at", "notes"]
    audit_cols = [
        "id",
        "at",
        "action",
        "actor_user_id",
        "actor_role",
        "patient_id",
        "practice_id",
        "detail",
        "request_id",
    ]
    documents = json.dumps([{"type": "passport", "photo": True}, {"type": "utility_bill", "photo": False}])
    with Copier(url, "user_account", user_cols) as users, Copier(url, "patient", patient_cols) as patients:
        for account, p, i, email in _accounts(scale):
            ods = practice_ods(p)
            secret = fernet.encrypt(totp_secret(email).encode()).decode() if email.startswith("bench") else shared
            given, family = "Pat", f"Bench{account}"
            users.add(
                f"{account}\tpatient\t{email}\t{shared_hash}\t\t{given}\t{family}\t{now_text}\t{secret}\t"
                f"{now_text}\ttotp\tf\tt\t0\t\t{now_text}\tf"
            )
            patients.add(
                f"{account}\t{p + 1}\t{nhs_number(p * PATIENTS_PER_PRACTICE + i)}\t{ods}-P{i:05d}\t{given}\t"
                f"{family}\t{_born(i, random.Random(i), today)}\t{ods}{i:05d}\tt\tt\t"
                f"{PHARMACIES[p % len(PHARMACIES)][0]}\t[]\t{now_text}\t{now_text}"
            )
    counts["user_account"], counts["patient"] = users.rows, patients.rows
    with (
        Copier(url, "account_link", link_cols) as links,
        Copier(url, "verification", verification_cols) as checks,
        Copier(url, "audit_event", audit_cols) as events,
    ):
        rng = random.Random("audit")
        event_id = 0
        for account, p, _i, _email in _accounts(scale):
            links.add(f"{account}\t{account}\t{account}\tactive\tdocuments\tf\t{now_text}\t")
            checks.add(f"{account}\t{account}\t{account}\tdocuments\t{documents}\tf\t{now_text}\tBenchmark")
            for action, detail in AUDIT_HISTORY:
                event_id += 1
                at = _ts(now - dt.timedelta(minutes=rng.randint(60, 60 * 24 * 300)))
                events.add(f"{event_id}\t{at}\t{action}\t{account}\tpatient\t{account}\t{p + 1}\t{detail}\t")
    counts["account_link"], counts["verification"], counts["audit_event"] = links.rows, checks.rows, events.rows
    return counts


AUDIT_HISTORY = (
    ("record.viewed", '{"section": "overview"}'),
    ("record.viewed", '{"section": "medications"}'),
    ("prescription.template_viewed", '{"items": 3}'),
)


def _accounts(scale: Scale) -> Iterator[tuple[int, int, int, str]]:
    """(account id, practice index, patient index, email) of every gateway account, in id order."""
    account = bench = 0
    for p in range(scale.practices):
        for i in range(0, PATIENTS_PER_PRACTICE, ACCOUNT_EVERY):
            account += 1
            if _is_bench(i, scale):
                yield account, p, i, bench_email(bench)
                bench += 1
            else:
                yield account, p, i, f"patient{account:07d}@example.com"


def _is_bench(i: int, scale: Scale) -> bool:
    """The first accounts of each practice belong to benchmark patients."""
    return i % ACCOUNT_EVERY == 0 and i // ACCOUNT_EVERY < scale.bench_per_practice


def _non_account_patient(rng: random.Random) -> int:
    who = rng.randrange(PATIENTS_PER_PRACTICE)
    return who if who % ACCOUNT_EVERY else who + 1


def _born(i: int, rng: random.Random, today: dt.date) -> str:
    # Account holders are adults; the rest are spread over every age.
    age = rng.randint(18, 90) if i % ACCOUNT_EVERY == 0 else rng.randint(0, 96)
    return f"{today.year - age}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _days_ago(today: dt.date, rng: random.Random, most: int, least: int = 1) -> str:
    return (today - dt.timedelta(days=rng.randint(least, most))).isoformat()


def _clinical(meds: Copier, entries: Copier, pid: str, i: int, bench: bool, rng: random.Random, today: dt.date) -> None:
    """About ten record entries and two or three repeat items per patient, as in the demo seed."""
    n = 0

    def entry(
        section: str,
        when: str,
        term: str,
        code: str = "",
        free_text: str = "",
        status: str = "",
        value: str = "",
        unit: str = "",
        ref: str = "",
        outside: bool = False,
        filed: bool = True,
        filed_on: str | None = None,
        clinician: str = "",
        confidential: bool = False,
        severity: str = "",
        reaction: str = "",
        dosage: str = "",
    ) -> None:
        nonlocal n
        n += 1
        entries.add(
            f"{pid}-E{n:02d}\t{pid}\t{section}\t{when}\t{term}\t{code}\t{free_text}\t{status}\t{value}\t{unit}\t"
            f"{ref}\t{'t' if outside else 'f'}\t{'t' if filed else 'f'}\t{filed_on or chr(92) + 'N'}\t{clinician}\t"
            f"{'t' if confidential else 'f'}\tf\tf\t{severity}\t{reaction}\t{dosage}"
        )

    for term, code, reaction, severity in rng.sample(ALLERGIES, k=rng.randint(0, 1)):
        entry(
            "allergies",
            _days_ago(today, rng, 4000, 200),
            term,
            code,
            status="active",
            severity=severity,
            reaction=reaction,
        )
    for term, code in rng.sample(PROBLEMS, k=rng.randint(1, 2)):
        entry("problems", _days_ago(today, rng, 3000, 100), term, code, status=rng.choice(("active", "past")))
    for name, code, unit, low, high, ref in rng.sample(TESTS, k=2):
        value = round(rng.uniform(low, high), 1)
        when = _days_ago(today, rng, 700, 3)
        entry(
            "test-results",
            when,
            name,
            code,
            value=str(value),
            unit=unit,
            ref=ref,
            outside=value > high * 0.8,
            filed_on=when,
            clinician="Dr Sarah Mitchell",
        )
    for term, code in rng.sample(IMMUNISATIONS, k=rng.randint(1, 2)):
        entry("immunisations", _days_ago(today, rng, 3000, 30), term, code, status="given")
    entry(
        "consultations",
        _days_ago(today, rng, 1500, 5),
        "Consultation with GP",
        "185317003",
        free_text="Discussed symptoms and agreed a plan; safety-netting advice given.",
        clinician="Dr Emma Clarke",
    )
    entry(
        "consultations",
        _days_ago(today, rng, 300, 20),
        "Safeguarding discussion",
        "225337009",
        free_text="CONFIDENTIAL: discussion with social services.",
        confidential=True,
    )
    entry(
        "documents",
        _days_ago(today, rng, 500, 10),
        "Hospital discharge letter",
        free_text="Discharged home after an uncomplicated stay.",
    )
    chosen = list(MEDICINES[:4]) if bench else rng.sample(MEDICINES[:8], k=rng.randint(1, 4))
    for k, (name, code, dosage, quantity, kind, controlled) in enumerate(chosen):
        entry("medications", _days_ago(today, rng, 400, 10), name, code, status="current", dosage=dosage)
        review = today + dt.timedelta(days=rng.randint(30, 300))
        if k == 3 and not bench:
            review = today - dt.timedelta(days=12)
        dispensing = kind == "repeat_dispensing"
        meds.add(
            f"{pid}-M{k + 1:02d}\t{pid}\t{name}\t{code}\t{dosage}\t{quantity}\t{kind}\t"
            f"{_days_ago(today, rng, 40, 10)}\t{review.isoformat()}\t{6 if dispensing else chr(92) + 'N'}\t"
            f"{rng.randint(0, 5) if dispensing else 0}\t{'t' if controlled else 'f'}\t\\N"
        )


def accounts(scale: Scale) -> Iterator[tuple[str, str]]:
    """(email, TOTP secret) of every benchmark patient of the scale."""
    for n in range(scale.bench_accounts):
        email = bench_email(n)
        yield email, totp_secret(email)


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scale", choices=sorted(SCALES))
    parser.add_argument("--fresh", action="store_true", help="generate again even when the data is there")
    args = parser.parse_args(list(argv) if argv is not None else None)
    generate(SCALES[args.scale], fresh=args.fresh)


if __name__ == "__main__":
    main()
