"""Linking an account to the GP record: request + reception approval (the same answer whether or not the
details match), linkage letters issued only on a recorded identity check and shown once, rejections,
suspension, limits that do not lock a shared address out, and staff of one practice never reaching another's
patients."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from patient_online.adapters.demo.models import DemoPatient
from patient_online.adapters.demo.seed import _user
from patient_online.extensions import db
from patient_online.models import AccountLink, AuditEvent, LinkageLetter, LinkRequest, Patient, User, Verification
from tests.helpers import FormClient
from tests.helpers import sign_in as do_sign_in

AT_THE_DESK = {
    "check-method": "documents",
    "check-documents": ["passport", "council_tax"],
    "check-notes": "Passport and council tax bill seen at the desk",
}


def demo_patient(session: Any, nhs: str) -> DemoPatient:
    found: DemoPatient = session.scalars(select(DemoPatient).where(DemoPatient.nhs_number == nhs)).one()
    return found


def _found(pattern: str, page: str) -> str:
    match = re.search(pattern, page)
    assert match is not None, pattern
    return match.group(1)


def request_form(person: DemoPatient, **changes: str) -> dict[str, str]:
    data = {
        "request-practice": person.practice_ods,
        "request-nhs_number": person.nhs_number,
        "request-given_name": person.given_name,
        "request-family_name": person.family_name,
        "request-date_of_birth-day": str(person.date_of_birth.day),
        "request-date_of_birth-month": str(person.date_of_birth.month),
        "request-date_of_birth-year": str(person.date_of_birth.year),
        "request-postcode": person.postcode,
    }
    data.update(changes)
    return data


def test_request_then_reception_approves_with_documents(app: Any, client: Any, session: Any, sign_in: Any) -> None:
    person = demo_patient(session, "9990010145")  # the demo newcomer's record
    sign_in("newpatient.y02001@example.com")
    response = client.submit("/link", request_form(person))
    assert response.headers["Location"].endswith("/link/requested")
    request_id = session.scalar(select(LinkRequest.id).where(LinkRequest.nhs_number == person.nhs_number))

    staff = FormClient(app.test_client())
    do_sign_in(staff, "reception.y02001@example.com")
    queue = staff.get("/reception/verifications").get_data(as_text=True)
    assert person.family_name in queue
    detail = staff.get(f"/reception/verifications/{request_id}").get_data(as_text=True)
    assert person.postcode in detail  # the clinical system's demographics side by side

    one_document = staff.submit(
        f"/reception/verifications/{request_id}", {"approve-method": "documents", "approve-documents": ["passport"]}
    )
    assert "Select at least 2 documents" in one_document.get_data(as_text=True)
    no_photo = staff.submit(
        f"/reception/verifications/{request_id}",
        {"approve-method": "documents", "approve-documents": ["utility_bill", "bank_statement"]},
    )
    assert "at least 1 document with a photo" in no_photo.get_data(as_text=True)
    approved = staff.submit(
        f"/reception/verifications/{request_id}",
        {
            "approve-method": "documents",
            "approve-documents": ["passport", "utility_bill"],
            "approve-notes": "Seen at desk",
        },
    )
    assert approved.headers["Location"].endswith("/reception/verifications")

    home = client.get("/home").get_data(as_text=True)
    assert f"Hello {person.given_name}" in home
    check = session.scalars(select(Verification).order_by(Verification.id.desc())).first()
    assert check.method == "documents" and len(check.documents) == 2 and check.staff_id is not None
    assert "checked your identity and linked your account" in client.get("/account/activity").get_data(as_text=True)


def new_account(app: Any, email: str) -> FormClient:
    """A patient account with no link yet, signed in on its own client (password and TOTP, as a person does)."""
    with app.app_context():
        _user(db.session, email, "patient", "Pat", "Newcomer")
        db.session.commit()
    client = FormClient(app.test_client())
    do_sign_in(client, email)
    return client


@pytest.fixture
def settings() -> dict[str, Any]:
    return {"QUERY_COUNT_HEADER": True}


def test_a_match_a_mismatch_and_an_unknown_person_get_the_same_answer(app: Any, session: Any) -> None:
    """No enumeration: the same redirect, the same page and the same database work whatever was typed; only
    reception learns the outcome, in their queue."""
    person = demo_patient(session, "9990010145")
    attempts = {
        "match": request_form(person),
        "mismatch": request_form(person, **{"request-date_of_birth-year": "1901"}),
        "unknown": request_form(person, **{"request-nhs_number": "9999000002"}),
    }
    answers = {}
    for outcome, form in attempts.items():
        client = new_account(app, f"{outcome}.linking@example.org")
        sent = client.submit("/link", form)
        page = client.get(sent.headers["Location"])
        # The page, without what differs between any two people anyway (their email, the form token)
        shown = page.get_data(as_text=True).replace(f"{outcome}.linking@example.org", "EMAIL")
        shown = re.sub(r'name="csrf_token" value="[^"]+"', "TOKEN", shown)
        shown = re.sub(r'data-seconds-left="\d+"', "", shown)  # the session's time left, to the second
        answers[outcome] = (sent.status_code, sent.headers["Location"], sent.headers["X-Query-Count"], shown)
        assert "Request sent to your GP practice" in page.get_data(as_text=True)
        assert client.get("/link").get_data(as_text=True).count("You already asked") == 1
    assert answers["match"] == answers["mismatch"] == answers["unknown"]

    requests = session.scalars(select(LinkRequest).where(LinkRequest.nhs_number.in_(["9990010145", "9999000002"])))
    assert sorted(r.matched for r in requests) == [False, False, True]
    staff = FormClient(app.test_client())
    do_sign_in(staff, "reception.y02001@example.com")
    queue = staff.get("/reception/verifications").get_data(as_text=True)
    assert queue.count("Details do not match") == 2 and queue.count("Details match") == 1


def test_a_mismatched_request_is_not_approved_by_reception(app: Any, client: Any, session: Any, sign_in: Any) -> None:
    person = demo_patient(session, "9990010145")
    sign_in("newpatient.y02001@example.com")
    client.submit("/link", request_form(person, **{"request-postcode": "ZZ1 1ZZ"}))
    request_id = session.scalar(select(LinkRequest.id).where(LinkRequest.nhs_number == person.nhs_number))
    staff = FormClient(app.test_client())
    do_sign_in(staff, "reception.y02001@example.com")
    assert "Details do not match" in staff.get(f"/reception/verifications/{request_id}").get_data(as_text=True)
    refused = staff.submit(
        f"/reception/verifications/{request_id}",
        {"approve-method": "documents", "approve-documents": ["passport", "utility_bill"]},
    )
    assert "do not match your clinical system" in refused.get_data(as_text=True)
    assert session.scalar(select(AccountLink).where(AccountLink.user_id == _account_id(session))) is None


def _account_id(session: Any) -> int:
    return int(session.scalar(select(User.id).where(User.email == "newpatient.y02001@example.com")))


def test_invalid_nhs_number_and_date_get_field_messages(client: Any, session: Any, sign_in: Any) -> None:
    person = demo_patient(session, "9990010145")
    sign_in("newpatient.y02001@example.com")
    page = client.submit(
        "/link", request_form(person, **{"request-nhs_number": "1234567890", "request-date_of_birth-month": "13"})
    ).get_data(as_text=True)
    assert "Enter a valid 10-digit NHS number" in page or "must be a real date" in page
    assert "Date of birth must be a real date" in page


def test_reception_rejects_with_a_reason_the_patient_sees(app: Any, client: Any, session: Any, sign_in: Any) -> None:
    person = demo_patient(session, "9990010145")
    sign_in("newpatient.y02001@example.com")
    client.submit("/link", request_form(person))
    request_id = session.scalar(select(LinkRequest.id).where(LinkRequest.nhs_number == person.nhs_number))
    staff = FormClient(app.test_client())
    do_sign_in(staff, "reception.y02001@example.com")
    empty = staff.submit(f"/reception/verifications/{request_id}", {"reject-reason": ""})
    assert "Enter the reason the patient will see" in empty.get_data(as_text=True)
    staff.submit(f"/reception/verifications/{request_id}", {"reject-reason": "Please bring photo ID to the practice"})
    assert "Please bring photo ID to the practice" in client.get("/home").get_data(as_text=True)


def test_linkage_letter_links_at_once_and_reissue_invalidates_the_old_key(
    app: Any, client: Any, session: Any, sign_in: Any
) -> None:
    staff = FormClient(app.test_client())
    do_sign_in(staff, "reception.y02001@example.com")
    found = staff.get("/reception/patients?q=999+001+0145").get_data(as_text=True)
    patient_id = int(_found(r"/reception/patients/(\d+)", found))
    keys = []
    letter = issue_letter(staff, patient_id).get_data(as_text=True)
    keys.append(_found(r'class="app-secret">([A-Z0-9-]+)<', letter))
    # A letter that replaces one not used yet is issued only once reception confirms the old key will stop.
    check_page = staff.get(f"/reception/patients/{patient_id}/letter/new").get_data(as_text=True)
    assert "This replaces an earlier letter" in check_page
    unconfirmed = staff.submit(
        f"/reception/patients/{patient_id}/letter", AT_THE_DESK, page=f"/reception/patients/{patient_id}/letter/new"
    )
    assert unconfirmed.status_code == 400
    assert "Confirm that the earlier letter will stop working" in unconfirmed.get_data(as_text=True)
    letter = issue_letter(staff, patient_id, {**AT_THE_DESK, "check-replace": "y"}).get_data(as_text=True)
    keys.append(_found(r'class="app-secret">([A-Z0-9-]+)<', letter))
    patient = session.get(Patient, patient_id)
    assert "Y02001" in letter and patient.online_account_id in letter

    sign_in("newpatient.y02001@example.com")
    old = client.submit(
        "/link",
        {"letter-ods_code": "Y02001", "letter-account_id": patient.online_account_id, "letter-linkage_key": keys[0]},
    )
    assert "do not match a current linkage letter" in old.get_data(as_text=True)
    new = client.submit(
        "/link",
        {
            "letter-ods_code": "y02001",
            "letter-account_id": patient.online_account_id,
            "letter-linkage_key": keys[1].lower(),
        },
    )
    assert new.headers["Location"].endswith("/home")
    assert session.scalar(select(AccountLink).where(AccountLink.patient_id == patient_id)).method == "linkage_letter"


def issue_letter(staff: FormClient, patient_id: int, check: dict[str, Any] = AT_THE_DESK) -> Any:
    """Record the identity check and issue the letter, then open the printable letter."""
    issued = staff.submit(
        f"/reception/patients/{patient_id}/letter", check, page=f"/reception/patients/{patient_id}/letter/new"
    )
    assert issued.status_code == 302, issued.get_data(as_text=True)[:2000]
    return staff.get(issued.headers["Location"])


def _patient_id(staff: FormClient) -> int:
    found = staff.get("/reception/patients?q=999+001+0145").get_data(as_text=True)
    return int(_found(r"/reception/patients/(\d+)", found))


def test_a_letter_records_exactly_the_identity_check_reception_made(app: Any, session: Any) -> None:
    staff = FormClient(app.test_client())
    do_sign_in(staff, "reception.y02001@example.com")
    patient_id = _patient_id(staff)
    form = staff.get(f"/reception/patients/{patient_id}/letter/new").get_data(as_text=True)
    assert "How did you verify this person" in form and "Passport" in form

    issue_letter(staff, patient_id)
    check = session.scalars(select(Verification).where(Verification.patient_id == patient_id)).one()
    assert check.method == "documents" and not check.remote
    assert check.documents == [{"type": "passport", "photo": True}, {"type": "council_tax", "photo": False}]
    assert check.notes == "Passport and council tax bill seen at the desk"
    staff_id = session.scalar(select(User.id).where(User.email == "reception.y02001@example.com"))
    assert check.staff_id == staff_id and check.user_id is None
    page = staff.get(f"/reception/patients/{patient_id}").get_data(as_text=True)
    assert "documents by" in page and "passport, council tax" in page


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({}, "Select how you verified this person&#39;s identity"),
        ({"check-method": "documents", "check-documents": ["passport"]}, "Select at least 2 documents"),
        ({"check-method": "documents", "check-documents": ["utility_bill", "bank_statement"]}, "with a photo"),
    ],
    ids=["no check", "one document", "no photo"],
)
def test_no_letter_without_a_recorded_identity_check(
    app: Any, session: Any, check: dict[str, Any], message: str
) -> None:
    staff = FormClient(app.test_client())
    do_sign_in(staff, "reception.y02001@example.com")
    patient_id = _patient_id(staff)
    refused = staff.submit(
        f"/reception/patients/{patient_id}/letter",
        {**check, "check-notes": "kept"},
        page=f"/reception/patients/{patient_id}/letter/new",
    )
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400 and message in page and "kept" in page
    assert session.scalars(select(LinkageLetter).where(LinkageLetter.patient_id == patient_id)).all() == []
    assert session.scalars(select(Verification).where(Verification.patient_id == patient_id)).all() == []


def test_the_linkage_key_is_shown_once(app: Any, session: Any) -> None:
    staff = FormClient(app.test_client())
    do_sign_in(staff, "reception.y02001@example.com")
    patient_id = _patient_id(staff)
    letter = issue_letter(staff, patient_id)
    key = _found(r'class="app-secret">([A-Z0-9-]+)<', letter.get_data(as_text=True))
    again = staff.get(f"/reception/patients/{patient_id}/letter")
    assert again.status_code == 302 and key not in again.get_data(as_text=True)
    assert "shown only once" in staff.get(again.headers["Location"]).get_data(as_text=True)


def test_one_address_shared_by_many_people_is_not_locked_out(app: Any) -> None:
    """A front desk or care home: seven people each mistype their own letter once from the same address; all may
    go on (one letter tried again and again from one address is limited: tests/integration/test_reception_limits.py)."""
    for n in range(7):
        wrong = {
            "letter-ods_code": "Y02001",
            "letter-account_id": f"Y0200100000{n}",
            "letter-linkage_key": "AAAA-BBBB-CCCC",
        }
        person = new_account(app, f"carehome{n}@example.org")
        answer = person.submit("/link", wrong)
        assert answer.status_code == 200 and "do not match a current linkage letter" in answer.get_data(as_text=True)


def test_wrong_linkage_keys_are_rate_limited(client: Any, sign_in: Any) -> None:
    sign_in("newpatient.y02001@example.com")
    for _ in range(5):
        client.submit(
            "/link",
            {"letter-ods_code": "Y02001", "letter-account_id": "Y02001000000", "letter-linkage_key": "AAAA-BBBB-CCCC"},
        )
    response = client.submit(
        "/link",
        {"letter-ods_code": "Y02001", "letter-account_id": "Y02001000000", "letter-linkage_key": "AAAA-BBBB-CCCC"},
    )
    assert response.status_code == 429


def test_suspending_an_account_stops_its_access(app: Any, client: Any, session: Any, sign_in: Any) -> None:
    link = session.scalar(select(AccountLink).join(AccountLink.user).where(User.email == "patient.y02001@example.com"))
    staff = FormClient(app.test_client())
    do_sign_in(staff, "reception.y02001@example.com")
    sign_in("patient.y02001@example.com")
    assert client.get("/home").status_code == 200
    patient = session.get(Patient, link.patient_id)
    url = f"/reception/patients/{patient.id}/links/{link.id}/suspend"
    staff.submit(url, {"reason": "Reported lost phone"}, page=f"/reception/patients/{patient.id}")
    assert session.get(AccountLink, link.id).status == "suspended"
    assert session.scalars(select(AuditEvent.action).where(AuditEvent.action == "account.suspended")).first()
    home = client.get("/home").get_data(as_text=True)
    assert "Your online access is suspended" in home and "Reported lost phone" in home


def test_staff_never_see_another_practices_patients(app: Any, session: Any) -> None:
    other = session.scalar(
        select(Patient).join(Patient.practice).where(Patient.practice.has(ods_code="Y02002")).limit(1)
    )
    staff = FormClient(app.test_client())
    do_sign_in(staff, "reception.y02001@example.com")
    assert staff.get(f"/reception/patients/{other.id}").status_code == 404
    response = staff.submit(f"/reception/patients/{other.id}/letter", {}, page="/reception/")
    assert response.status_code == 404
    search = staff.get(f"/reception/patients?q={other.nhs_number}").get_data(as_text=True)
    assert other.family_name not in search


def test_each_audience_is_refused_the_others_pages(app: Any, session: Any) -> None:
    patient = FormClient(app.test_client())
    do_sign_in(patient, "patient.y02001@example.com")
    for url in ("/reception/", "/manage/", "/admin/practices"):
        assert patient.get(url).status_code == 403
    reception = FormClient(app.test_client())
    do_sign_in(reception, "reception.y02001@example.com")
    for url in ("/home", "/manage/", "/admin/practices"):
        assert reception.get(url).status_code == 403
    refusals = session.scalars(select(AuditEvent).where(AuditEvent.action == "access.refused")).all()
    assert len(refusals) >= 6


def test_approving_without_a_method_says_what_to_choose(app: Any, client: Any, session: Any, sign_in: Any) -> None:
    person = demo_patient(session, "9990010145")
    sign_in("newpatient.y02001@example.com")
    client.submit("/link", request_form(person))
    request_id = session.scalar(select(LinkRequest.id).where(LinkRequest.nhs_number == person.nhs_number))
    staff = FormClient(app.test_client())
    do_sign_in(staff, "reception.y02001@example.com")
    page = staff.submit(f"/reception/verifications/{request_id}", {"approve-notes": "forgot to choose"})
    text = page.get_data(as_text=True)
    assert "Select how you verified this person&#39;s identity" in text and "forgot to choose" in text
