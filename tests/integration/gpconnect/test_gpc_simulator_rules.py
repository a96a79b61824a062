"""The simulator refuses what a GP Connect provider refuses: one test per rule of docs/gpconnect.md.

Each test sends a request that is correct in every way but one, over real HTTP, and checks the status and the
Spine error code of the OperationOutcome that comes back.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from patient_online.adapters.gpconnect import GPConnectClinicalSystem
from patient_online.adapters.gpconnect import constants as c
from patient_online.adapters.gpconnect.constants import Interaction
from patient_online.adapters.gpconnect.jwt import Requester, claims_for
from patient_online.domain.appointments import SlotQuery
from tools.gpconnect_simulator import ALICE, PROVIDER_ASID, SimulatorServer

LONDON = ZoneInfo("Europe/London")
Claims = dict[str, Any]


def _token(claims: Claims, alg: str = "none") -> str:
    def part(value: Claims) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': alg, 'typ': 'JWT'})}.{part(claims)}."


def _claims(sim: SimulatorServer, interaction: str) -> Claims:
    claims = claims_for(Requester(consumer_ods="X26"), sim.base_url, c.SCOPES[interaction])
    # A practitioner with real smartcard identifiers, so that the strict check can be switched on.
    claims["requesting_practitioner"]["identifier"][0]["value"] = "687227875014"
    claims["requesting_practitioner"]["identifier"][1]["value"] = "555254240100"
    claims["requesting_practitioner"]["id"] = claims["sub"] = "user-1234"
    return claims


def _send(
    sim: SimulatorServer,
    method: str,
    path: str,
    interaction: str,
    *,
    params: list[tuple[str, str]] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    claims: Callable[[Claims], None] | None = None,
    url: str | None = None,
) -> httpx.Response:
    token_claims = _claims(sim, interaction)
    if claims is not None:
        claims(token_claims)
    sent = {
        "Ssp-TraceID": str(uuid.uuid4()),
        "Ssp-From": "200000000359",
        "Ssp-To": PROVIDER_ASID,
        "Ssp-InteractionID": interaction,
        "Accept": c.FHIR_JSON,
        "Authorization": "Bearer " + _token(token_claims),
    }
    content = None
    if body is not None:
        content = json.dumps(body).encode()
        sent["Content-Type"] = c.FHIR_JSON
    sent.update(headers or {})
    sent = {k: v for k, v in sent.items() if v}
    return httpx.request(method, url or sim.base_url + path, params=params, content=content, headers=sent, timeout=5)


def _code(response: httpx.Response) -> str:
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return str(body["issue"][0]["details"]["coding"][0]["code"])


def _refused(response: httpx.Response, status: int, code: str) -> None:
    assert (response.status_code, _code(response)) == (status, code)


def _today() -> dt.date:
    return dt.datetime.now(LONDON).date()


def _appointments(sim: SimulatorServer, *starts: str) -> httpx.Response:
    return _send(
        sim,
        "GET",
        "/Patient/1/Appointment",
        Interaction.SEARCH_PATIENT_APPOINTMENTS,
        params=[("start", s) for s in starts],
    )


# --------------------------------------------------------------------------- retrieve a patient's appointments


def test_appointment_search_with_ge_today_and_le_is_accepted(sim: SimulatorServer) -> None:
    today = _today()
    response = _appointments(sim, f"ge{today}", f"le{today + dt.timedelta(days=30)}")
    assert response.status_code == 200 and response.json()["type"] == "searchset"


def test_appointment_search_without_start_is_refused(sim: SimulatorServer) -> None:
    _refused(_appointments(sim), 422, c.INVALID_PARAMETER)


@pytest.mark.parametrize("prefix", ["ge", "le"])
def test_appointment_search_with_a_single_start_is_refused(sim: SimulatorServer, prefix: str) -> None:
    _refused(_appointments(sim, f"{prefix}{_today() + dt.timedelta(days=3)}"), 422, c.INVALID_PARAMETER)


def test_appointment_search_from_a_past_date_is_refused(sim: SimulatorServer) -> None:
    today = _today()
    response = _appointments(sim, f"ge{today - dt.timedelta(days=400)}", f"le{today + dt.timedelta(days=30)}")
    _refused(response, 422, c.INVALID_PARAMETER)
    _refused(_appointments(sim, f"ge{today - dt.timedelta(days=400)}"), 422, c.INVALID_PARAMETER)


@pytest.mark.parametrize(
    ("lower", "upper"),
    [
        ("{d}T00:00:00+00:00", "{e}"),
        ("{d}", "{e}T23:59:59+00:00"),
        ("{d}", "{e}T23:59:59Z"),
        ("{y}", "{e}"),
        ("{d}", "{m}"),
    ],
)
def test_appointment_search_dates_only(sim: SimulatorServer, lower: str, upper: str) -> None:
    day, end = _today(), _today() + dt.timedelta(days=10)
    values = {"d": day.isoformat(), "e": end.isoformat(), "y": str(day.year + 1), "m": end.isoformat()[:7]}
    response = _appointments(sim, "ge" + lower.format(**values), "le" + upper.format(**values))
    _refused(response, 422, c.INVALID_PARAMETER)


@pytest.mark.parametrize(("first", "second"), [("ge", "ge"), ("le", "le"), ("ge", "lt"), ("gt", "le"), ("eq", "le")])
def test_appointment_search_prefixes_must_be_ge_and_le(sim: SimulatorServer, first: str, second: str) -> None:
    day = _today() + dt.timedelta(days=1)
    _refused(_appointments(sim, f"{first}{day}", f"{second}{day + dt.timedelta(days=5)}"), 422, c.INVALID_PARAMETER)


def test_appointment_search_end_before_start_is_refused(sim: SimulatorServer) -> None:
    day = _today() + dt.timedelta(days=10)
    _refused(_appointments(sim, f"ge{day}", f"le{day - dt.timedelta(days=2)}"), 422, c.INVALID_PARAMETER)


def test_appointment_search_longer_than_the_provider_allows_is_refused(sim: SimulatorServer) -> None:
    sim.state.max_appointment_search_days = 60
    today = _today()
    assert _appointments(sim, f"ge{today}", f"le{today + dt.timedelta(days=60)}").status_code == 200
    _refused(_appointments(sim, f"ge{today}", f"le{today + dt.timedelta(days=61)}"), 422, c.INVALID_PARAMETER)


def test_appointment_search_for_an_unknown_patient_is_not_found(sim: SimulatorServer) -> None:
    today = _today()
    response = _send(
        sim,
        "GET",
        "/Patient/no-such-id/Appointment",
        Interaction.SEARCH_PATIENT_APPOINTMENTS,
        params=[("start", f"ge{today}"), ("start", f"le{today + dt.timedelta(days=5)}")],
    )
    assert response.status_code == 404 and response.json()["resourceType"] == "OperationOutcome"


def test_appointment_responses_reference_practitioner_and_location_without_including_them(
    sim: SimulatorServer, system: GPConnectClinicalSystem
) -> None:
    alice = system.find_patient(ALICE)
    assert alice is not None
    now = dt.datetime.now(dt.UTC)
    slot = system.search_slots(SlotQuery(now + dt.timedelta(days=1), now + dt.timedelta(days=8)))[0]
    system.book(alice.ref, slot.id, "Check up", "key")
    today = _today()
    response = _appointments(sim, f"ge{today}", f"le{today + dt.timedelta(days=30)}")
    kinds = [e["resource"]["resourceType"] for e in response.json()["entry"]]
    assert kinds == ["Appointment"]
    actors = {p["actor"]["reference"].split("/")[0] for p in response.json()["entry"][0]["resource"]["participant"]}
    assert {"Patient", "Practitioner", "Location"} <= actors


# --------------------------------------------------------------------------- search for free slots


def _slot_params(**changes: list[str] | None) -> list[tuple[str, str]]:
    start = _today() + dt.timedelta(days=1)
    base: dict[str, list[str]] = {
        "status": ["free"],
        "start": [f"ge{start}"],
        "end": [f"le{start + dt.timedelta(days=7)}"],
        "_include": ["Slot:schedule"],
        "searchFilter": [f"{c.ODS_SYSTEM}|X26", f"{c.ORG_TYPE_SYSTEM}|gp-practice"],
    }
    for name, values in changes.items():
        if values is None:
            base.pop(name, None)
        else:
            base[name] = values
    return [(k, v) for k, vs in base.items() for v in vs]


def _slots(sim: SimulatorServer, params: list[tuple[str, str]]) -> httpx.Response:
    return _send(sim, "GET", "/Slot", Interaction.SEARCH_SLOTS, params=params)


def test_slot_search_as_specified_is_accepted(sim: SimulatorServer) -> None:
    assert _slots(sim, _slot_params()).status_code == 200


@pytest.mark.parametrize(
    "changes",
    [
        {"status": None},
        {"status": ["busy"]},
        {"start": None},
        {"end": None},
        {"start": [f"le{dt.date.today()}"]},
        {"end": [f"ge{dt.date.today() + dt.timedelta(days=3)}"]},
        {"start": [f"ge{dt.date.today()}", f"ge{dt.date.today() + dt.timedelta(days=1)}"]},
        {"start": [f"ge{dt.date.today().isoformat()[:7]}"]},
        {"start": [f"ge{dt.date.today()}T09:00:00"]},
        {"end": [f"le{dt.date.today() + dt.timedelta(days=20)}"]},
        {"_include": None},
    ],
    ids=[
        "no-status",
        "status-not-free",
        "no-start",
        "no-end",
        "start-not-ge",
        "end-not-le",
        "start-twice",
        "partial-date",
        "time-without-offset",
        "longer-than-14-days",
        "no-include-schedule",
    ],
)
def test_slot_search_rules(sim: SimulatorServer, changes: dict[str, list[str] | None]) -> None:
    _refused(_slots(sim, _slot_params(**changes)), 422, c.INVALID_PARAMETER)


def test_slot_search_includes_only_what_was_asked(sim: SimulatorServer) -> None:
    plain = {e["resource"]["resourceType"] for e in _slots(sim, _slot_params()).json()["entry"]}
    assert plain == {"Slot", "Schedule"}
    recurse = ["Schedule:actor:Practitioner", "Schedule:actor:Location"]
    full = {
        e["resource"]["resourceType"]
        for e in _slots(sim, _slot_params(**{"_include:recurse": recurse})).json()["entry"]
    }
    assert {"Slot", "Schedule", "Practitioner", "Location"} <= full


# --------------------------------------------------------------------------- headers


def _find_alice(sim: SimulatorServer, **kwargs: Any) -> httpx.Response:
    return _send(
        sim,
        "GET",
        "/Patient",
        Interaction.SEARCH_PATIENT,
        params=[("identifier", f"{c.NHS_NUMBER_SYSTEM}|{ALICE}")],
        **kwargs,
    )


def test_a_correct_request_is_accepted(sim: SimulatorServer) -> None:
    assert _find_alice(sim).status_code == 200


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Ssp-From": "consumer"}, 400, c.BAD_REQUEST),
        ({"Ssp-From": "20000000035"}, 400, c.BAD_REQUEST),
        ({"Ssp-From": ""}, 400, c.BAD_REQUEST),
        ({"Ssp-To": "91899919899X"}, 400, c.BAD_REQUEST),
        ({"Ssp-To": "999999999999"}, 403, c.ACCESS_DENIED),
        ({"Ssp-TraceID": "not-a-uuid"}, 400, c.BAD_REQUEST),
        ({"Ssp-InteractionID": Interaction.SEARCH_SLOTS}, 400, c.BAD_REQUEST),
        ({"Ssp-InteractionID": "urn:nhs:names:services:gpconnect:fhir:rest:search:patient-9"}, 400, c.BAD_REQUEST),
        ({"Accept": "application/xml"}, 406, c.BAD_REQUEST),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 400, c.BAD_REQUEST),
    ],
    ids=[
        "ssp-from-not-digits",
        "ssp-from-short",
        "ssp-from-missing",
        "ssp-to-malformed",
        "ssp-to-another-provider",
        "trace-id-not-uuid",
        "interaction-of-another-route",
        "unknown-interaction",
        "accept-not-fhir-json",
        "not-bearer",
    ],
)
def test_header_rules(sim: SimulatorServer, headers: dict[str, str], status: int, code: str) -> None:
    _refused(_find_alice(sim, headers=headers), status, code)


def test_a_body_must_be_fhir_json(sim: SimulatorServer) -> None:
    body = {"resourceType": "Parameters", "parameter": []}
    response = _send(
        sim,
        "POST",
        "/Patient/$gpc.getstructuredrecord",
        Interaction.STRUCTURED_RECORD,
        body=body,
        headers={"Content-Type": "application/json"},
    )
    _refused(response, 415, c.BAD_REQUEST)


# --------------------------------------------------------------------------- the JWT


def _without(*path: str) -> Callable[[Claims], None]:
    def change(claims: Claims) -> None:
        target: Any = claims
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


def _setting(value: Any, *path: str | int) -> Callable[[Claims], None]:
    def change(claims: Claims) -> None:
        target: Any = claims
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        (_setting("https://another.provider/fhir", "aud"), 400, c.BAD_REQUEST),
        (_without("aud"), 400, c.BAD_REQUEST),
        (_without("exp"), 400, c.BAD_REQUEST),
        (_without("iss"), 400, c.BAD_REQUEST),
        (_without("reason_for_request"), 400, c.BAD_REQUEST),
        (_setting("secondaryuses", "reason_for_request"), 400, c.BAD_REQUEST),
        (_setting("patient/*.write", "requested_scope"), 400, c.BAD_REQUEST),
        (_without("requested_scope"), 400, c.BAD_REQUEST),
        (_without("requesting_device"), 400, c.BAD_REQUEST),
        (_without("requesting_organization"), 400, c.BAD_REQUEST),
        (_without("requesting_practitioner"), 400, c.BAD_REQUEST),
        (_setting("Patient", "requesting_device", "resourceType"), 422, c.INVALID_RESOURCE),
        (_setting("Device", "requesting_practitioner", "resourceType"), 422, c.INVALID_RESOURCE),
        (_without("requesting_device", "identifier"), 422, c.INVALID_RESOURCE),
        (_without("requesting_device", "model"), 422, c.INVALID_RESOURCE),
        (_without("requesting_organization", "identifier"), 422, c.INVALID_RESOURCE),
        (
            _setting([{"system": "https://example.org/org", "value": "X26"}], "requesting_organization", "identifier"),
            422,
            c.INVALID_RESOURCE,
        ),
        (_without("requesting_organization", "name"), 422, c.INVALID_RESOURCE),
        (_without("requesting_practitioner", "identifier"), 422, c.INVALID_RESOURCE),
        (_setting([], "requesting_practitioner", "name"), 422, c.INVALID_RESOURCE),
        (_setting("someone-else", "sub"), 400, c.BAD_REQUEST),
    ],
    ids=[
        "aud-another-provider",
        "no-aud",
        "no-exp",
        "no-iss",
        "no-reason",
        "reason-not-directcare",
        "scope-not-fitting",
        "no-scope",
        "no-device",
        "no-organisation",
        "no-practitioner",
        "device-wrong-type",
        "practitioner-wrong-type",
        "device-no-identifier",
        "device-no-model",
        "organisation-no-identifier",
        "organisation-no-ods-code",
        "organisation-no-name",
        "practitioner-no-identifiers",
        "practitioner-no-name",
        "sub-not-practitioner-id",
    ],
)
def test_jwt_rules(sim: SimulatorServer, change: Callable[[Claims], None], status: int, code: str) -> None:
    _refused(_find_alice(sim, claims=change), status, code)


@pytest.mark.parametrize("lifetime", [299, 301, -1])
def test_jwt_lifetime_is_exactly_five_minutes(sim: SimulatorServer, lifetime: int) -> None:
    def change(claims: Claims) -> None:
        claims["exp"] = claims["iat"] + lifetime

    _refused(_find_alice(sim, claims=change), 400, c.BAD_REQUEST)


def test_expired_jwt_is_refused(sim: SimulatorServer) -> None:
    def change(claims: Claims) -> None:
        claims["iat"] -= 900
        claims["exp"] = claims["iat"] + 300

    _refused(_find_alice(sim, claims=change), 400, c.BAD_REQUEST)


def test_signed_jwt_is_refused(sim: SimulatorServer) -> None:
    response = _find_alice(
        sim, headers={"Authorization": "Bearer " + _token(_claims(sim, Interaction.SEARCH_PATIENT), "HS256")}
    )
    _refused(response, 400, c.BAD_REQUEST)


def test_placeholder_smartcard_ids_are_refused_when_the_provider_requires_real_ones(sim: SimulatorServer) -> None:
    sim.state.require_smartcard_ids = True
    assert _find_alice(sim).status_code == 200
    for index in (0, 1):
        response = _find_alice(sim, claims=_setting("UNK", "requesting_practitioner", "identifier", index, "value"))
        _refused(response, 422, c.INVALID_RESOURCE)

    def system_user(claims: Claims) -> None:
        claims["sub"] = claims["requesting_practitioner"]["id"] = "patient-online-gateway"

    _refused(_find_alice(sim, claims=system_user), 422, c.INVALID_RESOURCE)


# --------------------------------------------------------------------------- through the Spine Secure Proxy


def test_requests_through_the_proxy_prefix_are_served_and_aud_is_the_provider_root(sim: SimulatorServer) -> None:
    root = sim.base_url
    proxied = f"{root}/{root}/Patient"
    response = _send(
        sim,
        "GET",
        "/Patient",
        Interaction.SEARCH_PATIENT,
        params=[("identifier", f"{c.NHS_NUMBER_SYSTEM}|{ALICE}")],
        url=proxied,
    )
    assert response.status_code == 200
    wrong_aud = _send(
        sim,
        "GET",
        "/Patient",
        Interaction.SEARCH_PATIENT,
        params=[("identifier", f"{c.NHS_NUMBER_SYSTEM}|{ALICE}")],
        url=proxied,
        claims=_setting(f"{root}/{root}", "aud"),
    )
    _refused(wrong_aud, 400, c.BAD_REQUEST)


# --------------------------------------------------------------------------- find a patient, read references


def test_find_patient_needs_a_valid_nhs_number_and_system(sim: SimulatorServer) -> None:
    bad_number = _send(
        sim, "GET", "/Patient", Interaction.SEARCH_PATIENT, params=[("identifier", f"{c.NHS_NUMBER_SYSTEM}|123")]
    )
    _refused(bad_number, 400, c.INVALID_NHS_NUMBER)
    bad_system = _send(
        sim, "GET", "/Patient", Interaction.SEARCH_PATIENT, params=[("identifier", f"https://example.org|{ALICE}")]
    )
    _refused(bad_system, 422, c.INVALID_IDENTIFIER_SYSTEM)


@pytest.mark.parametrize(
    ("path", "interaction"),
    [
        ("/Practitioner/1", Interaction.READ_PRACTITIONER),
        ("/Location/1", Interaction.READ_LOCATION),
        ("/Organization/1", Interaction.READ_ORGANIZATION),
    ],
)
def test_read_practitioner_location_organisation(sim: SimulatorServer, path: str, interaction: str) -> None:
    response = _send(sim, "GET", path, interaction)
    assert response.status_code == 200 and response.json()["resourceType"] == path.split("/")[1]
    _refused(_send(sim, "GET", path + "9", interaction), 404, c.NO_RECORD_FOUND)
    _refused(_send(sim, "GET", path, Interaction.READ_APPOINTMENT), 400, c.BAD_REQUEST)
    scope = _send(sim, "GET", path, interaction, claims=_setting(c.READ_SCOPE_PATIENT, "requested_scope"))
    _refused(scope, 400, c.BAD_REQUEST)


# --------------------------------------------------------------------------- amend an appointment


def _booked(sim: SimulatorServer, system: GPConnectClinicalSystem) -> dict[str, Any]:
    alice = system.find_patient(ALICE)
    assert alice is not None
    now = dt.datetime.now(dt.UTC)
    slot = system.search_slots(SlotQuery(now + dt.timedelta(days=1), now + dt.timedelta(days=8)))[0]
    booked = system.book(alice.ref, slot.id, "Check up", "key")
    response = _send(sim, "GET", f"/Appointment/{booked.id}", Interaction.READ_APPOINTMENT)
    assert response.status_code == 200
    resource: dict[str, Any] = response.json()
    return resource


def _amend(sim: SimulatorServer, body: dict[str, Any], if_match: str = 'W/"1"') -> httpx.Response:
    return _send(
        sim,
        "PUT",
        f"/Appointment/{body['id']}",
        Interaction.AMEND_APPOINTMENT,
        body=body,
        headers={"If-Match": if_match},
    )


def test_amend_changes_description_and_comment(sim: SimulatorServer, system: GPConnectClinicalSystem) -> None:
    current = _booked(sim, system)
    response = _amend(sim, dict(current, description="Check up and blood test", comment="Prefers mornings"))
    assert response.status_code == 200
    assert response.json()["description"] == "Check up and blood test"
    assert response.json()["meta"]["versionId"] == "2"


@pytest.mark.parametrize(
    "change",
    [
        {"start": "2030-01-01T09:00:00+00:00"},
        {"status": "cancelled"},
        {"serviceType": [{"text": "Something else"}]},
        {"participant": []},
    ],
    ids=["start", "status", "service-type", "participants"],
)
def test_amend_refuses_changes_to_anything_else(
    sim: SimulatorServer, system: GPConnectClinicalSystem, change: dict[str, Any]
) -> None:
    current = _booked(sim, system)
    _refused(_amend(sim, dict(current, description="new words", **change)), 422, c.INVALID_RESOURCE)


def test_amend_refuses_long_text_stale_versions_and_cancelled_or_past_appointments(
    sim: SimulatorServer, system: GPConnectClinicalSystem
) -> None:
    current = _booked(sim, system)
    _refused(_amend(sim, dict(current, description="x" * 101)), 422, c.INVALID_RESOURCE)
    _refused(_amend(sim, dict(current, comment="x" * 501)), 422, c.INVALID_RESOURCE)
    _refused(_amend(sim, dict(current, description="new"), if_match='W/"9"'), 409, c.FHIR_CONSTRAINT_VIOLATION)
    _refused(_amend(sim, dict(current, description="new"), if_match=""), 400, c.BAD_REQUEST)
    record = sim.state.appointments[current["id"]]
    record.resource["start"] = (dt.datetime.now(LONDON) - dt.timedelta(hours=1)).isoformat()
    past = dict(current, description="new", start=record.resource["start"])
    _refused(_amend(sim, past), 422, c.INVALID_RESOURCE)
    record.resource["start"] = current["start"]
    record.resource["status"] = "cancelled"
    _refused(_amend(sim, dict(current, description="new", status="cancelled")), 422, c.INVALID_RESOURCE)


def test_cancel_and_amend_share_a_path_and_are_told_apart_by_interaction(
    sim: SimulatorServer, system: GPConnectClinicalSystem
) -> None:
    current = _booked(sim, system)
    as_cancel = _send(
        sim,
        "PUT",
        f"/Appointment/{current['id']}",
        Interaction.CANCEL_APPOINTMENT,
        body=dict(current, description="only a new description"),
        headers={"If-Match": 'W/"1"'},
    )
    _refused(as_cancel, 422, c.INVALID_RESOURCE)  # a cancellation must set status cancelled


# --------------------------------------------------------------------------- get the structured record


def _record(sim: SimulatorServer, *parameters: dict[str, Any]) -> httpx.Response:
    return _send(
        sim,
        "POST",
        "/Patient/$gpc.getstructuredrecord",
        Interaction.STRUCTURED_RECORD,
        body={"resourceType": "Parameters", "parameter": list(parameters)},
    )


_NHS = {"name": c.PARAM_NHS_NUMBER, "valueIdentifier": {"system": c.NHS_NUMBER_SYSTEM, "value": ALICE}}


def test_structured_record_rules(sim: SimulatorServer) -> None:
    allergies = {"name": c.PARAM_ALLERGIES, "part": [{"name": "includeResolvedAllergies", "valueBoolean": True}]}
    assert _record(sim, _NHS, allergies).status_code == 200
    _refused(_record(sim, allergies), 422, c.INVALID_PARAMETER)  # no NHS number
    _refused(_record(sim, _NHS, {"name": c.PARAM_ALLERGIES}), 422, c.INVALID_PARAMETER)  # part missing
    _refused(_record(sim, _NHS, {"name": "includeEverything"}), 422, c.INVALID_PARAMETER)
    wrong_system = {"name": c.PARAM_NHS_NUMBER, "valueIdentifier": {"system": "https://example.org", "value": ALICE}}
    _refused(_record(sim, wrong_system, allergies), 422, c.INVALID_IDENTIFIER_SYSTEM)
    bad_number = {"name": c.PARAM_NHS_NUMBER, "valueIdentifier": {"system": c.NHS_NUMBER_SYSTEM, "value": "1234567890"}}
    _refused(_record(sim, bad_number, allergies), 400, c.INVALID_NHS_NUMBER)
