"""The simulator's HTTP side: GP Connect header and JWT checks, routing, and the /_control endpoint.

Standard library only (``http.server.ThreadingHTTPServer``).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from patient_online.adapters.gpconnect import constants as c
from patient_online.adapters.gpconnect.constants import Interaction
from patient_online.adapters.gpconnect.jwt import InvalidToken, check_claims, decode_unsigned

from . import resources as fhir
from .state import Params, Reply, Seen, SimError, SimulatorState

Json = dict[str, Any]
Handler = Callable[[SimulatorState, "Request"], Reply]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: Params
    headers: dict[str, str]
    body: Json
    match: re.Match[str]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    interaction: str
    handler: Handler
    patient_facing: bool = False


ROUTES: tuple[Route, ...] = (
    Route("GET", re.compile(r"/Patient"), Interaction.SEARCH_PATIENT, lambda s, r: s.find_patient(r.params)),
    Route("GET", re.compile(r"/Slot"), Interaction.SEARCH_SLOTS, lambda s, r: s.search_slots(r.params)),
    Route("POST", re.compile(r"/Appointment"), Interaction.CREATE_APPOINTMENT, lambda s, r: s.book(r.body)),
    Route(
        "GET",
        re.compile(r"/Appointment/([^/]+)"),
        Interaction.READ_APPOINTMENT,
        lambda s, r: s.read_appointment(r.match.group(1)),
    ),
    Route(
        "PUT",
        re.compile(r"/Appointment/([^/]+)"),
        Interaction.CANCEL_APPOINTMENT,
        lambda s, r: s.cancel_appointment(r.match.group(1), r.body, r.headers.get("if-match")),
    ),
    Route(
        "PUT",
        re.compile(r"/Appointment/([^/]+)"),
        Interaction.AMEND_APPOINTMENT,
        lambda s, r: s.amend_appointment(r.match.group(1), r.body, r.headers.get("if-match")),
    ),
    Route(
        "GET",
        re.compile(r"/(Practitioner|Location|Organization)/([^/]+)"),
        "",  # the interaction id depends on the resource type: see interaction_for
        lambda s, r: s.read_reference(r.match.group(1), r.match.group(2)),
    ),
    Route(
        "GET",
        re.compile(r"/Patient/([^/]+)/Appointment"),
        Interaction.SEARCH_PATIENT_APPOINTMENTS,
        lambda s, r: s.patient_appointments(r.match.group(1), r.params),
    ),
    Route(
        "POST",
        re.compile(r"/Patient/\$gpc\.getstructuredrecord"),
        Interaction.STRUCTURED_RECORD,
        lambda s, r: s.structured_record(r.body),
    ),
    Route(
        "GET",
        re.compile(r"/Patient/([^/]+)/MedicationRequest"),
        Interaction.SEARCH_MEDICATION_REQUESTS,
        lambda s, r: s.medication_requests(r.match.group(1), r.params),
        patient_facing=True,
    ),
    Route(
        "POST",
        re.compile(r"/Task"),
        Interaction.CREATE_TASK,
        lambda s, r: s.create_task(r.body, r.headers.get("x-request-id", "")),
        patient_facing=True,
    ),
    Route("GET", re.compile(r"/Task"), Interaction.SEARCH_TASKS, lambda s, r: s.search_tasks(r.params), True),
    Route(
        "PUT",
        re.compile(r"/Task/([^/]+)"),
        Interaction.UPDATE_TASK,
        lambda s, r: s.update_task(r.match.group(1), r.body),
        patient_facing=True,
    ),
)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


_ASID = re.compile(r"^\d{12}$")
_READ_INTERACTIONS = {
    "Practitioner": Interaction.READ_PRACTITIONER,
    "Location": Interaction.READ_LOCATION,
    "Organization": Interaction.READ_ORGANIZATION,
}
# Values that say nothing about who is asking: the smartcard identifiers of the requesting practitioner must be
# real ones (configurable: the specification lets a user without a smartcard send "UNK").
_PLACEHOLDERS = frozenset({"", "UNK", "UNKNOWN", "0", "000000000000", "patient-online-gateway"})


def interaction_for(route: Route, match: re.Match[str]) -> str:
    """The Ssp-InteractionID the route expects (read routes share a pattern across resource types)."""
    return route.interaction or _READ_INTERACTIONS.get(match.group(1), "")


def bad_request(diagnostics: str) -> SimError:
    return SimError(400, c.BAD_REQUEST, "invalid", diagnostics)


def bad_token(diagnostics: str) -> SimError:
    return SimError(400, c.BAD_REQUEST, "invalid", "Invalid JWT: " + diagnostics)


def invalid_token_resource(diagnostics: str) -> SimError:
    return SimError(422, c.INVALID_RESOURCE, "invalid", "Invalid JWT: " + diagnostics)


def _identifiers(resource: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in resource.get("identifier") or []:
        if isinstance(item, dict) and isinstance(item.get("system"), str):
            found.setdefault(item["system"], str(item.get("value") or ""))
    return found


def check_token_resources(state: SimulatorState, claims: dict[str, Any]) -> None:
    """requesting_device, requesting_organization and requesting_practitioner as the specification requires."""
    device = claims["requesting_device"]
    device_ids = _identifiers(device)
    if not device_ids or not all(device_ids.values()):
        raise invalid_token_resource("requesting_device needs an identifier with a system and a value")
    if not str(device.get("model") or "").strip() or not str(device.get("version") or "").strip():
        raise invalid_token_resource("requesting_device needs a model and a version")
    organisation = claims["requesting_organization"]
    ods = _identifiers(organisation).get(c.ODS_SYSTEM, "")
    if not ods.strip():
        raise invalid_token_resource("requesting_organization needs an ODS code identifier")
    if not str(organisation.get("name") or "").strip():
        raise invalid_token_resource("requesting_organization needs a name")
    practitioner = claims["requesting_practitioner"]
    ids = _identifiers(practitioner)
    if c.SDS_USER_SYSTEM not in ids or not ids[c.SDS_USER_SYSTEM]:
        raise invalid_token_resource("requesting_practitioner needs an SDS user id identifier")
    if c.SDS_ROLE_PROFILE_SYSTEM not in ids or not ids[c.SDS_ROLE_PROFILE_SYSTEM]:
        raise invalid_token_resource("requesting_practitioner needs an SDS role profile id identifier")
    local = [v for k, v in ids.items() if k not in (c.SDS_USER_SYSTEM, c.SDS_ROLE_PROFILE_SYSTEM) and v]
    if not local:
        raise invalid_token_resource("requesting_practitioner needs a local user identifier")
    names = [n for n in practitioner.get("name") or [] if isinstance(n, dict)]
    if not any(n.get("family") and n.get("given") for n in names):
        raise invalid_token_resource("requesting_practitioner needs a family and a given name")
    if state.require_smartcard_ids:
        for system in (c.SDS_USER_SYSTEM, c.SDS_ROLE_PROFILE_SYSTEM):
            if ids[system].strip().upper() in _PLACEHOLDERS:
                raise invalid_token_resource(f"requesting_practitioner {system} is a placeholder, not a real id")
        if str(practitioner.get("id") or "").strip() in _PLACEHOLDERS:
            raise invalid_token_resource("requesting_practitioner.id must identify the user, not the system")


def check_headers(
    state: SimulatorState,
    route: Route,
    interaction: str,
    headers: dict[str, str],
    has_body: bool,
    audience: str,
) -> None:
    """Enforce the Spine headers, the interaction id, the media types and the JWT; raise SimError otherwise."""
    for name in ("ssp-traceid", "ssp-from", "ssp-to", "ssp-interactionid", "authorization"):
        if not headers.get(name, "").strip():
            raise bad_request(f"Missing header {name}")
    if not _UUID.match(headers["ssp-traceid"]):
        raise bad_request("Ssp-TraceID must be a UUID")
    if not _ASID.match(headers["ssp-from"]):
        raise bad_request("Ssp-From must be the consumer's ASID (12 digits)")
    if not _ASID.match(headers["ssp-to"]):
        raise bad_request("Ssp-To must be the provider's ASID (12 digits)")
    if headers["ssp-to"] != state.provider_asid:
        raise SimError(403, c.ACCESS_DENIED, "forbidden", "Ssp-To is not this provider's ASID")
    if headers["ssp-interactionid"] != interaction:
        raise bad_request("Ssp-InteractionID does not match the request")
    accept = headers.get("accept", c.FHIR_JSON)
    if c.FHIR_JSON not in accept and "*/*" not in accept:
        raise SimError(406, c.BAD_REQUEST, "not-supported", "Accept must allow application/fhir+json")
    if has_body and not headers.get("content-type", "").startswith(c.FHIR_JSON):
        raise SimError(415, c.BAD_REQUEST, "not-supported", "Content-Type must be application/fhir+json")
    if route.patient_facing and not _UUID.match(headers.get("x-request-id", "")):
        raise bad_request("X-Request-ID must be a UUID")
    scheme, _, token = headers["authorization"].partition(" ")
    if scheme != "Bearer" or not token:
        raise bad_request("Authorization must be a Bearer token")
    try:
        header, claims = decode_unsigned(token)
    except InvalidToken as exc:
        raise bad_token(str(exc)) from None
    if header.get("alg") != "none":
        raise bad_token("alg must be none")
    problems = check_claims(claims)
    if problems:
        kind_problems = [p for p in problems if p.endswith("resource")]
        raise (invalid_token_resource if kind_problems and len(kind_problems) == len(problems) else bad_token)(
            "; ".join(problems)
        )
    if claims["aud"] != audience:
        raise bad_token("aud must be the provider's service root URL the request was sent to")
    if claims["requested_scope"] != c.SCOPES[interaction]:
        raise bad_token("requested_scope does not fit the interaction")
    check_token_resources(state, claims)


class SimulatorHandler(BaseHTTPRequestHandler):
    """One request against the simulator."""

    server: SimulatorServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: tests run many requests

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _send(self, reply: Reply) -> None:
        payload = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", c.FHIR_JSON + ";charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout); nothing to tell it

    def _body(self) -> tuple[Json, bool]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}, False
        raw = self.rfile.read(length)
        try:
            value = json.loads(raw)
        except ValueError:
            raise bad_request("Body is not JSON") from None
        if not isinstance(value, dict):
            raise bad_request("Body must be a JSON object")
        return value, True

    def _handle(self, method: str) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        path = url.path
        if path.startswith(("/http://", "/https://")):
            # Through the Spine Secure Proxy: /<provider service root URL>/<resource>; this simulator plays both.
            target = path[1:]
            root = self.server.base_url
            path = target[len(root) :] if target.startswith(root + "/") else "/_unknown_provider"
        else:
            path = path.removeprefix(self.server.prefix) or "/"
        try:
            body, has_body = self._body()
        except SimError as error:
            self._send(Reply(error.status, error.body()))
            return
        if path == "/_control":
            self._control(method, body)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self._inflict(state):
            return
        route, match = self._route(method, path, headers.get("ssp-interactionid", ""))
        state.record(Seen(method, path, headers.get("ssp-interactionid", ""), headers.get("ssp-traceid", "")))
        try:
            if route is None or match is None:
                known = any(r.pattern.fullmatch(path) for r in ROUTES)
                raise (
                    SimError(405, "NOT_IMPLEMENTED", "not-supported", "Method not allowed")
                    if known
                    else SimError(404, c.NO_RECORD_FOUND, "not-found", "No such endpoint")
                )
            check_headers(state, route, interaction_for(route, match), headers, has_body, self.server.base_url)
            params = parse_qs(url.query, keep_blank_values=True)
            reply = route.handler(state, Request(method, path, params, headers, body, match))
        except SimError as error:
            state.refuse(headers.get("ssp-interactionid", ""), error)
            reply = Reply(error.status, error.body())
        except Exception:  # a simulator bug must still answer like a provider would
            reply = Reply(500, fhir.outcome(c.INTERNAL_SERVER_ERROR, "exception", "Simulator error"))
        self._send(reply)

    @staticmethod
    def _route(method: str, path: str, interaction: str = "") -> tuple[Route | None, re.Match[str] | None]:
        """The route for the request; where several share a method and path (cancel and amend are both PUT
        /Appointment/{id}), the one whose interaction id the request names."""
        candidates = [
            (route, match)
            for route in ROUTES
            if route.method == method and (match := route.pattern.fullmatch(path)) is not None
        ]
        for route, match in candidates:
            if interaction_for(route, match) == interaction:
                return route, match
        return candidates[0] if candidates else (None, None)

    def _inflict(self, state: SimulatorState) -> bool:
        """Apply the configured delay and failure; True when the request has been dealt with."""
        with state.lock:
            delay = state.delay
        if delay > 0:
            time.sleep(delay)
        failure = state.take_failure()
        if failure is None:
            return False
        if failure == "drop":
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return True
        status = int(failure) if failure.isdigit() else 500
        spine = c.INTERNAL_SERVER_ERROR if status == 500 else str(status)
        self._send(
            Reply(status, fhir.outcome(spine, "exception" if status == 500 else "transient", "Simulated failure"))
        )
        return True

    def _control(self, method: str, body: Json) -> None:
        state = self.server.state
        if method == "POST":
            if body.get("reset"):
                state.reset()
            if any(k in body for k in ("delay", "fail", "fail_count", "unsupported")):
                state.configure(
                    delay=body.get("delay"),
                    fail=None if body.get("fail") is None else str(body["fail"]),
                    fail_count=body.get("fail_count"),
                    unsupported=body.get("unsupported"),
                )
            task = body.get("task_status")
            if isinstance(task, dict):
                state.set_task_status(str(task.get("id")), str(task.get("status")), str(task.get("reason") or ""))
        self._send(Reply(200, state.snapshot()))


class SimulatorServer(ThreadingHTTPServer):
    """A threading HTTP server holding one SimulatorState."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: SimulatorState | None = None, prefix: str = "") -> None:
        super().__init__(address, SimulatorHandler)
        self.state = state or SimulatorState()
        self.prefix = prefix.rstrip("/")
        self._thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # client disconnects are expected (timeouts, dropped connections)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}{self.prefix}"

    def start(self) -> SimulatorServer:
        """Serve in a background daemon thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="gpconnect-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def start_simulator(
    host: str = "127.0.0.1", port: int = 0, state: SimulatorState | None = None, prefix: str = ""
) -> tuple[str, SimulatorServer]:
    """Start a simulator in a background thread (ephemeral port by default); returns (base_url, server)."""
    server = SimulatorServer((host, port), state, prefix).start()
    return server.base_url, server
