"""The reception desk against the demo practice: finding a registered patient by surname and date of birth,
opening their page, the verification detail, confirmations before acting, and what needs attention today."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from patient_online.adapters.demo.models import DemoPatient
from patient_online.models import AccountLink, AuditEvent, LinkRequest, Patient, ProxyLink, User

RECEPTION = "reception.y02001@example.com"


def grace(session: Any) -> DemoPatient:
    """Grace Thompson: registered at Y02001 in the demo clinical system, not using online services."""
    found: DemoPatient = session.scalars(
        select(DemoPatient).where(
            DemoPatient.practice_ods == "Y02001",
            DemoPatient.given_name == "Grace",
            DemoPatient.family_name == "Thompson",
        )
    ).one()
    return found


def born(person: DemoPatient) -> str:
    day = person.date_of_birth
    return f"born-day={day.day}&born-month={day.month}&born-year={day.year}"


def test_surname_and_birth_date_find_a_patient_not_yet_online(client: Any, session: Any, sign_in: Any) -> None:
    person = grace(session)
    assert session.scalar(select(Patient).where(Patient.nhs_number == person.nhs_number)) is None
    sign_in(RECEPTION)
    page = client.get(f"/reception/patients?q=THOMPSON&{born(person)}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html
    assert "Grace Thompson" in html and "Not using online services" in html and "Female" in html
    assert person.address in html and person.postcode in html
    searched = session.scalars(select(AuditEvent).where(AuditEvent.action == "patient.searched")).all()[-1]
    assert searched.detail == {"results": 1, "by": "name_and_birth"}  # who searched and how many; no terms

    opened = client.submit("/reception/patients/open", {"nhs_number": person.nhs_number}, page=page.request.url)
    assert opened.status_code == 302
    patient_id = int(re.search(r"/reception/patients/(\d+)$", opened.headers["Location"]).group(1))  # type: ignore[union-attr]
    assert session.get(Patient, patient_id).nhs_number == person.nhs_number
    again = client.get(f"/reception/patients?q=thompson&given=gr&{born(person)}").get_data(as_text=True)
    assert f"/reception/patients/{patient_id}" in again  # now a link to the page, no second row


def test_a_search_with_a_wrong_date_is_a_clear_error(client: Any, sign_in: Any) -> None:
    sign_in(RECEPTION)
    page = client.get("/reception/patients?q=Thompson&born-day=31&born-month=2&born-year=1952")
    assert page.status_code == 400 and "There is a problem" in page.get_data(as_text=True)


def test_opening_someone_not_registered_is_not_found(client: Any, sign_in: Any) -> None:
    sign_in(RECEPTION)
    missing = client.submit("/reception/patients/open", {"nhs_number": "9434765919"}, page="/reception/patients")
    assert missing.status_code == 404
    bad = client.submit("/reception/patients/open", {"nhs_number": "12"}, page="/reception/patients")
    assert bad.status_code == 302


def _grace_page(client: Any, session: Any) -> tuple[int, str]:
    person = grace(session)
    page = client.get("/reception/patients")
    opened = client.submit("/reception/patients/open", {"nhs_number": person.nhs_number}, page=page.request.url)
    patient_id = int(opened.headers["Location"].rsplit("/", 1)[1])
    return patient_id, client.get(f"/reception/patients/{patient_id}").get_data(as_text=True)


def test_the_patient_page_has_what_an_identity_check_needs(client: Any, session: Any, sign_in: Any) -> None:
    sign_in(RECEPTION)
    person = grace(session)
    patient_id, html = _grace_page(client, session)
    assert "Check who you are speaking to" in html and person.address in html and "Female" in html
    assert "Not using online services" in html and "Back to find a patient" in html
    viewed = session.scalars(select(AuditEvent).where(AuditEvent.action == "patient.viewed")).all()[-1]
    assert viewed.patient_id == patient_id


def test_a_letter_then_its_replacement_needs_confirming(client: Any, session: Any, sign_in: Any) -> None:
    sign_in(RECEPTION)
    patient_id, _html = _grace_page(client, session)
    url, page = f"/reception/patients/{patient_id}/letter", f"/reception/patients/{patient_id}/letter/new"
    check = {"check-method": "documents", "check-documents": ["passport", "council_tax"], "check-notes": "Seen"}
    assert client.submit(url, check, page=page).status_code == 302
    html = client.get(f"/reception/patients/{patient_id}").get_data(as_text=True)
    assert "Letter issued" in html and "Notes: Seen" in html
    assert "This replaces an earlier letter" in client.get(page).get_data(as_text=True)
    assert client.submit(url, check, page=page).status_code == 400
    assert client.submit(url, {**check, "check-replace": "y"}, page=page).status_code == 302
    home = client.get("/reception/").get_data(as_text=True)
    assert "Linkage letters issued this week (2)" in home and "Grace Thompson" in home


def test_suspending_asks_first_and_says_what_will_happen(client: Any, session: Any, sign_in: Any) -> None:
    link = session.scalar(select(AccountLink).join(AccountLink.user).where(User.email == "patient.y02001@example.com"))
    sign_in(RECEPTION)
    url = f"/reception/patients/{link.patient_id}/links/{link.id}/suspend"
    confirm = client.get(url)
    text = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "What will happen" in text and "We will email the account holder" in text
    assert session.get(AccountLink, link.id).status == "active"  # nothing done by looking
    empty = client.submit(url, {"reason": ""})
    assert empty.status_code == 400 and "Enter a reason" in empty.get_data(as_text=True)
    assert client.submit(url, {"reason": "Lost phone"}).status_code == 302
    assert session.get(AccountLink, link.id).status == "suspended"
    other = f"/reception/patients/{link.patient_id}/links/999999/suspend"
    assert client.get(other).status_code == 404


def test_ending_a_proxy_link_asks_first(client: Any, session: Any, sign_in: Any) -> None:
    link = session.scalar(select(ProxyLink).where(ProxyLink.status == "active").order_by(ProxyLink.id))
    sign_in(RECEPTION)
    confirm = client.get(f"/reception/proxies/{link.id}/end").get_data(as_text=True)
    assert "What will happen" in confirm and session.get(ProxyLink, link.id).status == "active"
    patient_page = client.get(f"/reception/patients/{link.patient_id}").get_data(as_text=True)
    assert f"/reception/proxies/{link.id}/end" in patient_page


def test_the_home_lists_what_needs_attention_in_plain_words(client: Any, session: Any, sign_in: Any) -> None:
    sign_in(RECEPTION)
    home = client.get("/reception/")
    html = home.get_data(as_text=True)
    assert home.status_code == 200 and "Needs attention" in html and "Connected" in html
    assert "circuit" not in html and "embedded" not in html
    for heading in ("Identity checks waiting", "Requests to act for someone", "Repeat requests not delivered"):
        assert heading in html


def test_the_verification_detail_marks_each_detail(client: Any, session: Any, sign_in: Any) -> None:
    person = session.scalars(select(DemoPatient).where(DemoPatient.nhs_number == "9990010145")).one()
    sign_in("newpatient.y02001@example.com")
    client.submit(
        "/link",
        {
            "request-practice": person.practice_ods,
            "request-nhs_number": person.nhs_number,
            "request-given_name": person.given_name + "x",
            "request-family_name": person.family_name,
            "request-date_of_birth-day": str(person.date_of_birth.day),
            "request-date_of_birth-month": str(person.date_of_birth.month),
            "request-date_of_birth-year": str(person.date_of_birth.year),
            "request-postcode": person.postcode,
        },
    )
    request_id = session.scalar(select(LinkRequest.id).where(LinkRequest.nhs_number == person.nhs_number))
    client.post("/logout", data={"csrf_token": client.csrf_token("/home")})
    sign_in(RECEPTION)
    html = client.get(f"/reception/verifications/{request_id}").get_data(as_text=True)
    assert html.count("Matches") >= 4 and "Does not match" in html and "Back to identity checks" in html
