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
        (409, c.DUPLICATE_REJECTED, False, SlotUnavailable),
        (404, c.PATIENT_NOT_FOUND, False, PatientNotFound),
        (403, c.NO_PATIENT_CONSENT, False, NoPatientConsent),
        (409, c.FHIR_CONSTRAINT_VIOLATION, True, StaleVersion),
        (412, "", True, StaleVersion),
        (404, c.NO_RECORD_FOUND, False, NotFound),
        (422, c.INVALID_RESOURCE, False, ProviderRejected),
        (400, c.BAD_REQUEST, False, ProviderRejected),
        (400, c.INVALID_NHS_NUMBER, False, ProviderRejected),
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
