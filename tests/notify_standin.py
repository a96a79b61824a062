"""A local stand-in of the GOV.UK Notify API (v2), for tests: it checks what the real API checks.

- ``Authorization: Bearer <JWT>`` signed (HS256) with the API key's secret, ``iss`` the service id, ``iat`` within
  30 seconds of now: otherwise 403 ``AuthError``;
- ``POST /v2/notifications/email`` and ``/sms``: a JSON body with a known ``template_id`` of the right type,
  ``email_address`` or ``phone_number``, ``personalisation`` holding every placeholder of the template, and an
  optional ``reference``: otherwise 400 ``BadRequestError`` / ``ValidationError``; 201 with the real response's
  shape when all is well;
- ``GET /v2/notifications?reference=...``: the notifications sent with that reference;
- ``fail(503, times=3)`` makes the next requests fail with that status (500, 503 or 429) before it recovers.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt

SERVICE_ID = "26785a09-ab16-4eb0-8407-a37497a57506"
SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
API_KEY = f"test_key-{SERVICE_ID}-{SECRET}"


@dataclass
class Template:
    id: str
    type: str  # "email" or "sms"
    placeholders: tuple[str, ...] = ("subject", "body")


@dataclass
class NotifyStandin:
    templates: dict[str, Template] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    base_url: str = ""

    def template(self, kind: str, *placeholders: str) -> str:
        """Register a template of ``kind`` ("email"/"sms") and return its id."""
        template = Template(str(uuid.uuid4()), kind, placeholders or ("subject", "body"))
        self.templates[template.id] = template
        return template.id

    def fail(self, status: int, times: int) -> None:
        """Answer the next ``times`` requests with ``status`` (a Notify outage, or rate limiting with 429)."""
        self.failures.extend([status] * times)

    # The API --------------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        if self.failures:
            status = self.failures.pop(0)
            error = "RateLimitError" if status == 429 else "Exception"
            return self._error(status, error, "Internal server error" if status >= 500 else "Exceeded rate limit")
        problem = self._auth_problem(headers.get("Authorization", ""))
        if problem:
            return self._error(403, "AuthError", problem)
        url = urlparse(path)
        if method == "GET" and url.path == "/v2/notifications":
            reference = parse_qs(url.query).get("reference", [""])[0]
            found = [n for n in self.sent if not reference or n["reference"] == reference]
            return 200, {"notifications": list(reversed(found)), "links": {"current": url.path}}
        kind = {"/v2/notifications/email": "email", "/v2/notifications/sms": "sms"}.get(url.path)
        if method != "POST" or kind is None:
            return self._error(404, "ResourceNotFound", "Not found")
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return self._error(400, "BadRequestError", "Invalid JSON")
        return self._send(kind, data)

    def _auth_problem(self, header: str) -> str:
        if not header.startswith("Bearer "):
            return "Unauthorized: authentication token must be provided"
        token = header.removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["iss", "iat"]})
        except jwt.PyJWTError as exc:
            return f"Invalid token: {type(exc).__name__}"
        if claims["iss"] != SERVICE_ID:
            return "Invalid token: service not found"
        if abs(time.time() - float(claims["iat"])) > 30:
            return "Error: Your system clock must be accurate to within 30 seconds"
        return ""

    def _send(self, kind: str, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        template = self.templates.get(str(data.get("template_id", "")))
        if template is None:
            return self._error(400, "BadRequestError", "Template not found")
        if template.type != kind:
            return self._error(400, "BadRequestError", f"{kind} template is not suitable for {template.type}")
        to_field = "email_address" if kind == "email" else "phone_number"
        to = str(data.get(to_field, ""))
        valid = (
            re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", to) if kind == "email" else re.fullmatch(r"\+?[\d ]{10,15}", to)
        )
        if not valid:
            return self._error(400, "ValidationError", f"{to_field} Not a valid {kind} address")
        personalisation = data.get("personalisation") or {}
        if not isinstance(personalisation, dict):
            return self._error(400, "ValidationError", "personalisation is not of type object")
        missing = [p for p in template.placeholders if p not in personalisation]
        if missing:
            return self._error(400, "BadRequestError", f"Missing personalisation: {', '.join(missing)}")
        reference = data.get("reference")
        if reference is not None and not isinstance(reference, str):
            return self._error(400, "ValidationError", "reference is not of type string")
        notification_id = str(uuid.uuid4())
        body = str(personalisation.get("body", ""))
        self.sent.append(
            {
                "id": notification_id,
                "reference": reference,
                "type": kind,
                "to": to,
                "template_id": template.id,
                "personalisation": personalisation,
            }
        )
        content: dict[str, Any] = (
            {
                "subject": str(personalisation.get("subject", "")),
                "body": body,
                "from_email": "gp@notifications.service.gov.uk",
            }
            if kind == "email"
            else {"body": body, "from_number": "GOVUK"}
        )
        return 201, {
            "id": notification_id,
            "reference": reference,
            "content": content,
            "uri": f"{self.base_url}/v2/notifications/{notification_id}",
            "template": {
                "id": template.id,
                "version": 1,
                "uri": f"{self.base_url}/services/{SERVICE_ID}/templates/{template.id}",
            },
            "scheduled_for": None,
        }

    def _error(self, status: int, error: str, message: str) -> tuple[int, dict[str, Any]]:
        self.refused.append((status, message))
        return status, {"status_code": status, "errors": [{"error": error, "message": message}]}


@contextmanager
def running(standin: NotifyStandin | None = None) -> Iterator[NotifyStandin]:
    """Serve ``standin`` on a free local port for the duration of the block; ``base_url`` says where."""
    notify = standin or NotifyStandin()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, payload = notify.handle(self.command, self.path, self.headers, self.rfile.read(length))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _answer
        do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    notify.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield notify
    finally:
        server.shutdown()
        server.server_close()
