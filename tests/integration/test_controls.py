"""Practice switches, rules and per-patient access, through the Flask client (crafted requests included)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import select

from patient_online import wiring
from patient_online.domain.access import FLAG_ENHANCED_REVIEW, FLAG_REVIEW_NOT_INDICATED, Service
from patient_online.domain.controls import SwitchSetting
from patient_online.domain.errors import NotAllowed, NotFound, ServiceOff
from patient_online.domain.patients import AccessFlag
from patient_online.domain.record import RecordLevel
from patient_online.extensions import db
from patient_online.models import AccountLink, AuditEvent, Patient, Practice, User
from patient_online.services import controls, patient_access
from patient_online.services.access import acting_for
from tests.fakes import FakeClinicalSystem

PATIENT = "patient.y02001@example.com"
PARENT = "parent.y02001@example.com"
MANAGER = "manager.y02001@example.com"
RECEPTION = "reception.y02001@example.com"
BACK = dt.date.today() + dt.timedelta(days=14)


def _practice(ods: str = "Y02001") -> Practice:
    found = db.session.scalar(select(Practice).where(Practice.ods_code == ods))
    assert found is not None
    return found


def _user(email: str) -> User:
    found = db.session.scalar(select(User).where(User.email == email))
    assert found is not None
    return found


def _own_patient(email: str) -> Patient:
    link = db.session.scalar(select(AccountLink).where(AccountLink.user_id == _user(email).id))
    assert link is not None
    return link.patient


def _switch(client: Any, service: str, **fields: str) -> Any:
    data = {"enabled": "on", "message": "", "off_reason": ""}
    if service == "record":
        data["default_level"] = "full"
    data.update(fields)
    return client.submit(f"/manage/services/{service}", data)


def _date_fields(prefix: str, day: dt.date) -> dict[str, str]:
    return {f"{prefix}-day": str(day.day), f"{prefix}-month": str(day.month), f"{prefix}-year": str(day.year)}


def _events(app: Any, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


# Practice switches ---------------------------------------------------------------------------------------
def test_services_page_summarises_every_switch_with_a_change_link(client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    html = client.get("/manage/services").get_data(as_text=True)
    for service in Service:
        assert service.label in html
        assert f'href="/manage/services/{service.value}"' in html
    main = html.split("<main")[1].split("</main>")[0]
    assert "<form" not in main  # a summary: each service is changed on its own page
    assert "History of changes" in html


def test_each_change_page_holds_only_its_services_form_and_warns(client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    for service in Service:
        html = client.get(f"/manage/services/{service.value}").get_data(as_text=True)
        assert html.count('name="enabled"') == 2
        assert "What patients see if you switch it off" in html
        assert ("The GP contract requires" in html or "GP contract requires" in html) is service.contractual
        assert ('name="default_level"' in html) is (service is Service.RECORD)
    assert client.get("/manage/services/telepathy").status_code == 404


@pytest.mark.parametrize("service", list(Service))
def test_saving_a_service_unchanged_writes_no_history(app: Any, client: Any, sign_in: Any, service: Service) -> None:
    sign_in(MANAGER)
    response = _switch(client, service.value)
    assert response.status_code == 302 and response.headers["Location"].endswith("/manage/services")
    page = client.get("/manage/services").get_data(as_text=True)
    assert f"{service.label}: nothing changed." in page and "No changes yet." in page
    assert _events(app, controls.SWITCHED) == []


def test_saving_the_rules_form_as_shown_writes_no_history(app: Any, client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    html = client.get("/manage/rules").get_data(as_text=True)
    checked = re.findall(r'name="online_slot_types" type="checkbox" value="([^"]+)" checked', html)
    assert checked, "the rules page shows the chosen appointment types"
    response = client.submit("/manage/rules", {**RULES, "online_slot_types": sorted(checked)})
    assert response.status_code == 302
    assert "Nothing changed" in client.get("/manage/rules").get_data(as_text=True)
    assert _events(app, controls.RULES_CHANGED) == []


def test_saving_changed_rules_says_what_changed_in_words(app: Any, client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    response = client.submit("/manage/rules", {**RULES, "booking_horizon_days": "14", "cancellation_allowed": "no"})
    assert response.status_code == 302
    page = client.get("/manage/rules").get_data(as_text=True)
    assert "Changed: Booking horizon: 28 to 14; Patients can cancel online: Yes to No." in page
    (event,) = _events(app, controls.RULES_CHANGED)
    assert set(event.detail["changes"]) >= {"booking_horizon_days", "cancellation_allowed"}


def test_history_is_paged(app: Any, client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    for n in range(controls.HISTORY_PER_PAGE + 1):
        assert _switch(client, "proxy", enabled="off", message=f"Paused {n}").status_code == 302
    first = client.get("/manage/services").get_data(as_text=True)
    assert first.count('class="nhsuk-table__row"') == controls.HISTORY_PER_PAGE
    assert "Older changes" in first and "Newer changes" not in first
    second = client.get("/manage/services?page=2").get_data(as_text=True)
    assert second.count('class="nhsuk-table__row"') == 1 and "Newer changes" in second
    assert "Paused 0" in second


def test_switching_appointments_off_changes_what_the_patient_sees_at_once(app: Any, client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    message = "Online booking is paused until 3 March; call 01234 567890"
    response = _switch(
        client,
        "appointments",
        enabled="off",
        message=message,
        off_reason="Clinical system upgrade",
        **_date_fields("expected_return", BACK),
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "below contract" in page.lower() and "Clinical system upgrade" in page
    assert "History of changes" in page and "Martin Cole" in page

    (event,) = _events(app, controls.SWITCHED)
    assert event.detail["service"] == "appointments"
    assert event.detail["old"]["enabled"] is True and event.detail["new"]["enabled"] is False
    assert event.detail["new"]["message"] == message
    assert event.detail["new"]["expected_return"] == BACK.isoformat()
    assert event.detail["reason"] == "Clinical system upgrade"
    assert event.actor_role == "practice_manager" and event.actor_user_id == _user_id(app, MANAGER)

    client.post("/logout", data={"csrf_token": client.csrf_token("/manage/")})
    sign_in(PATIENT)
    home = client.get("/home").get_data(as_text=True)
    assert message in home
    with app.app_context():
        acting = acting_for(db.session, _user(PATIENT), None)
        assert acting is not None
        with pytest.raises(ServiceOff) as refused:
            acting.require(Service.APPOINTMENTS)
        assert refused.value.message == message
        acting.require(Service.PRESCRIPTIONS)  # the other services are untouched
    if "patient.appointment_slots" in app.view_functions:
        slots = client.get("/appointments/slots")
        assert slots.status_code == 403 and message in slots.get_data(as_text=True)


def _user_id(app: Any, email: str) -> int:
    with app.app_context():
        return _user(email).id


def test_switching_a_contract_service_off_needs_a_reason_and_a_date(app: Any, client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    response = _switch(client, "prescriptions", enabled="off", message="Call us to order")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Enter why repeat prescriptions will be below what the GP contract requires" in html
    assert "Enter the date you expect repeat prescriptions to be back" in html
    assert "Call us to order" in html  # nothing typed is lost
    assert _events(app, controls.SWITCHED) == []
    with app.app_context():
        assert _practice().switch("prescriptions").enabled  # type: ignore[union-attr]


def test_record_default_level_none_counts_as_below_contract(app: Any, client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    assert _switch(client, "record", default_level="none").status_code == 400
    ok = _switch(client, "record", default_level="summary")
    assert ok.status_code == 302
    with app.app_context():
        assert _practice().default_record_level == "summary"
        access = acting_for(db.session, _user(PATIENT), None)
        assert access is not None and access.access.record_level == RecordLevel.SUMMARY


def test_proxy_switch_off_stops_proxies_entirely(app: Any, client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    assert _switch(client, "proxy", enabled="off", message="Proxy access is paused").status_code == 302
    with app.app_context():
        parent = _user(PARENT)
        child_link = next(
            link for link in db.session.scalars(select(AccountLink)) if link.user_id == parent.id
        )  # the parent's own record still works
        own = acting_for(db.session, parent, child_link.patient_id)
        assert own is not None and own.access.allows(Service.APPOINTMENTS)
        from patient_online.models import ProxyLink

        proxy = db.session.scalar(select(ProxyLink).where(ProxyLink.proxy_user_id == parent.id))
        assert proxy is not None
        as_proxy = acting_for(db.session, parent, proxy.patient_id)
        assert as_proxy is not None
        for service in (Service.APPOINTMENTS, Service.PRESCRIPTIONS, Service.RECORD):
            with pytest.raises(ServiceOff):
                as_proxy.require(service)


@pytest.mark.parametrize("email", [RECEPTION, PATIENT, "manager.y02002@example.com"])
def test_only_the_practice_manager_can_switch(app: Any, client: Any, sign_in: Any, email: str) -> None:
    sign_in(email)
    token = client.csrf_token("/account" if email == PATIENT else "/reception/" if email == RECEPTION else "/manage/")
    response = client.post(
        "/manage/services/appointments?practice=1",
        data={"csrf_token": token, "enabled": "off", "off_reason": "x"},
    )
    assert response.status_code in (302, 400, 403)
    with app.app_context():
        assert _practice().switch("appointments").enabled  # type: ignore[union-attr]
    assert _events(app, controls.SWITCHED) == []


def test_service_layer_refuses_anyone_but_a_manager_of_the_practice(app_ctx: Any, uow: Any) -> None:
    practice = _practice()
    setting = SwitchSetting(Service.PROXY, enabled=False)
    for email in (RECEPTION, "manager.y02002@example.com"):
        with pytest.raises(NotAllowed):
            controls.set_switch(uow, practice, _user(email), setting)
    assert controls.set_switch(uow, practice, _user(MANAGER), setting) is True
    assert controls.set_switch(uow, practice, _user(MANAGER), setting) is False  # nothing changed, no event


# Rules -----------------------------------------------------------------------------------------------------
RULES = {
    "online_slot_types": ["GP appointment", "Nurse appointment", "Blood test", "Medication review"],
    "booking_horizon_days": "28",
    "min_lead_time_hours": "2",
    "max_future_appointments": "2",
    "cancellation_allowed": "yes",
    "cancellation_cutoff_hours": "24",
    "turnaround_working_days": "2",
    "max_note_length": "300",
    "never_online": "morphine\ndiazepam\npregabalin",
    **_date_fields("record_access_start", dt.date(2023, 10, 31)),
}


def test_rules_page_offers_the_slot_types_of_the_clinical_system(client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    html = client.get("/manage/rules").get_data(as_text=True)
    for name in ("GP appointment", "Nurse appointment", "Blood test", "Medication review", "Urgent on the day"):
        assert f'value="{name}"' in html
    assert "Baby clinic" in html


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("booking_horizon_days", "-3", "Booking horizon must be 1 day or more"),
        ("booking_horizon_days", str(5 * 365), "Booking horizon must be 90 days or fewer"),
        ("booking_horizon_days", "four weeks", "whole number of days, like 28"),
        ("min_lead_time_hours", "200", "168 hours (7 days) or fewer"),
        ("turnaround_working_days", "0", "1 working day or more"),
        ("max_note_length", "5000", "1000 characters or fewer"),
    ],
)
def test_bad_rules_are_refused_with_a_reason(
    app: Any, client: Any, sign_in: Any, field: str, value: str, words: str
) -> None:
    sign_in(MANAGER)
    response = client.submit("/manage/rules", {**RULES, field: value})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert words in html and "There is a problem" in html
    assert f'value="{value}"' in html  # what was typed is kept
    assert _events(app, controls.RULES_CHANGED) == []


def test_access_start_before_31_october_2023_is_refused(client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    response = client.submit("/manage/rules", {**RULES, **_date_fields("record_access_start", dt.date(2022, 1, 1))})
    assert response.status_code == 400
    assert "31 October 2023 or later" in response.get_data(as_text=True)


def test_unchecking_every_slot_type_is_refused(client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    data = {k: v for k, v in RULES.items() if k != "online_slot_types"}
    response = client.submit("/manage/rules", data)
    assert response.status_code == 400
    assert "Choose at least one type of appointment" in response.get_data(as_text=True)


def test_rule_changes_are_saved_and_audited_field_by_field(app: Any, client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    response = client.submit(
        "/manage/rules",
        {
            **RULES,
            "online_slot_types": ["Blood test"],
            "booking_horizon_days": "14",
            "cancellation_allowed": "no",
            "never_online": "morphine\nAmlodipine",
        },
    )
    assert response.status_code == 302
    (event,) = _events(app, controls.RULES_CHANGED)
    changes = event.detail["changes"]
    assert changes["booking_horizon_days"] == {"old": 28, "new": 14}
    assert changes["cancellation_allowed"] == {"old": True, "new": False}
    assert changes["online_slot_types"]["new"] == ["Blood test"]
    assert changes["never_online"]["new"] == ["morphine", "amlodipine"]
    assert set(changes) == {"booking_horizon_days", "cancellation_allowed", "online_slot_types", "never_online"}
    page = client.get("/manage/rules").get_data(as_text=True)
    assert "Booking horizon" in page and "History of changes" in page

    with app.app_context():
        from patient_online.services import appointments, prescriptions

        practice = _practice()
        booking = appointments.rules_for(practice)
        assert booking.online_slot_types == frozenset({"Blood test"}) and booking.horizon_days == 14
        assert not booking.cancellation_allowed
        assert "amlodipine" in prescriptions.rules_for(practice).never_online

    client.post("/logout", data={"csrf_token": client.csrf_token("/manage/")})
    sign_in(PATIENT)
    if "patient.appointment_slots" in app.view_functions:
        slots = client.get("/appointments/slots").get_data(as_text=True)
        assert "Blood test" in slots and "Nurse Janet Hughes" not in slots
    if "patient.prescription_order" in app.view_functions or "patient.order" in app.view_functions:
        order = client.get("/prescriptions/order").get_data(as_text=True)
        assert "does not allow this medicine to be ordered online" in order


# Per-patient access (reception) ---------------------------------------------------------------------------
def test_reception_sees_and_explains_a_patients_access(app: Any, client: Any, sign_in: Any) -> None:
    sign_in(RECEPTION)
    with app.app_context():
        patient_id = _own_patient(PATIENT).id
    html = client.get(f"/reception/patients/{patient_id}/access").get_data(as_text=True)
    assert "Full record: practice default" in html and "Online access" in html
    assert _events(app, "access.viewed")


def test_reception_turns_appointments_off_for_one_patient(app: Any, client: Any, sign_in: Any) -> None:
    sign_in(RECEPTION)
    with app.app_context():
        patient_id = _own_patient(PATIENT).id
    url = f"/reception/patients/{patient_id}/access"
    response = client.submit(url, {"record_level": "summary", "appointments": "off", "prescriptions": "on"})
    assert response.status_code == 302
    html = client.get(url).get_data(as_text=True)
    assert "Summary record: set by the GP practice" in html
    assert "Online appointments: switched off for this patient" in html
    (event,) = _events(app, "access.changed")
    assert event.patient_id == patient_id
    assert event.detail["old"] == {"record_level": None, "appointments": True}
    assert event.detail["new"] == {"record_level": "summary", "appointments": False}
    with app.app_context():
        acting = acting_for(db.session, _user(PATIENT), None)
        assert acting is not None
        with pytest.raises(ServiceOff):
            acting.require(Service.APPOINTMENTS)
        assert acting.access.record_level == RecordLevel.SUMMARY


def test_a_review_keeps_the_full_record_already_given_but_refuses_wider(app: Any, client: Any, sign_in: Any) -> None:
    sign_in(RECEPTION)
    with app.app_context():
        patient_id = _own_patient(PATIENT).id
    url = f"/reception/patients/{patient_id}/access"
    flagged = client.submit(
        f"{url}/flags",
        {"code": FLAG_ENHANCED_REVIEW, **_date_fields("recorded_on", dt.date.today() - dt.timedelta(days=1))},
        page=url,
    )
    assert flagged.status_code == 302
    # Rule 8: the demo patient was already reading the full record (the practice default) when the code was
    # recorded, so it stays, and saving it again is allowed; only wider access is refused.
    kept = client.submit(url, {"record_level": "full", "appointments": "on", "prescriptions": "off"})
    assert kept.status_code == 302
    assert "Full record: set by the GP practice" in client.get(url).get_data(as_text=True)
    refused = client.submit(url, {"record_level": "historic", "appointments": "on", "prescriptions": "on"})
    assert refused.status_code == 400
    assert "enhanced review not" in refused.get_data(as_text=True)
    with app.app_context():
        acting = acting_for(db.session, _user(PATIENT), None)
        assert acting is not None and acting.access.record_level is RecordLevel.FULL
    lifted = client.submit(
        f"{url}/flags", {"code": FLAG_REVIEW_NOT_INDICATED, **_date_fields("recorded_on", dt.date.today())}, page=url
    )
    assert lifted.status_code == 302
    assert (
        client.submit(url, {"record_level": "historic", "appointments": "on", "prescriptions": "on"}).status_code == 302
    )


def test_reception_refreshes_codes_from_the_clinical_system(app: Any, client: Any, sign_in: Any) -> None:
    with app.app_context():
        patient = _own_patient(PATIENT)
        patient_id, nhs = patient.id, patient.nhs_number
        demographics = wiring.clinical_systems(app).system_for(patient.practice).find_patient(nhs)
    assert demographics is not None
    fake = FakeClinicalSystem(
        patients={nhs: _with_flags(demographics, (AccessFlag(FLAG_ENHANCED_REVIEW, dt.date(2020, 1, 1)),))}
    )
    wiring.override_clinical(app, "Y02001", fake)
    sign_in(RECEPTION)
    url = f"/reception/patients/{patient_id}/access"
    response = client.submit(f"{url}/refresh", {}, page=url)
    assert response.status_code == 302
    html = client.get(url).get_data(as_text=True)
    assert "Enhanced review indicated" in html and "Clinical system" in html
    fake.down = True
    client.submit(f"{url}/refresh", {}, page=url)
    assert "cannot be reached" in client.get(url).get_data(as_text=True)


def _with_flags(demographics: Any, flags: tuple[AccessFlag, ...]) -> Any:
    from dataclasses import replace

    return replace(demographics, flags=flags)


def test_reception_cannot_touch_another_practices_patient(app: Any, client: Any, sign_in: Any) -> None:
    with app.app_context():
        other = db.session.scalar(select(Patient).join(Practice).where(Practice.ods_code == "Y02002"))
        assert other is not None
        other_id, before = other.id, other.appointments_enabled
    sign_in(RECEPTION)
    assert client.get(f"/reception/patients/{other_id}/access").status_code == 404
    token = client.csrf_token("/reception/")
    crafted = client.post(
        f"/reception/patients/{other_id}/access",
        data={"csrf_token": token, "record_level": "none", "appointments": "off", "prescriptions": "off"},
    )
    assert crafted.status_code in (403, 404)
    with app.app_context():
        assert db.session.get(Patient, other_id).appointments_enabled == before  # type: ignore[union-attr]
    assert _events(app, "access.changed") == []


def test_service_layer_refuses_other_practices(app_ctx: Any, session: Any, uow: Any) -> None:
    other = session.scalar(select(Patient).join(Practice).where(Practice.ods_code == "Y02002"))
    with pytest.raises(NotFound):
        patient_access.access_panel(uow, _user(RECEPTION), _practice(), other.id)
    with pytest.raises(NotAllowed):
        patient_access.access_panel(uow, _user(MANAGER), _practice(), _own_patient(PATIENT).id)


# Enforcement: a crafted request that bypasses the page is refused and changes nothing ----------------------
def test_crafted_patient_post_is_refused_when_the_service_is_off(app: Any, client: Any, sign_in: Any, uow: Any) -> None:
    with app.app_context():
        controls.set_switch(
            uow,
            _practice(),
            _user(MANAGER),
            SwitchSetting(Service.PRESCRIPTIONS, False, "Call to order", "Pharmacy system change", BACK),
        )
        orders_before = _count_orders()
    sign_in(PATIENT)
    token = client.csrf_token("/account")
    posts = [
        rule.rule
        for rule in app.url_map.iter_rules()
        if "POST" in (rule.methods or ()) and rule.rule.startswith("/prescriptions") and "<" not in rule.rule
    ]
    assert posts, "no patient POST route for prescriptions"
    for path in posts:
        response = client.post(path, data={"csrf_token": token, "items": ["x"], "pharmacy": "FA102"})
        assert response.status_code == 403, path
        assert "Call to order" in response.get_data(as_text=True)
    with app.app_context():
        assert _count_orders() == orders_before
        assert _practice().switch("prescriptions").enabled is False  # type: ignore[union-attr]


def _count_orders() -> int:
    from sqlalchemy import func

    from patient_online.models import PrescriptionOrder

    return int(db.session.scalar(select(func.count(PrescriptionOrder.id))) or 0)


# Rule 8 and the patient's wording: a review never removes access already granted, and no page tells the patient
# why their access is limited in words that name a code or a safeguarding concern.
PATIENT_FORBIDDEN = ("enhanced review", "safeguarding", "104", "withheld", "not available online at your gp practice")


def _patient_pages(client: Any) -> str:
    home = client.get("/home")
    record = client.get("/record")
    assert home.status_code == 200
    return (home.get_data(as_text=True) + record.get_data(as_text=True)).lower()


def test_a_new_review_leaves_the_patients_full_record_and_names_nothing(app: Any, client: Any, sign_in: Any) -> None:
    sign_in(RECEPTION)
    with app.app_context():
        patient_id = _own_patient(PATIENT).id
    url = f"/reception/patients/{patient_id}/access"
    flagged = client.submit(
        f"{url}/flags", {"code": FLAG_ENHANCED_REVIEW, **_date_fields("recorded_on", dt.date.today())}, page=url
    )
    assert flagged.status_code == 302
    assert "Full record: practice default" in client.get(url).get_data(as_text=True)
    client.submit("/logout", {}, page="/home")
    sign_in(PATIENT)
    pages = _patient_pages(client)
    assert "full record" in pages
    for word in PATIENT_FORBIDDEN:
        assert word not in pages, word


def test_a_review_holding_back_new_access_is_not_disclosed_to_the_patient(app: Any, client: Any, sign_in: Any) -> None:
    with app.app_context():
        patient = _own_patient(PATIENT)
        patient.flags = [{"code": FLAG_ENHANCED_REVIEW, "date": "2020-01-01"}]  # read before the patient linked
        db.session.commit()
    sign_in(PATIENT)
    pages = _patient_pages(client)
    for word in PATIENT_FORBIDDEN:
        assert word not in pages, word
    with app.app_context():
        acting = acting_for(db.session, _user(PATIENT), None)
        assert acting is not None and acting.access.record_level is RecordLevel.DETAILED


def test_a_patient_whose_record_is_set_to_none_is_told_the_truth(app: Any, client: Any, sign_in: Any) -> None:
    with app.app_context():
        patient = _own_patient(PATIENT)
        patient.record_level = RecordLevel.NONE.value
        name = patient.practice.name
        db.session.commit()
    sign_in(PATIENT)
    pages = _patient_pages(client)
    assert f"contact {name.lower()} about online access to your gp record" in pages
    for word in PATIENT_FORBIDDEN:
        assert word not in pages, word


def test_a_practice_that_switched_the_record_off_says_so(app: Any, client: Any, sign_in: Any, uow: Any) -> None:
    with app.app_context():
        practice = _practice()
        name = practice.name
        controls.set_switch(
            uow,
            practice,
            _user(MANAGER),
            SwitchSetting(Service.RECORD, False, "", "System change", BACK, RecordLevel.FULL),
        )
    sign_in(PATIENT)
    pages = _patient_pages(client)
    assert f"{name.lower()} does not offer gp record access online" in pages
    assert "not available online at your gp practice" not in pages
