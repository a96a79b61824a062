"""Opt-in measurements for benchmarks: how many SQL statements each request ran.

With ``QUERY_COUNT_HEADER`` on (``PATIENT_ONLINE_QUERY_COUNT_HEADER=true``) every response carries an
``X-Query-Count`` header: the statements the request's thread sent to the database, the clinical-system
adapter's own included (the demo adapter uses the same engine). Off by default; it costs one counter
increment per statement when on.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask, Response
from sqlalchemy import Engine, event

from .extensions import db

HEADER = "X-Query-Count"
_counter = threading.local()


def _count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
    _counter.n = getattr(_counter, "n", 0) + 1


def _reset() -> None:
    _counter.n = 0


def _add_header(response: Response) -> Response:
    response.headers[HEADER] = str(getattr(_counter, "n", 0))
    return response


def query_count() -> int:
    """Statements run by this thread since the current request began."""
    return int(getattr(_counter, "n", 0))


def init_app(app: Flask) -> None:
    """Count statements per request and report them in a header, when QUERY_COUNT_HEADER is on."""
    if not app.config.get("QUERY_COUNT_HEADER"):
        return
    engine: Engine | None = db.engine
    if engine is None:
        return
    if not event.contains(engine, "before_cursor_execute", _count):
        event.listen(engine, "before_cursor_execute", _count)
    # First of all before_request functions, so the user loader's and the gates' queries are counted too.
    app.before_request_funcs.setdefault(None, []).insert(0, _reset)
    app.after_request(_add_header)
