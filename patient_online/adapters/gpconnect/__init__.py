"""GP Connect adapter: a practice's clinical system reached through GP Connect FHIR APIs.

Importing this package registers the "gpconnect" adapter type in the adapter registry. Who the gateway is in
every request (the JWT's requesting practitioner, organisation and device), this deployment's ASID, the Spine
Secure Proxy, the client certificate and the endpoint lookup are settings of the deployment (``Deployment``,
from the ``GPCONNECT_*`` settings, handed to the factory by the composition root as the "gpconnect" service);
the provider's address and ASIDs are options of each practice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from patient_online.adapters.registry import AdapterContext, AdapterType, OptionsInvalid, OptionSpec, register
from patient_online.domain.errors import ClinicalSystemUnavailable
from patient_online.domain.ports import ClinicalSystem

from .client import GPConnectClinicalSystem
from .constants import APPOINTMENT_SEARCH_DAYS
from .endpoints import ConfiguredEndpoints, EndpointLookup, ProviderEndpoint, is_asid
from .http import Endpoint
from .jwt import Requester

__all__ = [
    "ADAPTER",
    "AdapterMisconfigured",
    "ConfiguredEndpoints",
    "Deployment",
    "Endpoint",
    "EndpointLookup",
    "GPConnectClinicalSystem",
    "ProviderEndpoint",
    "Requester",
    "create",
]

log = logging.getLogger("patient_online.adapters.gpconnect")

# Requester field <- setting (PATIENT_ONLINE_<setting> in the environment).
REQUESTER_SETTINGS: dict[str, str] = {
    "issuer": "GPCONNECT_CONSUMER_SYSTEM_URL",
    "consumer_ods": "GPCONNECT_ORGANISATION_ODS",
    "organisation_name": "GPCONNECT_ORGANISATION_NAME",
    "practitioner_id": "GPCONNECT_PRACTITIONER_ID",
    "sds_user_id": "GPCONNECT_SDS_USER_ID",
    "sds_role_profile_id": "GPCONNECT_SDS_ROLE_PROFILE_ID",
    "practitioner_family": "GPCONNECT_PRACTITIONER_FAMILY_NAME",
    "practitioner_given": "GPCONNECT_PRACTITIONER_GIVEN_NAME",
    "device_system": "GPCONNECT_DEVICE_SYSTEM",
    "device_id": "GPCONNECT_DEVICE_ID",
    "device_model": "GPCONNECT_DEVICE_MODEL",
    "version": "GPCONNECT_DEVICE_VERSION",
}


class AdapterMisconfigured(ClinicalSystemUnavailable):
    """This deployment is not set up to use GP Connect; patients see the "not available" page, the log says why."""


@dataclass(frozen=True)
class Deployment:
    """This gateway's GP Connect identity and links, the same for every practice."""

    requester: Requester = field(default_factory=Requester)
    consumer_asid: str = ""
    ssp_url: str = ""
    client_cert: str = ""
    client_key: str = ""
    ca_bundle: str = ""
    endpoints: EndpointLookup = field(default_factory=lambda: ConfiguredEndpoints({}))
    problems: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, config: Mapping[str, Any]) -> Deployment:
        """Read the GPCONNECT_* settings. Outside production an empty identity setting gets a development
        stand-in (never "UNK"); in production every one must be set, or the adapter refuses to be built."""
        production = config.get("ENV") == "production"
        given = {name: str(config.get(key) or "").strip() for name, key in REQUESTER_SETTINGS.items()}
        problems = [REQUESTER_SETTINGS[name] for name, value in given.items() if production and not value]
        requester = replace(Requester(), **{name: value for name, value in given.items() if value})
        problems += [REQUESTER_SETTINGS.get(name, name) for name in requester.problems()]
        consumer_asid = str(config.get("GPCONNECT_CONSUMER_ASID") or "").strip()
        if consumer_asid and not is_asid(consumer_asid):
            problems.append("GPCONNECT_CONSUMER_ASID (12 digits)")
        cert, key = str(config.get("GPCONNECT_CLIENT_CERT") or ""), str(config.get("GPCONNECT_CLIENT_KEY") or "")
        if key and not cert:
            problems.append("GPCONNECT_CLIENT_CERT (a key is set without its certificate)")
        return cls(
            requester=requester,
            consumer_asid=consumer_asid,
            ssp_url=str(config.get("GPCONNECT_SSP_URL") or "").strip(),
            client_cert=cert,
            client_key=key,
            ca_bundle=str(config.get("GPCONNECT_CA_BUNDLE") or ""),
            endpoints=ConfiguredEndpoints.from_setting(config.get("GPCONNECT_ENDPOINTS")),
            problems=tuple(dict.fromkeys(problems)),
        )

    def refusal(self) -> str:
        """One line saying what to set, or empty when the deployment may use GP Connect."""
        if not self.problems:
            return ""
        return "GP Connect cannot be used until these settings are set (PATIENT_ONLINE_...): " + ", ".join(
            self.problems
        )


