"""Keep the development server's own log free of personal data.

Werkzeug's server (``flask run``, ``make run``) writes one line per request with the full request line, query
string included, and decodes it: a reception search for an NHS number or a name would land in the log as
typed. The app already logs each request as one JSON line with the route only (logging_setup.py), so the
server's request lines are dropped, and anything else it logs has query strings cut off.
"""

from __future__ import annotations

import logging
import re

# How werkzeug's request handler formats a request line (WSGIRequestHandler.log_request).
_REQUEST_LINE = '"%s" %s %s'
_QUERY = re.compile(r"\?[^\s\"]*")


class DropQueryStrings(logging.Filter):
    """Drops the server's request lines; removes query strings from its other messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and _REQUEST_LINE in record.msg:
            return False
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = _QUERY.sub("?…", message), None
        return True


def init_app() -> None:
    """Fit the filter to werkzeug's logger once (it is process-wide; apps built again reuse it)."""
    logger = logging.getLogger("werkzeug")
    if not any(isinstance(f, DropQueryStrings) for f in logger.filters):
        logger.addFilter(DropQueryStrings())
