"""GP Connect adapter: a practice's clinical system reached through GP Connect FHIR APIs.

Importing this package registers the "gpconnect" adapter type in the adapter registry.
"""

from __future__ import annotations

from patient_online.adapters.registry import AdapterContext, AdapterType, OptionSpec, register
from patient_online.domain.ports import ClinicalSystem

from .client import GPConnectClinicalSystem
from .http import Endpoint
from .jwt import Requester

__all__ = ["ADAPTER", "Endpoint", "GPConnectClinicalSystem", "Requester", "create"]


def create(context: AdapterContext) -> ClinicalSystem:
    """Build the adapter for one practice from its validated options."""
    options = context.options
    consumer_ods = options.get("consumer_ods") or "X99999"
    endpoint = Endpoint(
        base_url=options["base_url"],
        provider_asid=options["provider_asid"],
        consumer_asid=options["consumer_asid"],
        provider_ods=options.get("provider_ods") or context.practice_ods,
        consumer_ods=consumer_ods,
        connect_timeout=float(options.get("connect_timeout") or 2),
        read_timeout=float(options.get("read_timeout") or 5),
        api_key=options.get("api_key") or "",
        requester=Requester(
            issuer=options.get("consumer_system_url") or "https://patient-online.invalid",
            consumer_ods=consumer_ods,
        ),
    )
    return GPConnectClinicalSystem(endpoint, practice_ods=context.practice_ods)


ADAPTER = register(
    AdapterType(
        name="gpconnect",
        title="GP Connect",
        factory=create,
        options=(
            OptionSpec("base_url", "The GP Connect FHIR endpoint of the practice's system", kind="url"),
            OptionSpec("provider_asid", "The provider's Spine ASID"),
            OptionSpec("consumer_asid", "This gateway's Spine ASID"),
            OptionSpec("provider_ods", "The provider's ODS code (the practice's own when empty)", required=False),
            OptionSpec("consumer_ods", "This gateway's ODS code", required=False, default="X99999"),
            OptionSpec(
                "consumer_system_url",
                "The address this gateway identifies itself by (JWT issuer)",
                required=False,
                default="https://patient-online.invalid",
            ),
            OptionSpec("connect_timeout", "Seconds to wait to connect", required=False, kind="float", default="2"),
            OptionSpec("read_timeout", "Seconds to wait for an answer", required=False, kind="float", default="5"),
            OptionSpec("api_key", "The API key for the provider or proxy", required=False, secret=True),
        ),
    )
)
