"""Window splitting, the JWT, headers and error mapping of the GP Connect adapter (no network)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import uuid

import httpx
import pytest

from patient_online.adapters.gpconnect import GPConnectClinicalSystem
from patient_online.adapters.gpconnect import constants as c
from patient_online.adapters.gpconnect.errors import ProviderRejected, map_error
from patient_online.adapters.gpconnect.fhir_parse import Outcome
from patient_online.adapters.gpconnect.http import Endpoint
from patient_online.adapters.gpconnect.jwt import Requester, build_token, check_claims, decode_unsigned
from patient_online.adapters.gpconnect.windows import london_iso, split_window
from patient_online.domain.appointments import SlotQuery
from patient_online.domain.errors import (
    AlreadyBooked,
    ClinicalSystemError,
    ClinicalSystemUnavailable,
    NoPatientConsent,
    NotFound,
    PatientNotFound,
    SlotUnavailable,
    StaleVersion,
)
from patient_online.domain.patients import PatientRef
from patient_online.domain.record import Section

UTC = dt.UTC


def test_split_window_into_fourteen_day_pieces() -> None:
    start = dt.datetime(2025, 3, 1, tzinfo=UTC)
    windows = split_window(start, start + dt.timedelta(days=30))
    assert [(e - s).days for s, e in windows] == [14, 14, 2]
    assert windows[0][0] == start and windows[-1][1] == start + dt.timedelta(days=30)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))
    assert split_window(start, start) == []
    assert split_window(start, start + dt.timedelta(days=14)) == [(start, start + dt.timedelta(days=14))]


def test_london_offsets_follow_summer_time() -> None:
    assert london_iso(dt.datetime(2025, 1, 15, 9, 0, tzinfo=UTC)) == "2025-01-15T09:00:00+00:00"
    assert london_iso(dt.datetime(2025, 7, 15, 9, 0, tzinfo=UTC)) == "2025-07-15T10:00:00+01:00"


def test_jwt_has_the_gp_connect_claims() -> None:
    token = build_token(Requester(consumer_ods="X26"), "http://provider/fhir", "patient/*.read", now=1_700_000_000)
    header, claims = decode_unsigned(token)
    assert header == {"alg": "none", "typ": "JWT"}
    assert token.endswith(".")
    assert claims["exp"] == claims["iat"] + 300
    assert claims["reason_for_request"] == "directcare"
    assert claims["aud"] == "http://provider/fhir"
    assert claims["requested_scope"] == "patient/*.read"
    assert claims["requesting_organization"]["identifier"][0] == {"system": c.ODS_SYSTEM, "value": "X26"}
    assert claims["requesting_device"]["resourceType"] == "Device"
    assert claims["sub"] == claims["requesting_practitioner"]["id"]
    assert check_claims(claims, now=1_700_000_010) == []
    assert "token expired" in check_claims(claims, now=1_700_000_400)
    del claims["requesting_device"]
    assert check_claims(claims) == ["missing claim requesting_device"]


@pytest.mark.parametrize(
    ("status", "code", "conditional", "expected"),
    [
        (409, c.DUPLICATE_REJECTED, False, AlreadyBooked),
        (404, c.PATIENT_NOT_FOUND, False, PatientNotFound),
        (403, c.NO_PATIENT_CONSENT, False, NoPatientConsent),
        (409, c.FHIR_CONSTRAINT_VIOLATION, True, StaleVersion),
        (412, "", True, StaleVersion),
        (404, c.NO_RECORD_FOUND, False, PatientNotFound),
        (422, c.INVALID_RESOURCE, False, ProviderRejected),
        (400, c.BAD_REQUEST, False, ProviderRejected),
        (400, c.INVALID_NHS_NUMBER, False, PatientNotFound),
        (500, c.INTERNAL_SERVER_ERROR, False, ClinicalSystemUnavailable),
        (502, "", False, ClinicalSystemUnavailable),
    ],
)
def test_error_mapping(status: int, code: str, conditional: bool, expected: type[Exception]) -> None:
    outcome = Outcome(code, "invalid", "error") if code else None
    error = map_error(status, outcome, conditional=conditional)
    assert type(error) is expected
    assert isinstance(error, SlotUnavailable | StaleVersion | NotFound | ClinicalSystemError)
    assert error.message and "Traceback" not in error.message


PATIENT = PatientRef("A20047", "9990000018", "1")


def _system(handler: httpx.MockTransport) -> GPConnectClinicalSystem:
    endpoint = Endpoint("http://provider.test/fhir", "918999198993", "200000000359", "A20047", "X26")
    return GPConnectClinicalSystem(endpoint, "A20047", transport=handler)


def test_every_request_carries_spine_headers_and_a_fresh_trace_id() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "entry": []})

    system = _system(httpx.MockTransport(handler))
    now = dt.datetime(2025, 7, 1, 8, 0, tzinfo=UTC)
    system.search_slots(SlotQuery(now, now + dt.timedelta(days=20)))
    system.find_patient("9990000018")
    system.close()
    assert len(seen) == 3  # 20 days -> two slot searches
    traces = {r.headers["Ssp-TraceID"] for r in seen}
    assert len(traces) == 3 and all(uuid.UUID(t).version == 4 for t in traces)
    for request in seen:
        assert request.headers["Ssp-From"] == "200000000359"
        assert request.headers["Ssp-To"] == "918999198993"
        assert request.headers["Accept"] == c.FHIR_JSON
        assert request.headers["Authorization"].startswith("Bearer ")
    assert [r.headers["Ssp-InteractionID"] for r in seen] == [
        c.Interaction.SEARCH_SLOTS,
        c.Interaction.SEARCH_SLOTS,
        c.Interaction.SEARCH_PATIENT,
    ]
    first = seen[0].url.params
    assert first.get_list("start") == ["ge2025-07-01T09:00:00+01:00"]
    assert first.get_list("end") == ["le2025-07-15T09:00:00+01:00"]
    assert first.get_list("_include") == ["Slot:schedule"]
    assert set(first.get_list("_include:recurse")) == {"Schedule:actor:Practitioner", "Schedule:actor:Location"}
    assert f"{c.ODS_SYSTEM}|X26" in first.get_list("searchFilter")


def test_record_request_asks_only_for_the_sections_needed() -> None:
    bodies: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        assert request.headers["Content-Type"] == c.FHIR_JSON
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "collection", "entry": []})

    system = _system(httpx.MockTransport(handler))
    system.get_record(PATIENT, frozenset({Section.ALLERGIES, Section.TEST_RESULTS}))
    system.close()
    names = [p["name"] for p in bodies[0]["parameter"]]  # type: ignore[index, union-attr, attr-defined]
    assert names == [c.PARAM_NHS_NUMBER, c.PARAM_ALLERGIES, c.PARAM_INVESTIGATIONS]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_failures_log_no_patient_data() -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "invalid",
                "details": {"coding": [{"system": c.SPINE_ERROR_SYSTEM, "code": c.INVALID_RESOURCE}]},
                "diagnostics": "Patient Alice Example 9990000018 has asthma",
            }
        ],
    }
    system = _system(httpx.MockTransport(lambda request: httpx.Response(422, json=outcome)))
    collect = _Collect()
    logger = logging.getLogger("patient_online.adapters.gpconnect")
    logger.addHandler(collect)
    try:
        with pytest.raises(ClinicalSystemError) as raised:
            system.get_record(PATIENT, frozenset({Section.PROBLEMS}))
    finally:
        logger.removeHandler(collect)
        system.close()
    assert type(raised.value) is ProviderRejected
    assert collect.records, "the failure is logged"
    logged = " ".join(r.getMessage() for r in collect.records)
    assert "INVALID_RESOURCE" in logged
    for secret in ("9990000018", "Alice", "asthma", "Example"):
        assert secret not in logged
        assert secret not in raised.value.message


def test_transport_errors_are_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    system = _system(httpx.MockTransport(handler))
    with pytest.raises(ClinicalSystemUnavailable):
        system.find_patient("9990000018")
    assert system.link_state().ok is False
    system.close()


# --------------------------------------------------------------------------- request shapes of appointments

_PROVIDER_NOW = dt.datetime(2025, 7, 1, 23, 30, tzinfo=UTC)  # already 2 July in London (BST)


def _bundle(*resources: dict[str, object]) -> dict[str, object]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def _appointment_resource(patient_id: str = "1", appointment_id: str = "7", version: str = "3") -> dict[str, object]:
    return {
        "resourceType": "Appointment",
        "id": appointment_id,
        "meta": {"versionId": version},
        "status": "booked",
        "description": "Sore knee",
        "start": "2025-07-10T09:00:00+01:00",
        "end": "2025-07-10T09:10:00+01:00",
        "slot": [{"reference": "Slot/5"}],
        "serviceType": [{"text": "GP Appointment"}],
        "participant": [
            {"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"},
            {"actor": {"reference": "Practitioner/2"}, "status": "accepted"},
            {"actor": {"reference": "Location/3"}, "status": "accepted"},
        ],
    }


_PRACTITIONER = {
    "resourceType": "Practitioner",
    "id": "2",
    "name": [{"family": "Black", "given": ["Sarah"], "prefix": ["Dr"]}],
}
_LOCATION = {"resourceType": "Location", "id": "3", "name": "Riverside branch surgery"}


class FakeProvider:
    """Answers like a provider that references Practitioner and Location without including them."""

    def __init__(self, logical_id: str = "1") -> None:
        self.logical_id = logical_id
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/fhir")
        if path == "/Patient":
            nhs = request.url.params["identifier"].rsplit("|", 1)[-1]
            found = self.logical_id if nhs == PATIENT.nhs_number else "99"
            patient = {
                "resourceType": "Patient",
                "id": found,
                "identifier": [{"system": c.NHS_NUMBER_SYSTEM, "value": nhs}],
                "name": [{"family": "Example", "given": ["Alice"]}],
                "birthDate": "1980-01-01",
            }
            return httpx.Response(200, json=_bundle(patient))
        if path.endswith("/Appointment") and path.startswith("/Patient/"):
            if path != f"/Patient/{self.logical_id}/Appointment":
                return httpx.Response(404, json=_outcome("NO_RECORD_FOUND"))
            return httpx.Response(200, json=_bundle(_appointment_resource(self.logical_id)))
        if path == "/Practitioner/2":
            return httpx.Response(200, json=_PRACTITIONER)
        if path == "/Location/3":
            return httpx.Response(200, json=_LOCATION)
        if path == "/Appointment/7" and request.method == "GET":
            return httpx.Response(200, json=_appointment_resource(self.logical_id), headers={"ETag": 'W/"3"'})
        if path == "/Appointment/7" and request.method == "PUT":
            body = json.loads(request.content)
            body["meta"]["versionId"] = "4"
            return httpx.Response(200, json=body)
        return httpx.Response(404, json=_outcome("NO_RECORD_FOUND"))

    def paths(self) -> list[str]:
        return [r.url.path.removeprefix("/fhir") for r in self.requests]


def _outcome(code: str) -> dict[str, object]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "not-found",
                "details": {"coding": [{"system": c.SPINE_ERROR_SYSTEM, "code": code}]},
            }
        ],
    }


def _gpc(provider: FakeProvider, **kwargs: object) -> GPConnectClinicalSystem:
    endpoint = Endpoint("http://provider.test/fhir", "918999198993", "200000000359", "A20047", "X26")
    return GPConnectClinicalSystem(
        endpoint,
        "A20047",
        transport=httpx.MockTransport(provider),
        clock=lambda: _PROVIDER_NOW,
        **kwargs,  # type: ignore[arg-type]
    )


def test_appointments_are_asked_from_today_with_both_dates_and_no_time() -> None:
    provider = FakeProvider()
    system = _gpc(provider, appointment_days=90)
    system.list_appointments(PATIENT, _PROVIDER_NOW - dt.timedelta(days=400))
    search = provider.requests[0]
    assert search.url.path == "/fhir/Patient/1/Appointment"
    assert search.headers["Ssp-InteractionID"] == c.Interaction.SEARCH_PATIENT_APPOINTMENTS
    assert search.url.params.get_list("start") == ["ge2025-07-02", "le2025-09-30"]
    system.list_appointments(PATIENT, _PROVIDER_NOW + dt.timedelta(days=5))
    assert provider.requests[-1].url.params.get_list("start") == ["ge2025-07-07", "le2025-10-05"]


def test_referenced_practitioner_and_location_are_read_once_and_kept_for_a_while() -> None:
    provider = FakeProvider()
    ticks = [0.0]
    system = _gpc(provider, reference_seconds=60.0, monotonic=lambda: ticks[0])
    first = system.list_appointments(PATIENT, _PROVIDER_NOW)[0]
    assert first.slot.clinician.name == "Dr Sarah Black" and first.slot.clinician.id == "2"
    assert first.slot.location == "Riverside branch surgery"
    assert [p for p in provider.paths() if not p.startswith("/Patient")] == ["/Practitioner/2", "/Location/3"]
    interactions = {r.url.path.split("/")[2]: r.headers["Ssp-InteractionID"] for r in provider.requests[1:]}
    assert interactions == {"Practitioner": c.Interaction.READ_PRACTITIONER, "Location": c.Interaction.READ_LOCATION}
    system.list_appointments(PATIENT, _PROVIDER_NOW)
    assert len([p for p in provider.paths() if not p.startswith("/Patient")]) == 2  # cached
    ticks[0] = 61.0
    system.list_appointments(PATIENT, _PROVIDER_NOW)
    assert len([p for p in provider.paths() if not p.startswith("/Patient")]) == 4  # read again after the TTL


def test_an_unknown_logical_id_is_found_again_by_nhs_number_and_tried_once_more() -> None:
    provider = FakeProvider(logical_id="42")
    told: list[tuple[str, str, str]] = []
    system = _gpc(provider, on_patient_id=lambda *found: told.append(found))
    listed = system.list_appointments(PATIENT, _PROVIDER_NOW)
    assert [a.id for a in listed] == ["7"]
    assert provider.paths()[:3] == ["/Patient/1/Appointment", "/Patient", "/Patient/42/Appointment"]
    assert provider.requests[1].url.params["identifier"] == f"{c.NHS_NUMBER_SYSTEM}|{PATIENT.nhs_number}"
    assert told == [("A20047", PATIENT.nhs_number, "42")]
    system.list_appointments(PATIENT, _PROVIDER_NOW)
    assert provider.paths()[-1] == "/Patient/42/Appointment"  # the new id is used from then on
    assert system.system_key == "gpconnect:http://provider.test/fhir"


def test_a_patient_the_provider_does_not_know_at_all_is_not_found() -> None:
    provider = FakeProvider(logical_id="1")

    def no_patient(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/fhir/Patient":
            provider.requests.append(request)
            return httpx.Response(200, json=_bundle())
        return provider(request)

    endpoint = Endpoint("http://provider.test/fhir", "918999198993", "200000000359", "A20047", "X26")
    system = GPConnectClinicalSystem(endpoint, "A20047", transport=httpx.MockTransport(no_patient))
    with pytest.raises(PatientNotFound):
        system.list_appointments(PatientRef("A20047", PATIENT.nhs_number, "9"), _PROVIDER_NOW)


def test_amend_puts_back_the_appointment_with_only_the_description_changed() -> None:
    provider = FakeProvider()
    system = _gpc(provider)
    amended = system.amend(PATIENT, "7", "  Sore knee   and ankle ")
    put = (
        provider.requests[-1]
        if provider.requests[-1].method == "PUT"
        else next(r for r in provider.requests if r.method == "PUT")
    )
    assert put.headers["Ssp-InteractionID"] == c.Interaction.AMEND_APPOINTMENT
    assert put.headers["If-Match"] == 'W/"3"'
    sent = json.loads(put.content)
    original = _appointment_resource()
    assert sent["description"] == "Sore knee and ankle"
    assert {k: v for k, v in sent.items() if k != "description"} == {
        k: v for k, v in original.items() if k != "description"
    }
    assert amended.reason == "Sore knee and ankle" and amended.version == "4"
    assert amended.slot.clinician.name == "Dr Sarah Black"


def test_amend_refuses_someone_elses_cancelled_or_past_appointment() -> None:
    from patient_online.domain.errors import NotAllowed

    provider = FakeProvider()
    system = _gpc(provider)
    with pytest.raises(NotFound):
        system.amend(PatientRef("A20047", "9990000026", "2"), "7", "mine now")
    cancelled = FakeProvider()
    original = cancelled.__call__

    def answer(request: httpx.Request) -> httpx.Response:
        reply = original(request)
        if request.method == "GET" and request.url.path.endswith("/Appointment/7"):
            body = json.loads(reply.content)
            body["status"] = "cancelled"
            return httpx.Response(200, json=body)
        return reply

    endpoint = Endpoint("http://provider.test/fhir", "918999198993", "200000000359", "A20047", "X26")
    system = GPConnectClinicalSystem(
        endpoint, "A20047", transport=httpx.MockTransport(answer), clock=lambda: _PROVIDER_NOW
    )
    with pytest.raises(NotAllowed):
        system.amend(PATIENT, "7", "too late")
    late = _gpc(FakeProvider())
    late._clock = lambda: dt.datetime(2025, 7, 11, tzinfo=UTC)
    with pytest.raises(NotAllowed):
        late.amend(PATIENT, "7", "too late")


def test_slots_whose_schedule_actors_were_not_included_are_resolved_by_reading_them() -> None:
    provider = FakeProvider()
    original = provider.__call__

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/fhir/Slot":
            provider.requests.append(request)
            schedule = {
                "resourceType": "Schedule",
                "id": "9",
                "actor": [{"reference": "Location/3"}, {"reference": "Practitioner/2"}],
                "serviceCategory": {"text": "Morning clinic"},
            }
            slot = {
                "resourceType": "Slot",
                "id": "5",
                "schedule": {"reference": "Schedule/9"},
                "status": "free",
                "start": "2025-07-10T09:00:00+01:00",
                "end": "2025-07-10T09:10:00+01:00",
            }
            return httpx.Response(200, json=_bundle(schedule, slot))
        return original(request)

    endpoint = Endpoint("http://provider.test/fhir", "918999198993", "200000000359", "A20047", "X26")
    system = GPConnectClinicalSystem(endpoint, "A20047", transport=httpx.MockTransport(answer))
    start = dt.datetime(2025, 7, 10, 7, 0, tzinfo=UTC)
    (slot,) = system.search_slots(SlotQuery(start, start + dt.timedelta(hours=4)))
    assert slot.clinician.name == "Dr Sarah Black" and slot.clinician.id == "2"
    assert slot.location == "Riverside branch surgery"
    assert [r.url.path for r in provider.requests[1:]] == ["/fhir/Practitioner/2", "/fhir/Location/3"]
