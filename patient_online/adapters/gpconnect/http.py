"""The HTTP side of the GP Connect adapter: headers, bearer token, timeouts and error mapping.

One ``GPConnectHttp`` per practice link. It logs the interaction, status, Spine code and trace id of
failures and nothing else: URLs (which carry NHS numbers) and bodies are never logged.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import ssl
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from patient_online.adapters import deadline
from patient_online.domain.errors import ClinicalSystemUnavailable

from . import constants as c
from .errors import map_error
from .fhir_parse import Json, parse_outcome
from .jwt import Requester, build_token

log = logging.getLogger("patient_online.adapters.gpconnect")


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom the adapter talks to one practice's GP Connect provider."""

    base_url: str
    provider_asid: str
    consumer_asid: str
    provider_ods: str
    consumer_ods: str
    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    api_key: str = ""
    requester: Requester = field(default_factory=Requester)
    # Through the Spine Secure Proxy every URL is <proxy>/<provider's base URL>/<path>; the token's aud stays the
    # provider's service root URL, as the specification's audit rules say.
    ssp_url: str = ""
    # Mutual TLS: this gateway's client certificate and key (PEM files) and the CA bundle to trust (empty: the
    # system's); as Spine requires on HSCN.
    client_cert: str = ""
    client_key: str = ""
    ca_bundle: str = ""

    @property
    def service_root(self) -> str:
        """Where requests go: the provider's base URL, behind the proxy's prefix when sent through it."""
        base = self.base_url.rstrip("/")
        return f"{self.ssp_url.rstrip('/')}/{base}" if self.ssp_url else base

    def tls(self) -> ssl.SSLContext | bool:
        """The TLS settings of the link: a context with the client certificate and CA bundle when set."""
        if not (self.client_cert or self.ca_bundle):
            return True
        context = ssl.create_default_context(cafile=self.ca_bundle or None)
        if self.client_cert:
            context.load_cert_chain(self.client_cert, self.client_key or None)
        return context


@dataclass(frozen=True)
class Response:
    """What a successful call returned: the JSON body, the status and the ETag (if any)."""

    status: int
    body: Json
    etag: str = ""


def _short(interaction: str) -> str:
    return interaction.rsplit(":", 2)[-2] + ":" + interaction.rsplit(":", 1)[-1]


class GPConnectHttp:
    """Sends one GP Connect interaction at a time with the headers and token the specification requires."""

    def __init__(self, endpoint: Endpoint, transport: httpx.BaseTransport | None = None) -> None:
        self.endpoint = endpoint
        self._client = httpx.Client(
            base_url=endpoint.service_root,
            timeout=httpx.Timeout(endpoint.read_timeout, connect=endpoint.connect_timeout),
            transport=transport,
            verify=endpoint.tls(),
        )
        self._lock = threading.Lock()
        self.last_ok: dt.datetime | None = None
        self.last_failure: dt.datetime | None = None

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    def headers(self, interaction: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The headers for one request: a fresh trace id and token every time."""
        ep = self.endpoint
        headers = {
            "Ssp-TraceID": str(uuid.uuid4()),
            "Ssp-From": ep.consumer_asid,
            "Ssp-To": ep.provider_asid,
            "Ssp-InteractionID": interaction,
            "Accept": c.FHIR_JSON,
            "Authorization": "Bearer " + build_token(ep.requester, ep.base_url.rstrip("/"), c.SCOPES[interaction]),
        }
        if ep.api_key:
            headers["apikey"] = ep.api_key
        headers.update(extra or {})
        return headers

    def call(
        self,
        method: str,
        path: str,
        interaction: str,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        body: Json | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send the request; return the JSON body, or raise the mapped domain error."""
        all_headers = self.headers(interaction, headers)
        content: bytes | None = None
        if body is not None:
            content = json.dumps(body).encode()
            all_headers["Content-Type"] = c.FHIR_JSON
        trace = all_headers["Ssp-TraceID"]
        read_timeout, cut_short = deadline.timeout_for(self.endpoint.read_timeout)
        timeout = httpx.Timeout(read_timeout, connect=min(self.endpoint.connect_timeout, read_timeout))
        started = time.monotonic()
        try:
            reply = self._client.request(
                method, path, params=tuple(params or ()), content=content, headers=all_headers, timeout=timeout
            )
        except httpx.TimeoutException:
            if cut_short and not deadline.spent_on_link(time.monotonic() - started):
                # the page's last moments ran out, which says nothing about the link
                log.warning("GP Connect %s stopped at the request's deadline (trace %s)", _short(interaction), trace)
                raise deadline.DeadlineExceeded() from None
            self._record(ok=False)
            log.warning("GP Connect %s timed out (trace %s)", _short(interaction), trace)
            raise ClinicalSystemUnavailable() from None
        except httpx.TransportError as exc:
            self._record(ok=False)
            log.warning("GP Connect %s failed: %s (trace %s)", _short(interaction), type(exc).__name__, trace)
            raise ClinicalSystemUnavailable() from None
        parsed: Any = None
        if reply.content:
            try:
                parsed = reply.json()
            except ValueError:
                parsed = None
        if reply.is_success:
            self._record(ok=True)
            if not isinstance(parsed, dict):
                parsed = {}
            return Response(status=reply.status_code, body=parsed, etag=reply.headers.get("ETag", ""))
        outcome = parse_outcome(parsed)
        error = map_error(reply.status_code, outcome, conditional="If-Match" in all_headers)
        self._record(ok=not isinstance(error, ClinicalSystemUnavailable))
        log.warning(
            "GP Connect %s failed: HTTP %s %s -> %s (trace %s)",
            _short(interaction),
            reply.status_code,
            outcome.spine_code if outcome else "-",
            type(error).__name__,
            trace,
        )
        raise error

    def _record(self, ok: bool) -> None:
        now = dt.datetime.now(dt.UTC)
        with self._lock:
            if ok:
                self.last_ok = now
            else:
                self.last_failure = now
