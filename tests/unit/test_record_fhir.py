"""The FHIR R4 export: one resource per visible entry, notes escaped, values typed."""

from __future__ import annotations

import base64
import datetime as dt
import json

from patient_online.domain.record import RecordEntry, Section
from patient_online.services.record_fhir import record_bundle

DAY = dt.date(2025, 5, 5)


def bundle(*entries: RecordEntry) -> dict[str, object]:
    return record_bundle(
        nhs_number="9990010005",
        given_name="Aisha",
        family_name="Jones",
        date_of_birth=dt.date(1984, 4, 26),
        practice_ods="Y02001",
        practice_name="Riverside Medical Centre",
        entries=list(entries),
        now=dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC),
    )


def resources(data: dict[str, object]) -> list[dict[str, object]]:
    return [e["resource"] for e in data["entry"]]  # type: ignore[attr-defined,index]


def test_an_empty_record_is_a_collection_with_the_patient_and_practice() -> None:
    data = bundle()
    assert data["resourceType"] == "Bundle" and data["type"] == "collection"
    assert [r["resourceType"] for r in resources(data)] == ["Patient", "Organization"]
    json.dumps(data)  # plain JSON all the way down


def test_consultation_notes_are_escaped_in_a_composition() -> None:
    notes = RecordEntry("c1", Section.CONSULTATIONS, DAY, "Consultation", code="185317003", free_text="<b>x</b> & y")
    coded_only = RecordEntry("c2", Section.CONSULTATIONS, DAY, "Review", code="185317003")
    found = resources(bundle(notes, coded_only))
    assert [r["resourceType"] for r in found[2:]] == ["Encounter", "Composition", "Encounter"]
    div = found[3]["section"][0]["text"]["div"]  # type: ignore[index]
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in div and div.startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
    assert found[3]["encounter"] == {"reference": f"urn:uuid:{found[2]['id']}"}


def test_results_are_quantities_when_numeric_and_strings_otherwise() -> None:
    numeric = RecordEntry("t1", Section.TEST_RESULTS, DAY, "eGFR", value="58.9", unit="mL/min", outside_range=True)
    text = RecordEntry("t2", Section.TEST_RESULTS, DAY, "Urine dip", value="Trace protein")
    first, second = resources(bundle(numeric, text))[2:]
    assert first["valueQuantity"] == {"value": 58.9, "unit": "mL/min"}
    assert first["interpretation"][0]["coding"][0]["code"] == "A"  # type: ignore[index]
    assert second["valueString"] == "Trace protein" and "interpretation" not in second


def test_documents_carry_their_text_as_an_attachment() -> None:
    letter = RecordEntry("d1", Section.DOCUMENTS, DAY, "Discharge letter", free_text="Home after a short stay.")
    (document,) = resources(bundle(letter))[2:]
    attachment = document["content"][0]["attachment"]  # type: ignore[index]
    assert base64.b64decode(attachment["data"]).decode() == "Home after a short stay."
    assert document["status"] == "current" and document["subject"]["reference"].startswith("urn:uuid:")  # type: ignore[index]


def test_ids_are_stable_for_the_same_entries() -> None:
    entry = RecordEntry("a1", Section.ALLERGIES, DAY, "Penicillin allergy", code="91936005", severity="Severe")
    assert resources(bundle(entry)) == resources(bundle(entry))
    assert resources(bundle(entry))[2]["reaction"][0]["severity"] == "severe"  # type: ignore[index]
