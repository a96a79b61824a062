"""The PostgreSQL pool tests a connection before use only when it has waited a while, and reads that stand
alone run without a transaction of their own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from patient_online.extensions import Database, make_engine
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
