"""Where a practice's GP Connect provider is: its FHIR base URL and Spine ASID, found from its ODS code.

``EndpointLookup`` is the port. ``ConfiguredEndpoints`` answers from a mapping in the settings
(``GPCONNECT_ENDPOINTS``), for deployments that know their practices' endpoints. An implementation backed by
the Spine Directory Service (SDS FHIR API: the Endpoint and Device of an ODS code for an interaction id) can
follow behind the same port without the adapter changing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlparse

ASID = re.compile(r"^\d{12}$")
ODS = re.compile(r"^[A-Z0-9]{3,10}$")


class EndpointsInvalid(ValueError):
    """The endpoint settings are malformed; the message names the entry."""


@dataclass(frozen=True)
class ProviderEndpoint:
    """One practice's provider: the FHIR base URL and the provider system's ASID."""

    base_url: str
    asid: str


class EndpointLookup(Protocol):
    def find(self, ods_code: str) -> ProviderEndpoint | None:
        """The provider endpoint of the practice with this ODS code, or None when it is not known."""
        ...


def is_asid(value: str) -> bool:
    """A Spine ASID: twelve digits."""
    return bool(ASID.match(value))


class ConfiguredEndpoints:
    """Endpoints from the settings: ``{"A12345": {"base_url": "https://...", "asid": "918999198738"}}``
    (a mapping, or the same as JSON text, as an environment variable gives it)."""

    def __init__(self, entries: Mapping[str, ProviderEndpoint]) -> None:
        self._entries = {k.upper(): v for k, v in entries.items()}

    @classmethod
    def from_setting(cls, value: Any) -> ConfiguredEndpoints:
        """Parse and check the setting; raises EndpointsInvalid naming the first wrong entry."""
        if value in (None, "", {}):
            return cls({})
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise EndpointsInvalid("GPCONNECT_ENDPOINTS is not JSON") from None
        if not isinstance(value, Mapping):
            raise EndpointsInvalid("GPCONNECT_ENDPOINTS must map ODS codes to {base_url, asid}")
        entries: dict[str, ProviderEndpoint] = {}
        for ods, entry in value.items():
            code = str(ods).strip().upper()
            if not ODS.match(code):
                raise EndpointsInvalid(f"GPCONNECT_ENDPOINTS: {ods!r} is not an ODS code")
            if not isinstance(entry, Mapping):
                raise EndpointsInvalid(f"GPCONNECT_ENDPOINTS[{code}] must have base_url and asid")
            base_url, asid = str(entry.get("base_url") or ""), str(entry.get("asid") or "")
            parsed = urlparse(base_url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise EndpointsInvalid(f"GPCONNECT_ENDPOINTS[{code}].base_url must be a full https:// address")
            if not is_asid(asid):
                raise EndpointsInvalid(f"GPCONNECT_ENDPOINTS[{code}].asid must be 12 digits")
            entries[code] = ProviderEndpoint(base_url.rstrip("/"), asid)
        return cls(entries)

    def find(self, ods_code: str) -> ProviderEndpoint | None:
        return self._entries.get(ods_code.strip().upper())
