"""Extension objects, created unbound here and bound to an app in create_app()."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf import CSRFProtect
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, scoped_session, sessionmaker


class Database:
    """The engine and a request-scoped session; services commit, the app removes it after each request."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.factory = sessionmaker(expire_on_commit=False)
        self.scoped = scoped_session(self.factory)

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
        self.scoped.remove()

    def new_session(self) -> Session:
        """A session of its own, for work outside the request's transaction (adapters, workers)."""
        return self.factory()


def make_engine(url: str, root: Path) -> Engine:
    """An engine for the URL; SQLite files are put relative to the project and tuned for concurrency."""
    options: dict[str, Any] = {"future": True}
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
    options.update(pool_pre_ping=True, pool_size=10, max_overflow=10)
    return create_engine(url, **options)


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


db = Database()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)
