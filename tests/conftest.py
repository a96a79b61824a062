"""Fixtures shared by every test: databases (SQLite and PostgreSQL), the app, and signed-in clients.

Integration tests run once per database: the ``backend`` fixture is parametrised over ``sqlite`` and
``postgres``. PostgreSQL is required; when it cannot be reached the tests fail and say how to start it.
Each test runs inside an outer transaction that is rolled back, so tests never see each other's data.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from patient_online.extensions import db, make_engine

POSTGRES_URL = os.environ.get("PATIENT_ONLINE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PATIENT_ONLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def redis_url() -> str:
    """The test Redis (database 15); a test that needs it fails, saying how to start it, when it is missing."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is needed for this test and could not be reached at {REDIS_URL} ({type(exc).__name__}). "
            "Start it (redis-server) or set PATIENT_ONLINE_TEST_REDIS_URL.",
            pytrace=False,
        )
    return REDIS_URL


# Nothing in the tests may reach the outside world --------------------------------------------------------
_real_connect = socket.socket.connect


def _local_only(self: socket.socket, address: Any) -> Any:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (
        host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/") or self.family == socket.AF_UNIX
    ):
        raise RuntimeError(f"A test tried to reach {host}: tests may only talk to this machine")
    return _real_connect(self, address)


socket.socket.connect = _local_only  # type: ignore[method-assign,assignment]


# Databases ---------------------------------------------------------------------------------------------
def postgres_admin_engine() -> Engine:
    return create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")


def create_postgres_database() -> str:
    """A fresh, uniquely named database on the test server; fails clearly when the server is down."""
    name = f"po_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = postgres_admin_engine()
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL is needed for these tests and could not be reached at {POSTGRES_URL} ({type(exc).__name__}). "
            "Start it (pg_ctlcluster <version> main start) or set PATIENT_ONLINE_TEST_POSTGRES_URL.",
            pytrace=False,
        )
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    admin = postgres_admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def new_database_url(backend: str, tmp_path: Path) -> str:
    if backend == "postgres":
        return create_postgres_database()
    return f"sqlite:///{tmp_path / f'po-{uuid.uuid4().hex[:8]}.sqlite3'}"


def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        drop_postgres_database(url)


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def seeded_engine(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One database per backend for the whole run: schema from the models, demo data seeded once."""
    import patient_online.adapters.demo.models  # noqa: F401
    from patient_online import create_app
    from patient_online.adapters.demo.seed import seed
    from patient_online.models import Base

    url = new_database_url(backend, tmp_path_factory.mktemp("db"))
    engine = make_engine(url, PROJECT_ROOT)
    Base.metadata.create_all(engine)
    app = create_app({**TEST_SETTINGS, "DATABASE_ENGINE": engine})
    with app.app_context():
        seed(db.session)
        db.scoped.remove()
    yield engine
    engine.dispose()
    drop_database(url)


TEST_SETTINGS: dict[str, Any] = {
    "ENV": "test",
    "SECRET_KEY": "test-only-not-secret",
    "TESTING": True,
    "DEMO_DATA_ENABLED": True,
    "SERVER_NAME": None,
}


@pytest.fixture
def connection(seeded_engine: Engine) -> Iterator[Any]:
    """A connection in an outer transaction that is rolled back after the test."""
    conn = seeded_engine.connect()
    outer = conn.begin()
    db.factory.configure(bind=conn, join_transaction_mode="create_savepoint")
    yield conn
    db.scoped.remove()
    outer.rollback()
    conn.close()
    db.factory.configure(bind=seeded_engine, join_transaction_mode="rollback_only")


@pytest.fixture
def settings() -> dict[str, Any]:
    """Override in a test module to change settings for its app."""
    return {}


@pytest.fixture
def app(connection: Any, seeded_engine: Engine, settings: dict[str, Any]) -> Any:
    """The app, bound to the test's rolled-back connection.

    No app context is held open here: each client request gets its own, as in production. Tests that call
    services directly use the ``app_ctx`` fixture, or ``with app.app_context():`` around the call.
    """
    from patient_online import create_app

    application = create_app({**TEST_SETTINGS, "DATABASE_ENGINE": seeded_engine, **settings})
    db.factory.configure(bind=connection, join_transaction_mode="create_savepoint")
    return application


@pytest.fixture
def app_ctx(app: Any) -> Iterator[Any]:
    """An app context for the whole test, for service-level tests that make no client requests."""
    with app.app_context():
        yield app


@pytest.fixture
def session(app: Any) -> Any:
    """The database session services use (the same one requests use, on the test's connection)."""
    return db.session


@pytest.fixture
def uow(app: Any) -> Any:
    """A unit of work on the test's session, with the app's parts (clinical systems, notifier, slot memory)."""
    from patient_online.wiring import uow_factory

    return uow_factory(app)(db.session)


@pytest.fixture
def client(app: Any) -> Any:
    from tests.helpers import FormClient

    return FormClient(app.test_client())


@pytest.fixture
def demo_accounts() -> list[dict[str, Any]]:
    from tests.helpers import demo_accounts as accounts

    return accounts()


@pytest.fixture
def sign_in(client: Any) -> Any:
    """``sign_in(email)`` signs the client in with password and TOTP, as the demo account."""
    from tests.helpers import sign_in as do_sign_in

    def _sign_in(email: str) -> Any:
        return do_sign_in(client, email)

    return _sign_in


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say plainly which databases and which browser the tests ran on."""
    counts = {"SQLite": 0, "PostgreSQL": 0, "browser (Chromium)": 0, "multi-process (gunicorn)": 0}
    for report in terminalreporter.stats.get("passed", []):
        node = report.nodeid
        if "[sqlite" in node or "-sqlite" in node:
            counts["SQLite"] += 1
        if "[postgres" in node or "-postgres" in node:
            counts["PostgreSQL"] += 1
        if node.startswith("tests/e2e/"):
            counts["browser (Chromium)"] += 1
        if node.startswith("tests/system/"):
            counts["multi-process (gunicorn)"] += 1
    terminalreporter.write_sep("-", "where the tests ran")
    for where, passed in counts.items():
        terminalreporter.write_line(f"{where}: {passed} passed")
