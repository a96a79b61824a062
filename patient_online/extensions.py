"""Extension objects, created unbound here and bound to an app in create_app()."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, cast

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf import CSRFProtect
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, scoped_session, sessionmaker

logger = logging.getLogger("patient_online.database")


class Database:
    """The engine and a request-scoped session; services commit, the app removes it after each request."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.factory = sessionmaker(expire_on_commit=False)
        self.scoped = scoped_session(self.factory)
        self._autocommit: tuple[Engine, Engine] | None = None

    @property
    def session(self) -> Session:
        """The current request's (or thread's) session."""
        return cast(Session, self.scoped)

    def init_app(self, app: Flask) -> None:
        given = app.config.get("DATABASE_ENGINE")  # tests hand in an engine they manage
        self.engine = (
            given if given is not None else make_engine(app.config["DATABASE_URL"], Path(app.root_path).parent)
        )
        self.factory.configure(bind=self.engine)
        app.teardown_appcontext(self._remove)

    def _remove(self, exc: BaseException | None) -> None:
        if exc is None and self.scoped.registry.has():
            end_read_only(self.scoped.registry())
        self.scoped.remove()

    def discard(self) -> None:
        """Drop the request's session after a failure, never raising: its transaction (or its connection, when
        the database went away) is given up, so the worker's next request starts from a clean session and a
        connection the pool has tested or replaced, without restarting the worker."""
        try:
            self.scoped.remove()
        except Exception as exc:  # a dead connection cannot even be rolled back: the pool has invalidated it
            logger.warning("session not closed cleanly", extra={"fields": {"error": type(exc).__name__}})

    def new_session(self) -> Session:
        """A session of its own, for work outside the request's transaction (adapters, workers)."""
        return self.factory()

    def new_read_session(self) -> Session:
        """A session of its own for reads that need no transaction (each a statement or two that stand alone):
        on PostgreSQL its statements run in autocommit, which saves the BEGIN and ROLLBACK round trips.
        Bound to anything but a plain PostgreSQL engine (SQLite, or a test's connection), it is ``new_session``."""
        bind = self.factory.kw.get("bind")
        if not isinstance(bind, Engine) or bind.dialect.name != "postgresql":
            return self.factory()
        if self._autocommit is None or self._autocommit[0] is not bind:
            self._autocommit = (bind, bind.execution_options(isolation_level="AUTOCOMMIT"))
        return self.factory(bind=self._autocommit[1])


def make_engine(url: str, root: Path) -> Engine:
    """An engine for the URL; SQLite files are put relative to the project and tuned for concurrency."""
    # Statement parameters are kept out of the exceptions' messages: they can be personal values.
    options: dict[str, Any] = {"future": True, "hide_parameters": True}
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != url and not path.startswith("/") and path != ":memory:":
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{target}"
        options["connect_args"] = {"check_same_thread": False, "timeout": 30}
        engine = create_engine(url, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    options.update(pool_size=10, max_overflow=10)
    engine = create_engine(url, **options)
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_if_idle)
    event.listen(engine, "begin", _transaction_begins)
    event.listen(engine, "before_cursor_execute", _note_writes)
    return engine


# A request whose transaction only read is ended with COMMIT rather than ROLLBACK. For such a transaction the
# two are the same, but at a ROLLBACK psycopg forgets every statement it has prepared on the connection
# (DEALLOCATE ALL, as a DDL statement rolled back could leave a plan pointing at nothing), so PostgreSQL
# parses and plans the next ones again: the signed-in account's read costs it about 2 ms of CPU unprepared
# and 0.4 ms prepared, and every page that follows on that connection pays the same.
TRANSACTION_WROTE = "patient_online.transaction_wrote"


def _transaction_begins(conn: Any) -> None:
    conn.info[TRANSACTION_WROTE] = False


def _note_writes(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
    # Anything but a plain SELECT counts as a write (a savepoint, a CTE, DDL): such a transaction is rolled back.
    if conn.info.get(TRANSACTION_WROTE) is False and statement.lstrip()[:6].upper() != "SELECT":
        conn.info[TRANSACTION_WROTE] = True


def end_read_only(session: Session) -> None:
    """Commit the session's transaction when it has only read (see above); leave anything else as it is, to be
    rolled back when the session is removed."""
    if not session.in_transaction() or session.new or session.dirty or session.deleted:
        return
    connection = session.connection()
    if connection.info.get(TRANSACTION_WROTE) is not False:
        return
    status = getattr(getattr(connection.connection.dbapi_connection, "info", None), "transaction_status", None)
    if getattr(status, "name", "") != "INTRANS":  # after a failed statement: that one is rolled back
        return
    try:
        session.commit()
    except SQLAlchemyError as exc:  # it only read: the page stands; the session's removal cleans up
        logger.warning("read-only transaction not committed", extra={"fields": {"error": type(exc).__name__}})


# A connection that has waited in the pool a while is tested before use (the database may have restarted or
# a firewall dropped it); one back from a request moments ago is not. SQLAlchemy's pool_pre_ping tests every
# checkout, a round trip each, and a patient page checks out two or three connections.
PING_AFTER_IDLE_SECONDS = 10.0


def _note_checkin(dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return  # new, or back from a request moments ago
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
        dbapi_connection.rollback()  # leave no transaction open: an autocommit session may take this connection
    except Exception as exc:  # the pool makes a new connection and tries again
        raise DisconnectionError() from exc


def database_unreachable(exc: BaseException) -> bool:
    """Whether the error (or one it was raised from) says the database cannot be used just now: it is down or
    restarting, a connection was lost, the pool had none to give, a lock could not be had. Trying again later
    helps with these; with any other error it does not."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OperationalError | InterfaceError | PoolTimeout | DisconnectionError):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, decide when transactions begin (so savepoints work) ...
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # ... deferred by default, so readers never block anyone; a transaction that will write after reading
    # asks for the write lock up front (execution option sqlite_immediate), so concurrent writers queue
    # on the busy timeout instead of failing mid-way.
    mode = "IMMEDIATE" if conn.get_execution_options().get("sqlite_immediate") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


WRITE_TRANSACTION = {"sqlite_immediate": True}


def begin_write(session: Session) -> None:
    """End any transaction the session holds (a no-op when none is open) and start one that holds the write
    lock from its start (SQLite; PostgreSQL takes row locks as it goes), for work that reads and then writes:
    concurrent writers then queue on the busy timeout instead of failing half-way with "database is locked"."""
    target: Session = session if isinstance(session, Session) else cast(Any, session)()  # a scoped_session
    if target.in_transaction():
        target.commit()
    target.connection(execution_options=WRITE_TRANSACTION)


db = Database()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)