def create(context: AdapterContext) -> ClinicalSystem:
    """Build the adapter for one practice from its validated options and the deployment's settings."""
    deployment = context.services.get("gpconnect") or Deployment()
    refusal = deployment.refusal()
    if refusal:
        log.error("%s", refusal)
        raise AdapterMisconfigured(refusal)
    options = context.options
    provider_ods = options.get("provider_ods") or context.practice_ods
    base_url, provider_asid = options.get("base_url") or "", options.get("provider_asid") or ""
    if not base_url or not provider_asid:
        found = deployment.endpoints.find(provider_ods)
        if found is None:
            log.error(
                "GP Connect: no endpoint known for practice %s (option base_url or GPCONNECT_ENDPOINTS)", provider_ods
            )
            raise AdapterMisconfigured("no GP Connect endpoint is known for this practice")
        base_url, provider_asid = base_url or found.base_url, provider_asid or found.asid
    consumer_asid = options.get("consumer_asid") or deployment.consumer_asid
    if not is_asid(provider_asid) or not is_asid(consumer_asid):
        log.error("GP Connect: practice %s needs 12-digit provider and consumer ASIDs", context.practice_ods)
        raise AdapterMisconfigured("the practice's GP Connect ASIDs are not set")
    requester = deployment.requester
    if options.get("consumer_ods"):
        requester = replace(requester, consumer_ods=options["consumer_ods"])
    if options.get("consumer_system_url"):
        requester = replace(requester, issuer=options["consumer_system_url"])
    endpoint = Endpoint(
        base_url=base_url,
        provider_asid=provider_asid,
        consumer_asid=consumer_asid,
        provider_ods=provider_ods,
        consumer_ods=requester.consumer_ods,
        connect_timeout=float(options.get("connect_timeout") or 2),
        read_timeout=float(options.get("read_timeout") or 5),
        api_key=options.get("api_key") or "",
        requester=requester,
        ssp_url=deployment.ssp_url,
        client_cert=deployment.client_cert,
        client_key=deployment.client_key,
        ca_bundle=deployment.ca_bundle,
    )
    return GPConnectClinicalSystem(
        endpoint,
        practice_ods=context.practice_ods,
        appointment_days=int(options.get("appointment_search_days") or APPOINTMENT_SEARCH_DAYS),
        # Told when a patient's logical id had to be found again; the composition root stores it.
        on_patient_id=context.services.get("patient_id_found"),
    )


@dataclass(frozen=True)
class GPConnectAdapterType(AdapterType):
    """The adapter type, with ASIDs checked as twelve digits when options are saved."""

    def validate(self, raw: Mapping[str, str]) -> dict[str, str]:
        errors: dict[str, str] = {}
        try:
            cleaned = super().validate(raw)
        except OptionsInvalid as invalid:
            errors, cleaned = dict(invalid.errors), {}
        for name in ("provider_asid", "consumer_asid"):
            value = (raw.get(name) or "").strip()
            if value and not is_asid(value) and name not in errors:
                errors[name] = "Enter the ASID as 12 digits, like 918999198738"
        if errors:
            raise OptionsInvalid(errors)
        return cleaned


ADAPTER = register(
    GPConnectAdapterType(
        name="gpconnect",
        title="GP Connect",
        factory=create,
        parallel_reads=True,
        options=(
            OptionSpec(
                "base_url",
                "The GP Connect FHIR endpoint of the practice's system (empty: from the endpoint lookup)",
                required=False,
                kind="url",
            ),
            OptionSpec(
                "provider_asid",
                "The provider's Spine ASID, 12 digits (empty: from the endpoint lookup)",
                required=False,
            ),
            OptionSpec(
                "consumer_asid", "This gateway's Spine ASID, 12 digits (empty: the deployment's)", required=False
            ),
            OptionSpec("provider_ods", "The provider's ODS code (the practice's own when empty)", required=False),
            OptionSpec("consumer_ods", "This gateway's ODS code (empty: the deployment's)", required=False),
            OptionSpec(
                "consumer_system_url",
                "The address this gateway identifies itself by (JWT issuer; empty: the deployment's)",
                required=False,
            ),
            OptionSpec("connect_timeout", "Seconds to wait to connect", required=False, kind="float", default="2"),
            OptionSpec("read_timeout", "Seconds to wait for an answer", required=False, kind="float", default="5"),
            OptionSpec("api_key", "The API key for the provider or proxy", required=False, secret=True),
            OptionSpec(
                "appointment_search_days",
                "How many days ahead to ask the practice's system for a patient's appointments",
                required=False,
                kind="int",
                default=str(APPOINTMENT_SEARCH_DAYS),
            ),
        ),
    )
)
