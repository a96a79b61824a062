"""Repeat prescriptions (issue 6): the template and why items cannot be ordered, ordering once, the status
lifecycle through the demo clinical system's workflow screen, cancelling, and the nominated pharmacy."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from patient_online import wiring
from patient_online.adapters.demo import workflow
from patient_online.adapters.demo.models import DemoMedication, DemoRepeatRequest
from patient_online.domain.errors import DomainError, InputError, NotAllowed, NotFound, ServiceOff
from patient_online.domain.prescriptions import (
    NotOrderable,
    PrescriptionType,
    RepeatItem,
    RequestStatus,
    add_working_days,
)
from patient_online.models import AuditEvent, Notification, OutboxMessage, Practice, PrescriptionOrder, User
from patient_online.services import prescriptions as rx
from patient_online.services.access import Acting, acting_for, today
from tests.fakes import FakeClinicalSystem

PATIENT = "patient.y02001@example.com"
AMLODIPINE, ATORVASTATIN, SALBUTAMOL, SERTRALINE, MORPHINE, AMOXICILLIN = (f"Y02001-P001-M0{i}" for i in range(1, 7))
KEY_RE = re.compile(r'name="idempotency_key" value="([^"]+)"')
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def acting_as(session: Any, email: str = PATIENT) -> Acting:
    user = session.scalar(select(User).where(User.email == email))
    found = acting_for(session, user, None)
    assert found is not None
    return found


def demo_requests(session: Any, clinical_id: str = "Y02001-P001") -> list[DemoRepeatRequest]:
    return list(session.scalars(select(DemoRepeatRequest).where(DemoRepeatRequest.patient_id == clinical_id)))


def emails(session: Any, to: str = PATIENT) -> list[Notification]:
    return list(session.scalars(select(Notification).where(Notification.to == to).order_by(Notification.id)))


def order_page(client: Any) -> tuple[str, str]:
    """The CSRF token and idempotency key of a freshly opened order form."""
    page = client.get("/prescriptions/order").get_data(as_text=True)
    token, key = CSRF_RE.search(page), KEY_RE.search(page)
    assert token and key, page
    return token.group(1), key.group(1)


def text(response: Any) -> str:
    return html.unescape(str(response.get_data(as_text=True)))


# Service layer: the template and rule 12 ------------------------------------------------------------------
def test_template_says_which_items_can_be_ordered_and_why_not(app_ctx: Any, session: Any, uow: Any) -> None:
    view = rx.repeat_template(uow, acting_as(session))
    reasons = {line.item.id: line.reason for line in view.lines}
    assert reasons == {
        AMLODIPINE: None,
        ATORVASTATIN: None,
        SALBUTAMOL: None,
        SERTRALINE: NotOrderable.REVIEW_DUE,
        MORPHINE: NotOrderable.NOT_ONLINE,
        AMOXICILLIN: NotOrderable.ACUTE,
    }
    assert view.pharmacy is not None and view.pharmacy.ods_code == "FA101"
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "prescription.template_viewed"))


def test_issues_used_up_and_the_never_online_list_come_from_the_practice(app_ctx: Any, session: Any, uow: Any) -> None:
    acting = acting_as(session)
    fake = FakeClinicalSystem()
    fake.templates[acting.patient.nhs_number] = [
        RepeatItem(
            "L1",
            "Levothyroxine 50microgram tablets",
            "One a day",
            "28",
            PrescriptionType.REPEAT_DISPENSING,
            issues_allowed=6,
            issues_used=6,
        ),
        RepeatItem("P1", "Pregabalin 75mg capsules", "Twice a day", "56", PrescriptionType.REPEAT),
        RepeatItem("O1", "Omeprazole 20mg capsules", "One a day", "28", PrescriptionType.REPEAT),
    ]
    acting.practice.never_online = ["omeprazole"]
    session.commit()
    wiring.override_clinical(app_ctx, "Y02001", fake)
    reasons = {line.item.id: line.reason for line in rx.repeat_template(uow, acting).lines}
    assert reasons == {"L1": NotOrderable.ISSUES_USED, "P1": None, "O1": NotOrderable.NOT_ONLINE}


# Ordering ---------------------------------------------------------------------------------------------------
def test_an_order_reaches_the_clinical_system_once_with_a_ready_by_date(app_ctx: Any, session: Any, uow: Any) -> None:
    acting = acting_as(session)
    result = rx.order_repeats(uow, acting, [AMLODIPINE, ATORVASTATIN], "Going away on the 20th", "k" * 32)
    order = result.order
    assert result.status is RequestStatus.REQUESTED and not result.replayed
    assert order.ready_by == add_working_days(today(), 2)
    [held] = demo_requests(session)
    assert order.external_id == held.id and held.item_ids == [AMLODIPINE, ATORVASTATIN]
    assert held.pharmacy_ods == "FA101" and held.note == "Going away on the 20th"
    [mail] = emails(session)
    assert "sent to Riverside Medical Centre" in mail.body and "Kingsbridge Pharmacy" in mail.body
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.patient_id == acting.patient.id)))
    assert {"prescription.ordered", "prescription.sent"} <= actions

    again = rx.order_repeats(uow, acting, [AMLODIPINE, ATORVASTATIN], "Going away on the 20th", "k" * 32)
    assert again.replayed and again.order.id == order.id
    assert len(demo_requests(session)) == 1 and len(emails(session)) == 1

    reasons = {line.item.id: line.reason for line in rx.repeat_template(uow, acting).lines}
    assert reasons[AMLODIPINE] is NotOrderable.ALREADY_REQUESTED and reasons[SALBUTAMOL] is None


@pytest.mark.parametrize(
    ("items", "note", "field", "message"),
    [
        ([], "", "items", "Select at least one medicine to order"),
        ([SERTRALINE], "", "items", "due for review"),
        ([MORPHINE], "", "items", "does not allow this medicine to be ordered online"),
        ([AMOXICILLIN], "", "items", "one-off prescription"),
        (["Y02002-P001-M01"], "", "items", "Select medicines from the list"),
        ([AMLODIPINE], "x" * 301, "note", "Enter a note of 300 characters or fewer"),
    ],
)
def test_orders_that_break_the_rules_are_refused(
    app_ctx: Any, session: Any, uow: Any, items: list[str], note: str, field: str, message: str
) -> None:
    with pytest.raises(InputError) as refused:
        rx.order_repeats(uow, acting_as(session), items, note, "r" * 32)
    assert refused.value.field == field and message in refused.value.message
    assert demo_requests(session) == [] and session.scalar(select(func.count(PrescriptionOrder.id))) == 0


def test_an_order_needs_a_nominated_pharmacy(app_ctx: Any, session: Any, uow: Any) -> None:
    acting = acting_as(session)
    acting.patient.nominated_pharmacy_ods = ""
    session.commit()
    with pytest.raises(InputError) as refused:
        rx.order_repeats(uow, acting, [AMLODIPINE], "", "p" * 32)
    assert refused.value.field == "pharmacy"


def test_someone_elses_idempotency_key_is_refused(app_ctx: Any, session: Any, uow: Any) -> None:
    rx.order_repeats(uow, acting_as(session), [AMLODIPINE], "", "s" * 32)
    with pytest.raises(NotAllowed):
        rx.order_repeats(uow, acting_as(session, "patient2.y02001@example.com"), [], "", "s" * 32)


def test_the_service_layer_refuses_when_prescriptions_are_off(app_ctx: Any, session: Any, uow: Any) -> None:
    acting = acting_as(session)
    acting.patient.prescriptions_enabled = False
    session.commit()
    off = acting_as(session)
    for call in (
        lambda: rx.repeat_template(uow, off),
        lambda: rx.order_repeats(uow, off, [AMLODIPINE], "", "o" * 32),
        lambda: rx.list_requests(uow, off),
        lambda: rx.cancel_request(uow, off, "R-1"),
        lambda: rx.nominate_pharmacy(uow, off, "FA102"),
    ):
        with pytest.raises(ServiceOff):
            call()
    assert demo_requests(session) == []


# The status lifecycle (rule 13) ---------------------------------------------------------------------------
def test_approved_then_issued_flows_back_to_the_patient_and_the_notifier(app_ctx: Any, session: Any, uow: Any) -> None:
    acting = acting_as(session)
    order = rx.order_repeats(uow, acting, [AMLODIPINE], "", "a" * 32).order
    before = session.get(DemoMedication, AMLODIPINE).issues_used
    practice = session.get(Practice, acting.practice.id)

    workflow.decide(session, "Y02001", order.external_id, RequestStatus.APPROVED)
    assert rx.sync_patient_requests(uow, practice, "Y02001-P001") == 1
    assert session.get(PrescriptionOrder, order.id).status == "approved"
    assert emails(session)[-1].subject == "Your repeat prescription request has been approved"
    assert rx.sync_patient_requests(uow, practice, "Y02001-P001") == 0  # told once

    workflow.decide(session, "Y02001", order.external_id, RequestStatus.ISSUED)
    [line] = rx.list_requests(uow, acting).lines  # the patient's page picks the change up too
    assert line.request.status is RequestStatus.ISSUED and line.pharmacy and line.pharmacy.ods_code == "FA101"
    assert "sent to Kingsbridge Pharmacy" in emails(session)[-1].body
    medication = session.get(DemoMedication, AMLODIPINE)
    assert medication.issues_used == before + 1 and medication.last_issued == today()
    assert len(emails(session)) == 3  # ordered, approved, issued


def test_a_rejection_shows_the_practices_reason(app_ctx: Any, session: Any, uow: Any) -> None:
    acting = acting_as(session)
    order = rx.order_repeats(uow, acting, [SALBUTAMOL], "", "j" * 32).order
    with pytest.raises(InputError, match="Enter the reason"):
        workflow.decide(session, "Y02001", order.external_id, RequestStatus.REJECTED, " ")
    workflow.decide(session, "Y02001", order.external_id, RequestStatus.REJECTED, "Please book an asthma review.")
    [line] = rx.list_requests(uow, acting).lines
    assert line.request.status is RequestStatus.REJECTED
    assert line.request.rejection_reason == "Please book an asthma review."
    assert "Please book an asthma review." in emails(session)[-1].body
    with pytest.raises(InputError, match="already been dealt with"):
        workflow.decide(session, "Y02001", order.external_id, RequestStatus.ISSUED)


def test_the_patient_can_cancel_only_while_requested(app_ctx: Any, session: Any, uow: Any) -> None:
    acting = acting_as(session)
    first = rx.order_repeats(uow, acting, [AMLODIPINE], "", "c" * 32).order
    second = rx.order_repeats(uow, acting, [ATORVASTATIN], "", "d" * 32).order
    rx.cancel_request(uow, acting, first.external_id)
    assert session.get(PrescriptionOrder, first.id).status == "cancelled"
    assert session.get(DemoRepeatRequest, first.external_id).status == "cancelled"
    workflow.decide(session, "Y02001", second.external_id, RequestStatus.APPROVED)
    with pytest.raises(DomainError, match="already dealt with"):
        rx.cancel_request(uow, acting, second.external_id)
    with pytest.raises(NotFound):
        rx.cancel_request(uow, acting_as(session, "patient2.y02001@example.com"), second.external_id)
    reasons = {line.item.id: line.reason for line in rx.repeat_template(uow, acting).lines}
    assert reasons[AMLODIPINE] is None  # cancelled: can be ordered again
    assert reasons[ATORVASTATIN] is NotOrderable.ALREADY_REQUESTED  # approved, not issued yet


# The nominated pharmacy (rule 14) -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "expected"),
    [("", 8), ("ashcombe", 3), ("KB1", 2), ("kb1 4ru", 1), ("late night", 1), ("fa105", 1), ("nowhere", 0)],
)
def test_pharmacy_search_by_name_town_or_postcode(
    app_ctx: Any, session: Any, uow: Any, query: str, expected: int
) -> None:
    assert len(rx.search_pharmacies(uow, acting_as(session), query)) == expected


def test_nominating_a_pharmacy_is_audited_and_used_for_the_next_order(app_ctx: Any, session: Any, uow: Any) -> None:
    acting = acting_as(session)
    chosen = rx.nominate_pharmacy(uow, acting, "fa103")
    assert chosen.name == "Riverside Late Night Pharmacy"
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "pharmacy.nominated"))
    assert event.detail == {"old": "FA101", "new": "FA103"}
    with pytest.raises(InputError):
        rx.nominate_pharmacy(uow, acting, "XX999")
    order = rx.order_repeats(uow, acting, [AMLODIPINE], "", "n" * 32).order
    assert session.get(DemoRepeatRequest, order.external_id).pharmacy_ods == "FA103"


# Journeys through the pages, CSRF on ----------------------------------------------------------------------
def test_patient_orders_from_the_pages_and_a_double_submit_makes_one_request(
    client: Any, sign_in: Any, app: Any
) -> None:
    sign_in(PATIENT)
    page = text(client.get("/prescriptions"))
    assert "Amlodipine 5mg tablets" in page and "Can be ordered online" in page
    assert NotOrderable.REVIEW_DUE.value in page and NotOrderable.ACUTE.value in page
    assert NotOrderable.NOT_ONLINE.value in page and "Kingsbridge Pharmacy" in page

    token, key = order_page(client)
    form = {"csrf_token": token, "idempotency_key": key, "items": [AMLODIPINE, SALBUTAMOL], "note": ""}
    first = client.post("/prescriptions/order", data=form)
    second = client.post("/prescriptions/order", data=form)  # double click / back button / retry
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    done = text(client.get(first.headers["Location"]))
    assert "Request sent" in done and "Ready by" in done
    ready = add_working_days(today(), 2)
    assert f"{ready:%A} {ready.day} {ready:%B %Y}" in done
    with app.app_context():
        from patient_online.extensions import db

        assert len(demo_requests(db.session)) == 1

    history = text(client.get("/prescriptions/requests"))
    assert "Requested" in history and "Cancel this request" in history


def test_order_errors_show_next_to_the_field_and_keep_what_was_entered(client: Any, sign_in: Any) -> None:
    sign_in(PATIENT)
    token, key = order_page(client)
    long_note = "Please send it early. " * 20
    response = client.post(
        "/prescriptions/order",
        data={"csrf_token": token, "idempotency_key": key, "items": [ATORVASTATIN], "note": long_note},
    )
    assert response.status_code == 400
    page = text(response)
    assert "There is a problem" in page and "Enter a note of 300 characters or fewer" in page
    assert long_note.strip() in page
    assert re.search(rf'value="{ATORVASTATIN}"\s+aria-describedby="[^"]+"\s+checked', page)

    empty = client.post("/prescriptions/order", data={"csrf_token": token, "idempotency_key": key})
    assert empty.status_code == 400 and "Select at least one medicine to order" in text(empty)


def test_a_post_without_a_csrf_token_is_refused(client: Any, sign_in: Any, app: Any) -> None:
    sign_in(PATIENT)
    _, key = order_page(client)
    response = client.post("/prescriptions/order", data={"idempotency_key": key, "items": [AMLODIPINE]})
    assert response.status_code == 400
    with app.app_context():
        from patient_online.extensions import db

        assert demo_requests(db.session) == []


def test_a_crafted_post_is_refused_when_the_practice_switches_prescriptions_off(
    client: Any, sign_in: Any, app: Any
) -> None:
    sign_in(PATIENT)
    token, key = order_page(client)
    with app.app_context():
        from patient_online.extensions import db

        practice = db.session.scalar(select(Practice).where(Practice.ods_code == "Y02001"))
        switch = practice.switch("prescriptions") if practice else None
        assert switch is not None
        switch.enabled = False
        db.session.commit()
    response = client.post(
        "/prescriptions/order", data={"csrf_token": token, "idempotency_key": key, "items": [AMLODIPINE]}
    )
    assert response.status_code == 403
    assert client.get("/prescriptions").status_code == 403
    with app.app_context():
        from patient_online.extensions import db

        assert demo_requests(db.session) == []
        assert db.session.scalar(select(func.count(PrescriptionOrder.id))) == 0


def test_patient_cancels_a_request_from_the_history(client: Any, sign_in: Any, app: Any) -> None:
    sign_in(PATIENT)
    token, key = order_page(client)
    client.post("/prescriptions/order", data={"csrf_token": token, "idempotency_key": key, "items": [SALBUTAMOL]})
    with app.app_context():
        from patient_online.extensions import db

        [held] = demo_requests(db.session)
    confirm = f"/prescriptions/requests/{held.id}/cancel"
    assert "Are you sure you want to cancel" in text(client.get(confirm))
    response = client.submit(confirm, {})
    assert response.status_code == 302
    history = text(client.get("/prescriptions/requests"))
    assert "Your request has been cancelled." in history and "Cancelled" in history
    assert "Cancel this request" not in history


def test_patient_changes_the_nominated_pharmacy(client: Any, sign_in: Any) -> None:
    sign_in(PATIENT)
    search = text(client.get("/prescriptions/pharmacy?q=Ashcombe"))
    assert "Ashcombe Pharmacy" in search and "Mill Lane Chemist" not in search
    response = client.submit("/prescriptions/pharmacy", {"pharmacy": "FA105"}, page="/prescriptions/pharmacy")
    assert response.status_code == 302
    page = text(client.get("/prescriptions"))
    assert "Your prescriptions will now go to Station Road Pharmacy." in page and "45 Station Road" in page
    bad = client.submit("/prescriptions/pharmacy", {"pharmacy": "NOPE"}, page="/prescriptions/pharmacy")
    assert bad.status_code == 400 and "Select a pharmacy from the list" in text(bad)
    assert "You changed your nominated pharmacy" in text(client.get("/account/activity"))


def test_practice_staff_approve_on_the_demo_screen_and_the_patient_sees_it(client: Any, sign_in: Any, app: Any) -> None:
    sign_in(PATIENT)
    token, key = order_page(client)
    client.post("/prescriptions/order", data={"csrf_token": token, "idempotency_key": key, "items": [AMLODIPINE]})
    assert client.get("/demo-system/Y02001/prescriptions").status_code == 403  # patients never see it
    home = CSRF_RE.search(client.get("/home").get_data(as_text=True))
    assert home is not None
    client.post("/logout", data={"csrf_token": home.group(1)})

    sign_in("reception.y02001@example.com")
    queue = text(client.get("/demo-system/Y02001/prescriptions"))
    assert "Amlodipine 5mg tablets" in queue and "Approve" in queue
    with app.app_context():
        from patient_online.extensions import db

        [held] = demo_requests(db.session)
    url = f"/demo-system/Y02001/prescriptions/{held.id}/reject"
    refused = client.submit(url, {"reason": ""}, page="/demo-system/Y02001/prescriptions")
    assert refused.status_code == 400 and "Enter the reason the patient will see" in text(refused)
    approve = client.submit(
        f"/demo-system/Y02001/prescriptions/{held.id}/approve", {}, page="/demo-system/Y02001/prescriptions"
    )
    assert approve.status_code == 302
    assert "Request approved." in text(client.get("/demo-system/Y02001/prescriptions"))
    assert client.get("/demo-system/Y02002/prescriptions").status_code == 403  # another practice's queue
    with app.app_context():
        from patient_online.extensions import db

        order = db.session.scalar(select(PrescriptionOrder))
        assert order is not None and order.status == "approved"
        assert emails(db.session)[-1].subject == "Your repeat prescription request has been approved"


def test_the_confirmation_page_belongs_to_its_patient(client: Any, sign_in: Any, app: Any) -> None:
    with app.app_context():
        from patient_online.extensions import db

        order = rx.order_repeats(wiring.uow(), acting_as(db.session), [AMLODIPINE], "", "z" * 32).order
        order_id = order.id
    sign_in("patient2.y02001@example.com")
    assert client.get(f"/prescriptions/orders/{order_id}").status_code == 404


# Exactly once, whatever the timing (issue 19) ----------------------------------------------------------------
@pytest.fixture
def fake_link(app: Any) -> Any:
    """A fake clinical system for Riverside with two repeats for the demo patient, whose link a test can cut."""
    from patient_online.extensions import db
    from patient_online.models import Patient

    with app.app_context():
        nhs = db.session.scalar(select(Patient.nhs_number).where(Patient.clinical_id == "Y02001-P001"))
    system = FakeClinicalSystem()
    system.templates[nhs] = [
        RepeatItem("F1", "Amlodipine 5mg tablets", "One a day", "28 tablets", PrescriptionType.REPEAT),
        RepeatItem("F2", "Ramipril 5mg capsules", "One a day", "28 capsules", PrescriptionType.REPEAT),
    ]
    wiring.override_clinical(app, "Y02001", system)
    yield system
    wiring.override_clinical(app, "Y02001", None)


def test_reordering_an_item_queued_while_the_link_is_down_says_already_requested(
    client: Any, sign_in: Any, app: Any, fake_link: FakeClinicalSystem
) -> None:
    sign_in(PATIENT)
    token, first_key = order_page(client)
    _, second_key = order_page(client)  # a second tab, opened while the link worked
    fake_link.down = True
    first = client.post(
        "/prescriptions/order", data={"csrf_token": token, "idempotency_key": first_key, "items": ["F1"]}
    )
    assert first.status_code == 302
    again = {"csrf_token": token, "idempotency_key": second_key, "items": ["F1"]}
    response = client.post("/prescriptions/order", data=again)
    page = text(response)
    assert response.status_code == 400, page
    assert "Amlodipine 5mg tablets: you have already requested this" in page
    assert "Nothing has been changed" not in page and "See your requests" in page
    with app.app_context():
        from patient_online.extensions import db

        assert db.session.scalar(select(func.count(PrescriptionOrder.id))) == 1


def test_a_double_submitted_queued_order_shows_its_confirmation_twice(
    client: Any, sign_in: Any, app: Any, fake_link: FakeClinicalSystem
) -> None:
    sign_in(PATIENT)
    token, key = order_page(client)
    fake_link.down = True
    form = {"csrf_token": token, "idempotency_key": key, "items": ["F1", "F2"]}
    first = client.post("/prescriptions/order", data=form)
    second = client.post("/prescriptions/order", data=form)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    done = text(client.get(second.headers["Location"]))
    assert "Request received" in done and "You do not need to order again" in done
    with app.app_context():
        from patient_online.extensions import db

        assert db.session.scalar(select(func.count(PrescriptionOrder.id))) == 1
        assert len(emails(db.session)) == 1


# Issue 21: where to collect it, pharmacies by distance, cancelling before sending, the request time ---------
def test_patient_orders_a_paper_prescription_to_collect_from_the_surgery(client: Any, sign_in: Any, app: Any) -> None:
    sign_in(PATIENT)
    form_page = text(client.get("/prescriptions/order"))
    assert "Where do you want to collect your prescription?" in form_page
    assert "Your nominated pharmacy: Kingsbridge Pharmacy" in form_page
    assert "Collect a paper prescription from Riverside Medical Centre" in form_page
    assert not re.search(r'name="collection"[^>]*checked', form_page)  # the patient chooses

    token, key = order_page(client)
    form = {"csrf_token": token, "idempotency_key": key, "items": [SALBUTAMOL], "collection_asked": "1"}
    unchosen = client.post("/prescriptions/order", data=form)
    assert unchosen.status_code == 400 and rx.CHOOSE_COLLECTION in text(unchosen)

    done = client.post("/prescriptions/order", data={**form, "collection": "surgery"})
    assert done.status_code == 302
    page = text(client.get(done.headers["Location"]))
    assert "Request sent" in page
    assert "Riverside Medical Centre (paper prescription)" in page and "Kingsbridge Pharmacy" not in page
    assert "a paper prescription will be ready for you at the reception desk" in page
    with app.app_context():
        from patient_online.extensions import db

        [held] = demo_requests(db.session)
        assert (held.collection, held.pharmacy_ods) == ("surgery", "")
        order = db.session.scalars(select(PrescriptionOrder)).one()
        assert order.collection == "surgery"
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "prescription.ordered"))
        assert event is not None and event.detail["collection"] == "surgery"
        # The demo practice's staff see it, and issue it on paper.
        [row] = [r for r in workflow.prescription_queue(db.session, "Y02001") if r.id == held.id]
        assert row.collection.value == "surgery"
    history = text(client.get("/prescriptions/requests"))
    assert "Collect from:</strong> Paper prescription to collect from your GP practice" in history


def test_a_form_opened_before_the_choice_existed_still_orders_to_the_nominated_pharmacy(
    client: Any, sign_in: Any, app: Any
) -> None:
    sign_in(PATIENT)
    token, key = order_page(client)
    done = client.post(
        "/prescriptions/order", data={"csrf_token": token, "idempotency_key": key, "items": [SALBUTAMOL]}
    )
    assert done.status_code == 302
    assert "Kingsbridge Pharmacy (sent electronically)" in text(client.get(done.headers["Location"]))
    with app.app_context():
        from patient_online.extensions import db

        [held] = demo_requests(db.session)
        assert (held.collection, held.pharmacy_ods) == ("pharmacy", "FA101")


def test_pharmacies_near_the_practice_are_nearest_first_with_miles(client: Any, sign_in: Any) -> None:
    sign_in(PATIENT)
    page = text(client.get("/prescriptions/pharmacy"))
    assert "Pharmacies near your GP practice" in page
    names = re.findall(r'<h3 class="nhsuk-card__heading nhsuk-heading-s">([^<]+)</h3>', page)
    assert names[:4] == [
        "Kingsbridge Pharmacy",
        "Mill Lane Chemist",
        "Greenway Pharmacy",
        "Riverside Late Night Pharmacy",
    ]
    assert names[-1] == "Online Pharmacy Direct (distance selling)"  # no premises: no distance, listed last
    distances = re.findall(r'<span class="app-distance">([^<]+)</span>', page)
    assert distances[:2] == ["0.1 miles", "0.1 miles"] and len(distances) == 7
    assert '<span class="app-distance">0.6 miles</span> from Riverside Medical Centre' in page


def test_a_queued_order_is_cancelled_from_its_page_and_never_sent(
    client: Any, sign_in: Any, app: Any, fake_link: FakeClinicalSystem, uow: Any
) -> None:
    from patient_online.services import outbox

    sign_in(PATIENT)
    token, key = order_page(client)
    fake_link.down = True
    form = {"csrf_token": token, "idempotency_key": key, "items": ["F1"], "collection": "surgery"}
    done = client.post("/prescriptions/order", data={**form, "collection_asked": "1"})
    confirmation = text(client.get(done.headers["Location"]))
    assert "Request received" in confirmation and "Cancel this request before it is sent" in confirmation
    history = text(client.get("/prescriptions/requests"))
    assert "Waiting to be sent to your GP practice" in history and "Cancel this request" in history
    with app.app_context():
        from patient_online.extensions import db

        order = db.session.scalars(select(PrescriptionOrder)).one()
        asked = order.created_at
    confirm = f"/prescriptions/requests/order-{order.id}/cancel"
    page = text(client.get(confirm))
    assert "Are you sure you want to cancel this request?" in page
    assert "has not been sent to Riverside Medical Centre yet. If you cancel it, we will not send it." in page
    assert client.submit(confirm, {}).status_code == 302
    history = text(client.get("/prescriptions/requests"))
    assert "Your request has been cancelled." in history and ">Cancelled<" in history
    assert "Cancel this request" not in history

    fake_link.down = False
    with app.app_context():
        from patient_online.extensions import db

        assert outbox.deliver_due(uow, "w1").outcomes == []
        assert fake_link.requests == {}
        order = db.session.get_one(PrescriptionOrder, order.id)
        assert order.status == "cancelled" and order.created_at == asked
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "prescription.cancelled"))
        assert event is not None and event.detail["before_sending"] is True


def test_requested_at_stays_the_time_the_patient_asked_after_a_late_delivery(
    client: Any, sign_in: Any, app: Any, uow: Any
) -> None:
    """Queued at 09:00, sent at 11:30 by the worker through the demo clinical system: the requests page still
    says 09:00, and says when it was sent."""
    import datetime as dt

    from patient_online.services import outbox

    sign_in(PATIENT)
    asked = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    with app.app_context():
        from patient_online.extensions import db

        acting = acting_as(db.session)
        link = FakeClinicalSystem(down=True)
        wiring.override_clinical(app, "Y02001", link)
        try:
            rx.order_repeats(uow, acting, [AMLODIPINE], "", "t" * 32, offered={AMLODIPINE: "Amlodipine 5mg tablets"})
        finally:
            wiring.override_clinical(app, "Y02001", None)
        order = db.session.scalars(select(PrescriptionOrder)).one()
        order.created_at = asked  # queued then: the worker sends it now, hours later
        for message in db.session.scalars(select(OutboxMessage)):
            message.next_attempt_at = asked
        db.session.commit()
        assert outbox.deliver_due(uow, "w1").outcomes == [outbox.Outcome.DELIVERED]
        order = db.session.get_one(PrescriptionOrder, order.id)
        held = db.session.get_one(DemoRepeatRequest, order.external_id)
        assert order.created_at == asked and order.sent_at is not None and order.sent_at > asked
        assert held.requested_at == asked  # the clinical system is told when the patient asked
    history = text(client.get("/prescriptions/requests"))
    assert "Requested 2 March 2026 at 9:00am" in history
    assert "Sent to your GP practice" in history and "when their system was available again" in history
