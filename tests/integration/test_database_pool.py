"""The PostgreSQL pool tests a connection before use only when it has waited a while, reads that stand
alone run without a transaction of their own, and a transaction that only read is committed, not rolled back."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from patient_online.extensions import Database, db, end_read_only, make_engine
from patient_online.settings import PROJECT_ROOT
from tests.conftest import POSTGRES_URL, postgres_admin_engine


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = make_engine(POSTGRES_URL, PROJECT_ROOT)
    yield engine
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    admin = postgres_admin_engine()
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def _age_idle_connections(engine: Engine, seconds: float) -> None:
    for record in list(engine.pool._pool.queue):  # type: ignore[attr-defined]
        record.info["idle_since"] -= seconds


def test_a_connection_that_waited_and_died_is_replaced_before_use(engine: Engine) -> None:
    dead = _backend_pid(engine)
    _terminate(dead)  # as a database restart or a dropped firewall session would
    _age_idle_connections(engine, 60)
    assert _backend_pid(engine) != dead  # the ping found it gone; the page got a fresh connection


def test_a_connection_back_moments_ago_is_used_without_a_ping_and_a_failure_renews_the_pool(engine: Engine) -> None:
    dead = _backend_pid(engine)
    _terminate(dead)
    with pytest.raises(OperationalError):  # no ping: under load a connection is seldom idle for long
        _backend_pid(engine)
    assert _backend_pid(engine) != dead  # the failure made the pool start afresh


def test_read_sessions_run_in_autocommit_on_a_postgresql_engine(engine: Engine) -> None:
    database = Database()
    database.factory.configure(bind=engine)
    with database.new_read_session() as session:
        assert session.execute(text("SELECT 1")).scalar_one() == 1
        assert session.connection().connection.dbapi_connection.autocommit is True  # type: ignore[union-attr]
    with database.new_session() as session:
        assert session.connection().connection.dbapi_connection.autocommit is False  # type: ignore[union-attr]


def test_read_sessions_join_a_tests_connection_like_any_other(engine: Engine) -> None:
    database = Database()
    with engine.connect() as conn:
        conn.begin()
        database.factory.configure(bind=conn, join_transaction_mode="create_savepoint")
        read: Any = database.new_read_session()
        assert read.get_bind() is conn
        read.close()


def test_a_pinged_connection_can_serve_a_read_without_a_transaction(engine: Engine) -> None:
    database = Database()
    database.factory.configure(bind=engine)
    _backend_pid(engine)
    _age_idle_connections(engine, 60)  # the next checkout pings it first
    with database.new_read_session() as session:
        assert session.execute(text("SELECT 1")).scalar_one() == 1
        assert session.connection().connection.dbapi_connection.autocommit is True  # type: ignore[union-attr]


# A transaction that only read ends with COMMIT: psycopg forgets its prepared statements at every ROLLBACK -----
def _prepared_statements(engine: Engine) -> int:
    assert engine.pool.checkedin() == 1  # type: ignore[attr-defined]  # the one connection the reads used
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one())


def _read(session: Any, times: int = 6) -> None:
    for _ in range(times):  # psycopg prepares a statement from its sixth run on a connection
        assert session.execute(text("SELECT 1 + :n"), {"n": 1}).scalar_one() == 2


def test_a_transaction_that_only_read_is_committed_so_prepared_statements_survive(engine: Engine) -> None:
    database = Database()
    database.factory.configure(bind=engine)
    with database.new_session() as session:
        _read(session)
    assert _prepared_statements(engine) == 0  # rolled back: psycopg deallocated everything it had prepared

    for _ in range(3):  # as one request after another would
        with database.new_session() as session:
            _read(session)
            end_read_only(session)
            assert not session.in_transaction()
    assert _prepared_statements(engine) >= 1


@pytest.fixture
def probe(engine: Engine) -> Iterator[str]:
    name = f"po_probe_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {name} (n integer)"))
    yield name
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {name}"))


def test_a_transaction_that_wrote_or_failed_is_left_to_be_rolled_back(engine: Engine, probe: str) -> None:
    database = Database()
    database.factory.configure(bind=engine)
    with database.new_session() as session:
        _read(session, 1)
        session.execute(text(f"INSERT INTO {probe} VALUES (1)"))  # written, never committed by the request
        end_read_only(session)
        assert session.in_transaction()
    with database.new_session() as session:
        session.begin_nested()  # a savepoint counts as writing
        _read(session, 1)
        end_read_only(session)
        assert session.in_transaction()
    with database.new_session() as session, pytest.raises(DBAPIError):
        session.execute(text("SELECT 1 / 0"))
    with database.new_session() as session:
        _read(session, 1)
        with pytest.raises(DBAPIError):
            session.execute(text("SELECT 1 / 0"))
        end_read_only(session)  # the failed transaction is not committed (nor does this raise)
        assert session.in_transaction()
    with engine.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {probe}")).scalar_one() == 0


def test_a_request_that_only_read_keeps_the_prepared_statements(engine: Engine) -> None:
    from patient_online import create_app
    from tests.conftest import TEST_SETTINGS

    previous = dict(db.factory.kw)
    try:
        app = create_app({**TEST_SETTINGS, "DATABASE_ENGINE": engine})  # binds the request session to it
        app.add_url_rule("/probe/read", "probe_read", lambda: (_read(db.session), "read")[1])
        client = app.test_client()
        for _ in range(3):
            assert client.get("/probe/read").status_code == 200
        assert _prepared_statements(engine) >= 1
    finally:
        db.factory.configure(**previous)


def test_a_read_only_commit_that_fails_leaves_the_page_standing(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    database = Database()
    database.factory.configure(bind=engine)
    log = logging.getLogger("patient_online.database")  # the app's logs do not propagate to the root logger
    log.addHandler(caplog.handler)
    try:
        with database.new_session() as session:
            _read(session, 1)
            pid = int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
            _terminate(pid)  # the connection is lost between the page's reads and the end of the request
            end_read_only(session)  # does not raise: the page was already made
    finally:
        log.removeHandler(caplog.handler)
    assert "read-only transaction not committed" in caplog.text
    assert _backend_pid(engine) != pid  # the pool made a fresh connection
