"""Run the gateway as production does, in separate processes: migrate, seed, serve with gunicorn.

Shared by the browser tests and the system tests (slow links, several nodes).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from patient_online.adapters.demo.models import DemoSlot
from patient_online.models import Practice
from tests.conftest import PROJECT_ROOT
from tests.helpers import totp_now

DEMO_PASSWORD = "Demo-gateway-2026!"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gateway_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PATIENT_ONLINE_DATABASE_URL": database_url,
        "PATIENT_ONLINE_SECRET_KEY": "system-test-only-not-secret",
        "PATIENT_ONLINE_ENV": "development",
        **extra,
    }


def flask(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `flask --app app ARGS` as an operator would; raises with its output when it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise AssertionError(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def prepare_database(env: dict[str, str]) -> None:
    flask(env, "db", "upgrade")
    flask(env, "demo", "seed")


def use_gpconnect(env: dict[str, str], ods: str, base_url: str, *extra: str) -> None:
    """Point a practice at the GP Connect provider simulator, as an administrator would."""
    from tools.gpconnect_simulator import PROVIDER_ASID, PROVIDER_ODS

    options = [
        f"base_url={base_url}",
        f"provider_asid={PROVIDER_ASID}",
        "consumer_asid=200000000359",
        f"provider_ods={PROVIDER_ODS}",
        *extra,
    ]
    flask(env, "practice", "set-adapter", ods, "gpconnect", *[a for o in options for a in ("--option", o)])


@contextmanager
def gunicorn(env: dict[str, str], workers: int = 2, threads: int = 4, port: int | None = None) -> Iterator[str]:
    """Serve the app with gunicorn (threaded workers); yields the base URL; stops it afterwards."""
    port = port or free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--worker-class",
            "gthread",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "app:app",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError("the gateway did not start under gunicorn within 60 seconds")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def signed_in_client(base: str, email: str, password: str = DEMO_PASSWORD, **kwargs: Any) -> httpx.Client:
    """An HTTP client signed in as the demo account, through the real forms (CSRF token and TOTP code)."""
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=30, **kwargs)
    submit(client, "/login", {"email": email, "password": password})
    response = submit(client, "/login/code", {"code": totp_now(email)})
    assert response.status_code == 302, f"sign-in failed for {email}"
    return client


def submit(client: httpx.Client, url: str, data: dict[str, str], page: str | None = None) -> httpx.Response:
    """POST a form with the CSRF token read from its page, as a browser does."""
    found = CSRF_RE.search(client.get(page or url).text)
    assert found, f"no CSRF token on {page or url}"
    return client.post(url, data={**data, "csrf_token": found.group(1)})


# A PostgreSQL server of the test's own, to stop and start at will -------------------------------------------
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """A throw-away PostgreSQL cluster in a temporary folder on a free port, for tests that restart the
    database under load (never the shared server other tests use). As root, it runs as the ``postgres`` user,
    which PostgreSQL requires; its folder belongs to that user."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.data = root / "data"
        self.port = port
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(POSTGRES_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if done.returncode != 0:
            raise AssertionError(f"{args[0]} {args[1]} failed:\n{done.stdout}\n{done.stderr}\n{self.log()}")

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = (
            f"-c port={self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
            "-c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop at once: ``fast`` ends every session (as a restart or a fail-over does), ``immediate`` crashes."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A running private cluster; fails (never skips) when the PostgreSQL server programs are not installed."""
    import pytest

    if not (POSTGRES_BIN / "pg_ctl").exists() or not (POSTGRES_BIN / "initdb").exists():
        pytest.fail(
            f"PostgreSQL's server programs are needed in {POSTGRES_BIN} (apt-get install postgresql-15).",
            pytrace=False,
        )
    root = Path(tempfile.mkdtemp(prefix="po-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = PrivatePostgres(root, free_port())
    try:
        server.init()
        server.start()
        yield server
    finally:
        with suppress(AssertionError, subprocess.TimeoutExpired):
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def serving_pids(port: int) -> set[int]:
    """The gunicorn processes (the master and its workers) bound to the port, from their command lines: a set
    that changes when a worker died and was replaced."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"gunicorn" in command and f"127.0.0.1:{port}".encode() in command:
            found.add(int(entry.name))
    return found


def add_linked_patients(database_url: str, count: int, prefix: str, practice_ods: str = "Y02001") -> dict[str, str]:
    """Linked patient accounts for adult demo patients beyond the demo's own, made directly in the database as
    reception would (email -> the patient's id in the clinical system); the practice's limit on future
    appointments is lifted, as the demo data gives these patients appointments already."""
    from flask import Flask
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from patient_online.adapters.demo.models import DemoPatient
    from patient_online.adapters.demo.seed import _gateway_patient, _link, _user
    from patient_online.models import Practice, User

    crypto_app = Flask(__name__)  # encrypt() reads the key from the app's settings, as the nodes do
    crypto_app.config.update(SECRET_KEY=gateway_env("")["PATIENT_ONLINE_SECRET_KEY"], ADAPTER_SECRET_KEY="")
    engine = create_engine(database_url)
    made: dict[str, str] = {}
    try:
        with crypto_app.app_context(), Session(engine) as session:
            practice = session.scalars(select(Practice).where(Practice.ods_code == practice_ods)).one()
            practice.max_future_appointments = 1000
            reception = session.scalars(
                select(User).where(User.email == f"reception.{practice_ods.lower()}@example.com")
            ).one()
            rows = session.scalars(
                select(DemoPatient).where(DemoPatient.practice_ods == practice_ods).order_by(DemoPatient.id).offset(20)
            ).all()
            adults = [p for p in rows if p.date_of_birth.year <= 2000][:count]
            assert len(adults) == count, "the demo seed has fewer adult patients than this test needs"
            for n, row in enumerate(adults):
                email = f"{prefix}{n:02d}.{practice_ods.lower()}@example.com"
                user = _user(session, email, "patient", row.given_name, row.family_name)
                _link(session, user, _gateway_patient(session, practice, row), reception)
                made[email] = row.id
            session.commit()
    finally:
        engine.dispose()
    return made


@contextmanager
def gunicorn_nodes(env: dict[str, str], count: int = 2, **options: Any) -> Iterator[list[str]]:
    """Several gunicorn nodes on their own ports, started at the same time (each takes seconds to be ready);
    yields their base URLs; stops them all afterwards."""
    from concurrent.futures import ThreadPoolExecutor
    from contextlib import ExitStack

    managers = [gunicorn(env, port=free_port(), **options) for _ in range(count)]
    with ExitStack() as stack, ThreadPoolExecutor(max_workers=count) as pool:
        starting = [pool.submit(manager.__enter__) for manager in managers]
        bases: list[str] = []
        problems: list[BaseException] = []
        for manager, future in zip(managers, starting, strict=True):
            try:
                bases.append(future.result())
                stack.push(manager.__exit__)
            except Exception as exc:
                problems.append(exc)
        if problems:
            raise problems[0]
        assert len(set(bases)) == count
        yield bases


def free_slots(engine: Engine, count: int, days: int) -> list[tuple[str, str]]:
    """Free, online-bookable Y02001 slots between two and ``days`` days ahead: (id, start as the page gives it)."""
    now = dt.datetime.now(dt.UTC)
    with Session(engine) as session:
        practice = session.scalars(select(Practice).where(Practice.ods_code == "Y02001")).one()
        rows = session.scalars(
            select(DemoSlot)
            .where(
                DemoSlot.practice_ods == "Y02001",
                DemoSlot.status == "free",
                DemoSlot.slot_type.in_(list(practice.online_slot_types)),
                DemoSlot.start > now + dt.timedelta(days=2),
                DemoSlot.start < now + dt.timedelta(days=days),
            )
            .order_by(DemoSlot.start)
            .limit(count)
        ).all()
    assert len(rows) == count, "not enough free slots in the demo data"
    return [(row.id, row.start.isoformat()) for row in rows]
