"""The GP record online (issue 7): sections by level, withheld entries never leave the server, downloads,
audit events, and what the patient sees when the practice's system is down."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from patient_online import wiring
from patient_online.adapters.demo.models import DemoRecordEntry
from patient_online.domain.record import RecordEntry, RecordExtract, RecordNotice, Section
from patient_online.models import AccountLink, AuditEvent, Patient, Practice, ProxyLink, User
from patient_online.services import record as records
from patient_online.services.access import acting_for
from tests.fakes import FakeClinicalSystem

PATIENT = "patient.y02001@example.com"
ALL_SECTIONS = [s.value for s in Section]
START = dt.date(2023, 10, 31)
RECORD_URLS = ["/record", *[f"/record/{s}" for s in ALL_SECTIONS], "/record/download", "/record/download.json"]

VISIBLE_SECTIONS = {
    "summary": {"allergies", "medications"},
    "detailed": {"allergies", "medications", "problems", "immunisations", "test-results", "consultations"},
    "full": set(ALL_SECTIONS),
    "historic": set(ALL_SECTIONS),
}


# Helpers --------------------------------------------------------------------------------------------------
def own_patient(session: Any, email: str) -> Patient:
    user = session.scalar(select(User).where(User.email == email))
    link = session.scalar(select(AccountLink).where(AccountLink.user_id == user.id))
    return session.get(Patient, link.patient_id)  # type: ignore[no-any-return]


def set_level(app: Any, email: str, level: str | None) -> Patient:
    """Give the signed-in demo patient a per-patient level, as reception would (None: practice default)."""
    from patient_online.extensions import db

    with app.app_context():
        patient = own_patient(db.session, email)
        patient.record_level = level
        db.session.commit()
        return patient


def searchable(response: Any) -> str:
    """Everything a browser or an app could read in a response: HTML unescaped, FHIR attachments decoded."""
    body = response.get_data(as_text=True)
    if response.mimetype == "application/fhir+json":
        decoded = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if isinstance(node.get("data"), str):
                    decoded.append(base64.b64decode(node["data"]).decode())
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(json.loads(body))
        body = "\n".join([json.dumps(json.loads(body), ensure_ascii=False), *decoded])
    return html.unescape(body)


def read_everything(client: Any) -> dict[str, str]:
    """Every record page and download, typed by hand, whatever the level."""
    return {url: searchable(client.get(url)) for url in RECORD_URLS}


@dataclass(frozen=True)
class Expected:
    hidden: set[str]  # texts that must appear nowhere
    shown: set[str]  # texts that must appear somewhere


def demo_expectations(session: Any, clinical_id: str, level: str) -> Expected:
    """From the demo tables, stated independently of the code under test: what must not leave the server."""
    rows = list(session.scalars(select(DemoRecordEntry).where(DemoRecordEntry.patient_id == clinical_id)))
    hidden: set[str] = set()
    shown: set[str] = set()
    for row in rows:
        flagged = row.confidential or row.third_party or row.serious_harm or not row.filed
        section_hidden = row.section not in VISIBLE_SECTIONS[level]
        free_text_only = row.section == "documents" or (row.section == "consultations" and not row.code)
        notes_allowed = level == "historic" or (level == "full" and row.date >= START)
        if flagged or section_hidden or (free_text_only and not notes_allowed):
            hidden |= {row.term, row.free_text}
            if not row.filed:
                hidden |= {row.reference_range, f"{row.value} {row.unit}"}
        else:
            shown.add(row.term)
            (shown if notes_allowed else hidden).add(row.free_text)
    hidden.discard("")
    shown.discard("")
    return Expected(hidden - shown, shown)


def assert_nothing_withheld(pages: dict[str, str], hidden: set[str]) -> None:
    assert hidden, "the demo data must have withheld entries to look for"
    leaks = [(url, text) for url, page in pages.items() for text in hidden if text in page]
    assert not leaks, f"withheld text reached the browser: {leaks}"


# The withheld-text search over the demo data ------------------------------------------------------------
@pytest.mark.parametrize("level", ["summary", "detailed", "full", "historic"])
def test_no_withheld_demo_entry_reaches_any_page_or_download(app: Any, client: Any, sign_in: Any, level: str) -> None:
    patient = set_level(app, PATIENT, level)
    sign_in(PATIENT)
    pages = read_everything(client)
    with app.app_context():
        from patient_online.extensions import db

        expected = demo_expectations(db.session, patient.clinical_id, level)
    flags = {f"CONFIDENTIAL-{patient.clinical_id}", f"THIRDPARTY-{patient.clinical_id}", f"HARM-{patient.clinical_id}"}
    assert flags <= {t.split(":")[0] for t in expected.hidden}
    assert {"Serum ferritin", "15 - 300"} <= expected.hidden
    assert_nothing_withheld(pages, expected.hidden | flags)
    everything = "\n".join(pages.values())
    assert all(text in everything for text in expected.shown), expected.shown - {
        t for t in expected.shown if t in everything
    }
    if level == "full":
        assert (
            "Outpatient letter (2021)" in expected.hidden and "Seen in clinic, no follow-up needed." in expected.hidden
        )
    if level == "historic":
        assert "Outpatient letter (2021)" in pages["/record/documents"]
        assert "Seen in clinic, no follow-up needed." in pages["/record/download.json"]


def test_a_proxy_sees_only_their_level_and_nothing_withheld(app: Any, client: Any, sign_in: Any) -> None:
    from patient_online.extensions import db

    sign_in("parent.y02001@example.com")
    with app.app_context():
        parent = db.session.scalar(select(User).where(User.email == "parent.y02001@example.com"))
        link = db.session.scalar(select(ProxyLink).where(ProxyLink.proxy_user_id == parent.id))
        child_id, clinical_id = link.patient_id, link.patient.clinical_id
        expected = demo_expectations(db.session, clinical_id, "summary")
    with client.raw.session_transaction() as s:
        s["acting_for"] = child_id
    pages = read_everything(client)
    assert_nothing_withheld(pages, expected.hidden | {f"CONFIDENTIAL-{clinical_id}", f"HARM-{clinical_id}"})
    assert client.get("/record/problems").status_code == 403
    overview = pages["/record"]
    assert "As a proxy for" in overview and "allergies, adverse reactions and medicines" in overview
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "record.viewed")).all()
        assert events and all(e.actor_role == "proxy" and e.patient_id == child_id for e in events)


# Withholding proved with distinctive texts for every reason, through a fake clinical system -------------
def fake_record(nhs_number: str) -> FakeClinicalSystem:
    old = dt.date(2021, 5, 5)
    new = dt.date(2025, 5, 5)

    def e(id_: str, section: Section, when: dt.date, term: str, **kw: Any) -> RecordEntry:
        return RecordEntry(id=id_, section=section, date=when, term=term, **kw)

    entries = [
        e("a1", Section.ALLERGIES, new, "Penicillin allergy", code="91936005", reaction="Rash", severity="Moderate"),
        e("a2", Section.ALLERGIES, new, "Secret-allergy-CONF", code="1", confidential=True),
        e("m1", Section.MEDICATIONS, new, "Ramipril 5mg capsules", code="2", dosage="One a day", status="current"),
        e("m2", Section.MEDICATIONS, old, "Amoxicillin 500mg capsules", code="3", status="stopped"),
        e("m3", Section.MEDICATIONS, new, "Harmful-medicine-HARM", code="4", serious_harm=True),
        e("p1", Section.PROBLEMS, old, "Asthma", code="195967001", free_text="Old-problem-note-BEFORE"),
        e("p2", Section.PROBLEMS, new, "Problem-about-sister-THIRD", code="5", third_party=True),
        e("i1", Section.IMMUNISATIONS, new, "Influenza vaccination", code="86198006"),
        e("t1", Section.TEST_RESULTS, new, "Haemoglobin", code="6", value="131", unit="g/L", filed_on=new),
        e("t2", Section.TEST_RESULTS, new, "Unfiled-result-NOTFILED", code="7", value="77777", filed=False),
        e("c1", Section.CONSULTATIONS, new, "Consultation with GP", code="185317003", free_text="New-notes-FULL"),
        e("c2", Section.CONSULTATIONS, old, "Old consultation", code="185317003", free_text="Old-notes-BEFORE"),
        e("c3", Section.CONSULTATIONS, new, "Telephone call", free_text="Notes-only-FREETEXT"),
        e("c4", Section.CONSULTATIONS, new, "Safeguarding", code="8", free_text="Conf-notes-CONF", confidential=True),
        e("d1", Section.DOCUMENTS, new, "Discharge letter", free_text="New-document-text-FULL"),
        e("d2", Section.DOCUMENTS, old, "Old-letter-BEFORE", free_text="Old-document-text-BEFORE"),
        e("d3", Section.DOCUMENTS, new, "Family-letter-HARM", free_text="Harm-text-HARM", serious_harm=True),
    ]
    notices = [
        RecordNotice(Section.TEST_RESULTS, "Some information has been received but has not been reviewed yet."),
        RecordNotice(None, "Some of your record may be missing because it is still being transferred."),
    ]
    return FakeClinicalSystem(record={nhs_number: RecordExtract(entries=entries, notices=notices)})


FAKE_HIDDEN = {
    # level: markers that must appear nowhere, beyond the flagged ones hidden at every level
    "summary": {
        "Asthma",
        "Haemoglobin",
        "Influenza",
        "Consultation with GP",
        "Telephone call",
        "Discharge letter",
        "FREETEXT",
        "FULL",
    },
    "detailed": {"Discharge letter", "Telephone call", "FREETEXT", "FULL", "BEFORE"},
    "full": {"BEFORE"},
    "historic": set(),
}
FAKE_SHOWN = {
    "summary": {"Penicillin allergy", "Ramipril 5mg capsules", "Amoxicillin 500mg capsules"},
    "detailed": {"Asthma", "Haemoglobin", "131 g/L", "Influenza vaccination", "Old consultation"},
    "full": {"New-notes-FULL", "Telephone call", "Notes-only-FREETEXT", "New-document-text-FULL", "Old consultation"},
    "historic": {"Old-notes-BEFORE", "Old-document-text-BEFORE", "Old-problem-note-BEFORE", "Old-letter-BEFORE"},
}
ALWAYS_HIDDEN = {"CONF", "HARM", "THIRD", "NOTFILED", "77777"}


@pytest.fixture
def faked(app: Any) -> Iterator[FakeClinicalSystem]:
    from patient_online.extensions import db

    with app.app_context():
        fake = fake_record(own_patient(db.session, PATIENT).nhs_number)
    wiring.override_clinical(app, "Y02001", fake)
    yield fake
    wiring.override_clinical(app, "Y02001", None)


@pytest.mark.parametrize("level", ["summary", "detailed", "full", "historic"])
def test_every_withholding_reason_is_kept_on_the_server(
    app: Any, client: Any, sign_in: Any, faked: FakeClinicalSystem, level: str
) -> None:
    set_level(app, PATIENT, level)
    sign_in(PATIENT)
    pages = read_everything(client)
    hidden = ALWAYS_HIDDEN | FAKE_HIDDEN[level]
    for url, page in pages.items():
        main = page.split('id="maincontent"', 1)[-1]  # the header holds the patient's own name only
        leaks = [text for text in hidden if text in main]
        assert not leaks, f"{url} at {level} shows withheld {leaks}"
    everything = "\n".join(pages.values())
    missing = {t for t in FAKE_SHOWN[level] if t not in everything}
    assert not missing, f"at {level} these should be shown: {missing}"


def test_notices_are_shown_in_plain_words(client: Any, sign_in: Any, faked: FakeClinicalSystem) -> None:
    sign_in(PATIENT)
    overview = client.get("/record").get_data(as_text=True)
    assert "still being transferred" in overview
    results = client.get("/record/test-results").get_data(as_text=True)
    assert "has not been reviewed yet" in results and "still being transferred" in results
    allergies = client.get("/record/allergies").get_data(as_text=True)
    assert "has not been reviewed yet" not in allergies


# Sections by level ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("level", ["none", "summary", "detailed", "full", "historic"])
def test_each_section_answers_by_level(app: Any, client: Any, sign_in: Any, level: str) -> None:
    set_level(app, PATIENT, level)
    sign_in(PATIENT)
    overview = client.get("/record")
    if level == "none":
        assert overview.status_code == 403
    else:
        assert overview.status_code == 200
        assert "What you can see" in overview.get_data(as_text=True)
    for section in Section:
        response = client.get(f"/record/{section.value}")
        page = response.get_data(as_text=True)
        if level != "none" and section.value in VISIBLE_SECTIONS[level]:
            assert response.status_code == 200, (level, section)
            assert f"<h1>{section.label}</h1>" in page
        else:
            assert response.status_code == 403, (level, section)
            assert "You cannot see this page" in page
            if level != "none":
                assert f"does not include {section.label.lower()}" in page
    assert client.get("/record/no-such-section").status_code == 404


def test_overview_explains_the_level_and_how_to_ask_for_more(app: Any, client: Any, sign_in: Any) -> None:
    set_level(app, PATIENT, "detailed")
    sign_in(PATIENT)
    page = html.unescape(client.get("/record").get_data(as_text=True))
    assert "Detailed record." in page and "coded" not in page.split("<main")[1]
    assert "Not included at this level: documents." in page
    assert "Riverside Medical Centre on 01632 960 101" in page
    assert "ask for access to the full record" in page
    assert 'href="/record/test-results"' in page and 'href="/record/documents"' not in page


def test_test_results_show_value_range_flag_and_dates(client: Any, sign_in: Any, faked: FakeClinicalSystem) -> None:
    sign_in(PATIENT)
    page = html.unescape(client.get("/record/test-results").get_data(as_text=True))
    assert "nhsuk-table-responsive" in page
    for words in ("Haemoglobin", "131 g/L", "Date taken", "Date filed", "5 May 2025"):
        assert words in page


def test_sections_are_newest_first_and_medicines_split_current_and_past(
    client: Any, sign_in: Any, faked: FakeClinicalSystem
) -> None:
    sign_in(PATIENT)
    meds = client.get("/record/medications").get_data(as_text=True)
    assert meds.index("Current medicines") < meds.index("Ramipril") < meds.index("Past medicines") < meds.index("Amoxi")
    consultations = client.get("/record/consultations").get_data(as_text=True)
    assert consultations.index("Consultation with GP") < consultations.index("Old consultation")


# Downloads ------------------------------------------------------------------------------------------------
def test_fhir_download_is_an_r4_collection_of_exactly_the_entries_shown(
    app: Any, client: Any, sign_in: Any, faked: FakeClinicalSystem
) -> None:
    set_level(app, PATIENT, "full")
    sign_in(PATIENT)
    response = client.get("/record/download.json")
    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    bundle = response.get_json(force=True)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    resources = [entry["resource"] for entry in bundle["entry"]]
    assert all(entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}" for entry in bundle["entry"])
    counts: dict[str, int] = {}
    for resource in resources:
        counts[resource["resourceType"]] = counts.get(resource["resourceType"], 0) + 1
    # full: 1 allergy, 2 medicines, 1 problem, 1 vaccination, 1 filed result, 3 consultations (2 with notes), 1 document
    assert counts == {
        "Patient": 1,
        "Organization": 1,
        "AllergyIntolerance": 1,
        "MedicationStatement": 2,
        "Condition": 1,
        "Immunization": 1,
        "Observation": 1,
        "Encounter": 3,
        "Composition": 2,
        "DocumentReference": 1,
    }
    required = {
        "AllergyIntolerance": {"patient", "code"},
        "MedicationStatement": {"status", "medicationCodeableConcept", "subject"},
        "Condition": {"subject", "code"},
        "Immunization": {"status", "vaccineCode", "patient", "occurrenceDateTime"},
        "Observation": {"status", "code", "subject", "valueQuantity", "issued"},
        "Encounter": {"status", "class", "subject"},
        "Composition": {"status", "type", "date", "author", "title"},
        "DocumentReference": {"status", "content", "subject"},
    }
    for resource in resources:
        assert required.get(resource["resourceType"], set()) <= resource.keys(), resource
    observation = next(r for r in resources if r["resourceType"] == "Observation")
    assert observation["valueQuantity"] == {"value": 131.0, "unit": "g/L"}
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    assert patient["identifier"][0]["system"] == "https://fhir.nhs.uk/Id/nhs-number"


def test_printable_page_holds_every_visible_section(app: Any, client: Any, sign_in: Any) -> None:
    set_level(app, PATIENT, "detailed")
    sign_in(PATIENT)
    page = client.get("/record/download").get_data(as_text=True)
    for section in Section:
        assert (f'id="section-{section.value}"' in page) == (section.value in VISIBLE_SECTIONS["detailed"])
    assert "print option" in page and "css/print.css" in page


# Audit ----------------------------------------------------------------------------------------------------
def test_every_view_and_download_is_audited_and_shown_on_the_activity_page(app: Any, client: Any, sign_in: Any) -> None:
    from patient_online.extensions import db

    sign_in(PATIENT)
    for url in ("/record", "/record/test-results", "/record/download", "/record/download.json"):
        assert client.get(url).status_code == 200
    with app.app_context():
        patient = own_patient(db.session, PATIENT)
        events = db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.patient_id == patient.id, AuditEvent.action.like("record.%"))
            .order_by(AuditEvent.id)
        ).all()
        assert [(e.action, e.detail) for e in events] == [
            ("record.viewed", {"section": "overview"}),
            ("record.viewed", {"section": "test-results"}),
            ("record.downloaded", {"format": "print"}),
            ("record.downloaded", {"format": "fhir-json"}),
        ]
        assert all(e.actor_role == "patient" and e.practice_id == patient.practice_id for e in events)
    activity = client.get("/account/activity").get_data(as_text=True)
    assert "You viewed your test results" in activity and "You printed or saved your GP record" in activity


def test_a_proxys_views_show_on_the_patients_activity_page(app: Any, client: Any, sign_in: Any) -> None:
    from patient_online.extensions import db

    with app.app_context():
        patient = own_patient(db.session, PATIENT)
        helper = db.session.scalar(select(User).where(User.email == "patient2.y02001@example.com"))
        db.session.add(
            ProxyLink(
                proxy_user_id=helper.id,
                patient_id=patient.id,
                relationship_text="Carer",
                basis="consent",
                status="active",
                record_level="summary",
            )
        )
        db.session.commit()
        patient_id, helper_name = patient.id, helper.display_name
    sign_in("patient2.y02001@example.com")
    with client.raw.session_transaction() as s:
        s["acting_for"] = patient_id
    assert client.get("/record/allergies").status_code == 200
    assert client.get("/record/test-results").status_code == 403  # capped at the proxy's summary level
    client.submit("/logout", page="/account")
    sign_in(PATIENT)
    activity = html.unescape(client.get("/account/activity").get_data(as_text=True))
    assert f"{helper_name} (acting for you) viewed your allergies and adverse reactions" in activity


def test_a_refused_section_changes_nothing_but_is_recorded(app: Any, client: Any, sign_in: Any) -> None:
    from patient_online.extensions import db

    set_level(app, PATIENT, "summary")
    sign_in(PATIENT)
    assert client.get("/record/consultations").status_code == 403
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action)).all()
        assert "access.refused" in actions and "record.viewed" not in actions


# The practice's system is down ---------------------------------------------------------------------------
def test_record_pages_say_plainly_when_the_practice_system_is_down(app: Any, client: Any, sign_in: Any) -> None:
    wiring.override_clinical(app, "Y02001", FakeClinicalSystem(down=True))
    try:
        sign_in(PATIENT)
        overview = client.get("/record")
        page = html.unescape(overview.get_data(as_text=True))
        assert overview.status_code == 200
        assert "The record cannot be shown right now" in page and "What you can see" in page
        assert "see the activity on your account" in page
        for url in ("/record/test-results", "/record/download", "/record/download.json"):
            response = client.get(url)
            assert response.status_code == 503
            text = html.unescape(response.get_data(as_text=True))
            assert "cannot be shown right now" in text and "Traceback" not in text
    finally:
        wiring.override_clinical(app, "Y02001", None)


# Service layer: refusals happen there too -----------------------------------------------------------------
def test_services_refuse_sections_above_the_level_without_calling_the_system(
    app_ctx: Any, session: Any, uow: Any
) -> None:
    from patient_online.domain.errors import NotAllowed

    patient = own_patient(session, PATIENT)
    patient.record_level = "summary"
    session.commit()
    fake = FakeClinicalSystem()
    wiring.override_clinical(app_ctx, "Y02001", fake)
    try:
        user = session.scalar(select(User).where(User.email == PATIENT))
        current = acting_for(session, user, None)
        assert current is not None
        with pytest.raises(NotAllowed):
            records.view_section(uow, current, Section.TEST_RESULTS)
        assert fake.calls == []
        _scope, view = records.view_section(uow, current, Section.ALLERGIES)
        assert view.entries == [] and fake.calls == ["get_record"]
        practice = session.get(Practice, patient.practice_id)
        practice.default_record_level = "none"
        patient.record_level = None
        session.commit()
        switched_off = acting_for(session, user, None)
        assert switched_off is not None
        with pytest.raises(NotAllowed):
            records.view_overview(uow, switched_off)
        with pytest.raises(NotAllowed):
            records.export_fhir_bundle(uow, switched_off)
    finally:
        wiring.override_clinical(app_ctx, "Y02001", None)


# What a section page says about dates is what it lists ---------------------------------------------------
LISTED = re.compile(r"<h[23][^>]*>(\d{1,2} [A-Z][a-z]+ \d{4}): ")
SHOWN_FROM = re.compile(r"[Ss]hown from (\d{1,2} [A-Z][a-z]+ \d{4})")


def _day(words: str) -> dt.date:
    return dt.datetime.strptime(words, "%d %B %Y").date()


def test_the_consultations_page_claims_no_date_it_does_not_keep(
    client: Any, sign_in: Any, faked: FakeClinicalSystem
) -> None:
    """Full access (the practice default): coded consultations from before the access start are listed
    without notes, so the page must not say it shows entries only from that date."""
    sign_in(PATIENT)
    page = html.unescape(client.get("/record/consultations").get_data(as_text=True))
    listed = [_day(d) for d in LISTED.findall(page)]
    assert dt.date(2021, 5, 5) in listed, "coded consultations are part of the detailed record whatever their date"
    for claim in SHOWN_FROM.findall(page):
        assert all(day >= _day(claim) for day in listed), f"says shown from {claim} but lists {listed}"
    assert "Old-notes-BEFORE" not in page
    assert f"Notes written by clinicians are shown for consultations from {START.day} October 2023" in page
    assert "Earlier consultations are listed without their notes" in page


def test_the_documents_page_lists_only_what_it_says(client: Any, sign_in: Any, faked: FakeClinicalSystem) -> None:
    sign_in(PATIENT)
    page = html.unescape(client.get("/record/documents").get_data(as_text=True))
    (claim,) = SHOWN_FROM.findall(page)
    dated = [_day(d) for d in re.findall(r"Dated (\d{1,2} [A-Z][a-z]+ \d{4})", page)]
    assert dated and all(day >= _day(claim) for day in dated)


@pytest.mark.parametrize("level", ["detailed", "historic"])
def test_consultation_pages_below_and_above_full_say_nothing_of_a_start_date(
    app: Any, client: Any, sign_in: Any, faked: FakeClinicalSystem, level: str
) -> None:
    set_level(app, PATIENT, level)
    sign_in(PATIENT)
    page = html.unescape(client.get("/record/consultations").get_data(as_text=True))
    assert not SHOWN_FROM.findall(page)
    assert "coded entries" not in page.split('id="maincontent"', 1)[-1], "no jargon for patients"
