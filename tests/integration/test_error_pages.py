"""Error pages need nothing that can fail: with the database gone, a signed-in page still gives the styled
"problem with the service" page (503, Retry-After, a reference the service desk can find in the logs), never
the server's bare error page; any other unhandled error gives the styled 500. The log line for it carries the
traceback and the request id, but no exception message (a database's can quote the values it was given)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.pool import NullPool

from patient_online.extensions import db
from patient_online.logging_setup import JsonFormatter

PATIENT = "patient.y02001@example.com"
SERVICE_PROBLEM = "Sorry, there is a problem with the service"
SECRET = "9434765919"  # a value a failing statement could quote back: it must never reach the log


Logs = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def logs(app: Any) -> Iterator[Logs]:
    """``logs()``: the app's JSON log lines so far, as the log collector receives them (after the app has set
    up its own logging, which replaces the handlers)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("patient_online")
    logger.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    finally:
        logger.removeHandler(handler)


def _dead_engine(backend: str, tmp_path: Any) -> Any:
    """An engine for a database that cannot be reached: a closed port, or a file in a missing folder."""
    if backend == "postgres":
        from tests.system.servers import free_port

        url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gone?connect_timeout=2"
    else:
        url = f"sqlite:///{tmp_path / 'missing' / 'gone.sqlite3'}"
    return create_engine(url, poolclass=NullPool)


def _assert_styled(response: Any, status: int) -> str:
    body = response.get_data(as_text=True)
    assert response.status_code == status, body[:500]
    assert 'class="nhsuk-header' in body, "the error page must be the service's own styled page"
    assert SERVICE_PROBLEM in body
    reference = response.headers["X-Request-ID"]
    assert reference
    assert f"Reference: {reference}" in body, "the page must give the patient the request id as a reference"
    return reference


def _error_line(lines: list[dict[str, Any]]) -> dict[str, Any]:
    errors = [line for line in lines if line.get("level") == "ERROR"]
    assert len(errors) == 1, lines
    return errors[0]


def test_a_signed_in_page_with_the_database_gone_gives_the_styled_503(
    client: Any, sign_in: Any, backend: str, tmp_path: Any, logs: Logs
) -> None:
    """The user loader (in before_request) is the first thing to fail; the page must not try it again."""
    sign_in(PATIENT)
    working = db.factory.kw["bind"]
    dead = _dead_engine(backend, tmp_path)
    db.scoped.remove()
    db.factory.configure(bind=dead)
    try:
        response = client.get("/home")
    finally:
        db.scoped.remove()
        db.factory.configure(bind=working)
        dead.dispose()
    reference = _assert_styled(response, 503)
    assert response.headers["Retry-After"].isdigit()
    assert "Sign out" not in response.get_data(as_text=True), "nothing about the account can be read now"
    # The same client goes on normally once the database is back: no stale session is left on the worker.
    assert client.get("/home").status_code == 200
    line = _error_line(logs())
    assert line["request_id"] == reference
    assert line["error_type"] == "sqlalchemy.exc.OperationalError"
    assert 'File "' in line["traceback"] and "OperationalError" in line["traceback"]


def test_the_database_failing_after_the_user_was_read_gives_the_styled_503(
    client: Any, sign_in: Any, connection: Any, logs: Logs
) -> None:
    """The page's own statements fail once the signed-in user was read: the error page must not read the user
    again (rolled back, it would) nor anything else."""
    sign_in(PATIENT)
    state = {"user_read": False}

    def fail(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        head = statement.lstrip()[:20].upper()
        if head.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            return  # the test's own transaction handling
        if not state["user_read"] and "user_account" in statement:
            state["user_read"] = True
            return
        if state["user_read"]:
            raise OperationalError(statement, parameters, ConnectionError("server closed the connection"))

    event.listen(connection, "before_cursor_execute", fail)
    try:
        response = client.get("/appointments")
    finally:
        event.remove(connection, "before_cursor_execute", fail)
    assert state["user_read"]
    reference = _assert_styled(response, 503)
    line = _error_line(logs())
    assert line["request_id"] == reference
    assert client.get("/appointments").status_code == 200


def test_an_unhandled_error_gives_the_styled_500_and_logs_no_values(
    client: Any, sign_in: Any, monkeypatch: pytest.MonkeyPatch, logs: Logs
) -> None:
    sign_in(PATIENT)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise DataError("SELECT * FROM patient WHERE nhs_number = %(n)s", {"n": SECRET}, ValueError(SECRET))

    monkeypatch.setattr("patient_online.web.patient.home.render_template", broken)
    response = client.get("/home")
    reference = _assert_styled(response, 500)
    assert "Retry-After" not in response.headers
    line = _error_line(logs())
    assert line["request_id"] == reference
    assert line["error_type"] == "sqlalchemy.exc.DataError"
    assert "broken" in line["traceback"], "the frames where it happened must be in the log"
    assert line["path"] == "/home"
    text = json.dumps(logs())
    assert SECRET not in text, "an exception's message can quote personal values: it must not be logged"


def test_an_error_outside_the_database_gives_the_styled_500(
    client: Any, monkeypatch: pytest.MonkeyPatch, logs: Logs
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"patient {SECRET} not handled")

    monkeypatch.setattr("patient_online.web.public.render_template", broken)
    response = client.get("/help")
    _assert_styled(response, 500)
    line = _error_line(logs())
    assert line["error_type"] == "builtins.RuntimeError"
    assert SECRET not in json.dumps(line)


def test_an_error_page_that_cannot_be_shown_for_want_of_the_database_gives_the_styled_503(
    client: Any, sign_in: Any, monkeypatch: pytest.MonkeyPatch, logs: Logs
) -> None:
    """The other error pages use the full layout, which reads the signed-in person (again, after the rollback):
    when that read fails, the page that needs nothing takes their place."""
    sign_in(PATIENT)

    def layout_read_fails(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT user_account.id FROM user_account", {}, ConnectionError("gone"))

    monkeypatch.setattr("patient_online.web.render_template", layout_read_fails)
    response = client.get("/no-such-page")
    reference = _assert_styled(response, 503)
    assert _error_line(logs())["request_id"] == reference
