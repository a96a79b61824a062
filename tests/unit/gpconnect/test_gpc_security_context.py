"""Who the gateway says it is to GP Connect: the token's requesting practitioner, organisation and device come
from the deployment's settings (never "UNK"), production refuses to use the adapter without them, ASIDs are
twelve digits, the Spine Secure Proxy prefixes every URL (the audience stays the provider's), and practices'
endpoints can come from a lookup."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from patient_online.adapters.gpconnect import (
    ADAPTER,
    AdapterMisconfigured,
    ConfiguredEndpoints,
    Deployment,
    Endpoint,
    GPConnectClinicalSystem,
    ProviderEndpoint,
    Requester,
    create,
)
from patient_online.adapters.gpconnect.constants import SDS_ROLE_PROFILE_SYSTEM, SDS_USER_SYSTEM, Interaction
from patient_online.adapters.gpconnect.endpoints import EndpointsInvalid
from patient_online.adapters.gpconnect.http import GPConnectHttp
from patient_online.adapters.gpconnect.jwt import PLACEHOLDERS, check_claims, claims_for, decode_unsigned
from patient_online.adapters.registry import AdapterContext, OptionsInvalid

IDENTITY = {
    "GPCONNECT_CONSUMER_SYSTEM_URL": "https://gateway.example.nhs.uk",
    "GPCONNECT_ORGANISATION_ODS": "Y99001",
    "GPCONNECT_ORGANISATION_NAME": "Example Online Services",
    "GPCONNECT_PRACTITIONER_ID": "svc-online-1",
    "GPCONNECT_SDS_USER_ID": "687227875014",
    "GPCONNECT_SDS_ROLE_PROFILE_ID": "555021935107",
    "GPCONNECT_PRACTITIONER_FAMILY_NAME": "Jones",
    "GPCONNECT_PRACTITIONER_GIVEN_NAME": "Sam",
    "GPCONNECT_DEVICE_SYSTEM": "https://gateway.example.nhs.uk/Id/device",
    "GPCONNECT_DEVICE_ID": "gateway-1",
    "GPCONNECT_DEVICE_MODEL": "Example gateway",
    "GPCONNECT_DEVICE_VERSION": "2.1.0",
}
OPTIONS = {
    "base_url": "https://provider.example/fhir",
    "provider_asid": "918999198738",
    "consumer_asid": "200000000359",
}


def _ids(resource: dict[str, Any]) -> dict[str, str]:
    return {i["system"]: i["value"] for i in resource["identifier"]}


def test_the_token_names_a_real_user_with_sds_identifiers() -> None:
    deployment = Deployment.from_settings({"ENV": "production", **IDENTITY})
    assert deployment.refusal() == ""
    claims = claims_for(deployment.requester, "https://provider.example/fhir", "patient/*.read", now=1_700_000_000)
    assert check_claims(claims, now=1_700_000_000) == []
    practitioner = claims["requesting_practitioner"]
    ids = _ids(practitioner)
    assert ids[SDS_USER_SYSTEM] == "687227875014" and ids[SDS_ROLE_PROFILE_SYSTEM] == "555021935107"
    assert practitioner["name"] == [{"family": "Jones", "given": ["Sam"]}]
    assert claims["sub"] == practitioner["id"] == "svc-online-1"
    assert claims["iss"] == "https://gateway.example.nhs.uk"
    assert claims["exp"] == claims["iat"] + 300 and claims["reason_for_request"] == "directcare"
    device, organisation = claims["requesting_device"], claims["requesting_organization"]
    assert _ids(device) == {"https://gateway.example.nhs.uk/Id/device": "gateway-1"}
    assert (device["model"], device["version"]) == ("Example gateway", "2.1.0")
    assert _ids(organisation)["https://fhir.nhs.uk/Id/ods-organization-code"] == "Y99001"
    assert organisation["name"] == "Example Online Services"


def test_development_stand_ins_are_never_placeholders() -> None:
    requester = Deployment.from_settings({"ENV": "development"}).requester
    assert requester.problems() == []
    claims = claims_for(requester, "https://provider.example/fhir", "patient/*.read")
    for value in _ids(claims["requesting_practitioner"]).values():
        assert value.upper() not in PLACEHOLDERS
    assert claims["sub"].upper() not in PLACEHOLDERS


def test_production_without_the_identity_refuses_to_build_the_adapter() -> None:
    deployment = Deployment.from_settings({"ENV": "production"})
    refusal = deployment.refusal()
    assert "\n" not in refusal
    assert "GPCONNECT_SDS_USER_ID" in refusal and "GPCONNECT_ORGANISATION_ODS" in refusal
    with pytest.raises(AdapterMisconfigured):
        create(AdapterContext("A12345", OPTIONS, {"gpconnect": deployment}))


def test_unk_is_refused_anywhere() -> None:
    deployment = Deployment.from_settings({"ENV": "development", "GPCONNECT_SDS_USER_ID": "UNK"})
    assert "GPCONNECT_SDS_USER_ID" in deployment.refusal()


def test_the_adapter_is_built_with_the_deployments_identity() -> None:
    deployment = Deployment.from_settings({"ENV": "production", **IDENTITY, "GPCONNECT_CONSUMER_ASID": "200000000111"})
    system = create(AdapterContext("A12345", {**OPTIONS, "consumer_asid": ""}, {"gpconnect": deployment}))
    assert isinstance(system, GPConnectClinicalSystem)
    assert system.endpoint.requester == deployment.requester
    assert system.endpoint.consumer_asid == "200000000111"
    assert system.endpoint.consumer_ods == "Y99001"


@pytest.mark.parametrize("name", ["provider_asid", "consumer_asid"])
@pytest.mark.parametrize("value", ["12345", "9189991987380", "91899919873A"])
def test_asids_must_be_twelve_digits(name: str, value: str) -> None:
    with pytest.raises(OptionsInvalid) as raised:
        ADAPTER.validate({**OPTIONS, name: value})
    assert name in raised.value.errors
    assert ADAPTER.validate(OPTIONS)["provider_asid"] == "918999198738"


def test_endpoints_come_from_the_lookup_when_the_options_leave_them_out() -> None:
    lookup = ConfiguredEndpoints.from_setting(
        '{"a12345": {"base_url": "https://gp.example/fhir/", "asid": "918999198001"}}'
    )
    assert lookup.find("A12345") == ProviderEndpoint("https://gp.example/fhir", "918999198001")
    assert lookup.find("B99999") is None
    deployment = Deployment(endpoints=lookup, consumer_asid="200000000359")
    system = create(AdapterContext("A12345", {}, {"gpconnect": deployment}))
    assert isinstance(system, GPConnectClinicalSystem)
    assert (system.endpoint.base_url, system.endpoint.provider_asid) == ("https://gp.example/fhir", "918999198001")
    with pytest.raises(AdapterMisconfigured):
        create(AdapterContext("B99999", {}, {"gpconnect": deployment}))


@pytest.mark.parametrize(
    "setting",
    [
        "not json",
        '{"A12345": {"base_url": "ftp://x", "asid": "918999198001"}}',
        '{"A12345": {"base_url": "https://x", "asid": "123"}}',
        '{"a b": {"base_url": "https://x", "asid": "918999198001"}}',
    ],
)
def test_malformed_endpoint_settings_are_refused(setting: str) -> None:
    with pytest.raises(EndpointsInvalid):
        ConfiguredEndpoints.from_setting(setting)


def test_through_the_spine_secure_proxy_the_url_carries_its_prefix_and_the_audience_is_the_provider() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"resourceType": "Bundle"})

    endpoint = Endpoint(
        base_url="https://provider.example/gpconnect/fhir",
        provider_asid="918999198738",
        consumer_asid="200000000359",
        provider_ods="A12345",
        consumer_ods="Y99001",
        requester=Requester(),
        ssp_url="https://proxy.spine.example/",
    )
    http = GPConnectHttp(endpoint, transport=httpx.MockTransport(handler))
    http.call("GET", "/Slot", Interaction.SEARCH_SLOTS)
    assert str(seen[0].url) == "https://proxy.spine.example/https://provider.example/gpconnect/fhir/Slot"
    _header, claims = decode_unsigned(seen[0].headers["Authorization"].removeprefix("Bearer "))
    assert claims["aud"] == "https://provider.example/gpconnect/fhir"
    assert seen[0].headers["Ssp-From"] == "200000000359" and seen[0].headers["Ssp-To"] == "918999198738"
