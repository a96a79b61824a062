"""Structured logs: one JSON line per request with a request id; never personal or clinical data.

A line logged with an exception carries its traceback as frames and exception types only: an exception's
message can quote what it was given (a database error quotes the statement's values, a KeyError its key).
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
import uuid
from types import TracebackType

from flask import Flask, Response, g, has_request_context, request


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context() and g.get("request_id"):
            data["request_id"] = g.request_id  # every line of a request can be found from its reference
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            data.update(extra)
        if record.exc_info:
            data["error"] = record.exc_info[0].__name__ if record.exc_info[0] else "error"
            if record.exc_info[1] is not None:
                data["traceback"] = traceback_without_messages(record.exc_info[1])
        return json.dumps(data, default=str)


def exception_type(exc: BaseException) -> str:
    """The exception's class with its module (``sqlalchemy.exc.OperationalError``): its message is not logged."""
    kind = type(exc)
    return f"{kind.__module__}.{kind.__qualname__}"


def traceback_without_messages(exc: BaseException) -> str:
    """A traceback as Python prints it, the chain of causes included, but each exception given by its type
    alone: the frames say where it happened, while a message could quote values a patient gave."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    joint = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, joint))
        if current.__cause__ is not None:
            current, joint = current.__cause__, "The above exception was the direct cause of the following exception:"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, joint = current.__context__, "During handling of the above exception, another exception occurred:"
        else:
            current = None
    parts: list[str] = []
    for item, following in reversed(chain):
        parts.extend(_frames(item.__traceback__))
        parts.append(exception_type(item) + "\n")
        if following:
            parts.append(f"\n{following}\n\n")
    return "".join(parts)


def _frames(tb: TracebackType | None) -> list[str]:
    if tb is None:
        return []
    return ["Traceback (most recent call last):\n", *traceback.extract_tb(tb).format()]


def init_app(app: Flask) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("patient_online")
    logger.handlers[:] = [handler]
    logger.setLevel(app.config.get("LOG_LEVEL", "INFO"))
    logger.propagate = False
    access = logging.getLogger("patient_online.request")

    @app.before_request
    def _start() -> None:
        g.request_id = request.headers.get("X-Request-ID", "")[:40] or uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _log(response: Response) -> Response:
        elapsed = (time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000
        response.headers["X-Request-ID"] = g.get("request_id", "")
        # The path only: query strings can carry search terms such as names or NHS numbers.
        access.info(
            "request",
            extra={
                "fields": {
                    "request_id": g.get("request_id"),
                    "method": request.method,
                    "path": request.url_rule.rule if request.url_rule else "unmatched",
                    "status": response.status_code,
                    "ms": round(elapsed, 1),
                }
            },
        )
        return response
