"""Earlier appointments through the Flask client, with CSRF on, on SQLite and PostgreSQL: joining the list and
leaving it, a practice with the list off, an offer shown, accepted or declined, another patient's offer, the
manager's switch and hold, and the uptake report's rows. The worker's round (``waitlist.run``) is called
directly, as ``flask outbox run`` would between two requests."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from patient_online import wiring
from patient_online.domain.appointments import Clinician, DeliveryMode, Slot
from patient_online.extensions import db
from patient_online.models import AuditEvent, Practice, SlotOffer
from patient_online.services import waitlist
from tests.fakes import FakeClinicalSystem

PATIENT = "patient.y02001@example.com"
PATIENT2 = "patient2.y02001@example.com"
MANAGER = "manager.y02001@example.com"
NOW = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
GP = Clinician("C1", "Dr Ada Byron", "GP")
EVERY_DAY = [str(d) for d in range(7)]
EVERY_TIME = ["morning", "afternoon", "evening"]
JOIN = {"slot_type": "", "weekdays": EVERY_DAY, "parts": EVERY_TIME, "weeks": "2", "replacing": ""}


def fake_slot(sid: str, hours: float) -> Slot:
    start = NOW + dt.timedelta(hours=hours)
    return Slot(sid, start, start + dt.timedelta(minutes=10), "GP appointment", GP, DeliveryMode.FACE_TO_FACE, "Room 4")


@pytest.fixture
def fake(app: Any) -> Iterator[FakeClinicalSystem]:
    """The practice's book: one time tomorrow, one in ten days."""
    system = FakeClinicalSystem()
    for s in (fake_slot("soon-free", 26), fake_slot("later", 24 * 10)):
        system.slots[s.id] = s
    wiring.override_clinical(app, "Y02001", system)
    yield system
    wiring.override_clinical(app, "Y02001", None)


def set_practice(app: Any, **values: Any) -> None:
    with app.app_context():
        practice = db.session.scalars(select(Practice).where(Practice.ods_code == "Y02001")).one()
        for name, value in values.items():
            setattr(practice, name, value)
        db.session.commit()


def run_worker(app: Any) -> waitlist.WaitlistReport:
    with app.app_context():
        return waitlist.run(wiring.uow_factory(app)(db.session))


def page_text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def live_offer_id(app: Any) -> int:
    with app.app_context():
        found = db.session.scalar(select(SlotOffer.id).where(SlotOffer.status == "held").order_by(SlotOffer.id))
    assert found is not None, "the worker made no offer"
    return int(found)


def audit_actions(app: Any, prefix: str = "waitlist.") -> list[str]:
    with app.app_context():
        rows = db.session.scalars(
            select(AuditEvent.action).where(AuditEvent.action.like(f"{prefix}%")).order_by(AuditEvent.id)
        )
        return list(rows)


def book(client: Any, slot: Slot) -> str:
    """Book the time through its page, as a patient does; the new appointment's id."""
    page = f"/appointments/slots/{slot.id}?{urlencode({'at': slot.start.isoformat()})}"
    key = re.search(r'name="idempotency_key" value="([^"]+)"', client.get(page).get_data(as_text=True))
    assert key, "the booking page has its key"
    data = {"reason": "A sore knee", "idempotency_key": key.group(1), "at": slot.start.isoformat()}
    response = client.submit(page, data, page=page)
    found = re.search(r"/appointments/([^/]+)/booked", response.headers.get("Location", ""))
    assert response.status_code == 302 and found, response.status_code
    return found.group(1)


def join(client: Any, **changes: Any) -> Any:
    return client.submit("/appointments/earlier", {**JOIN, **changes})


# Joining and leaving ---------------------------------------------------------------------------------------
def test_join_see_the_summary_and_leave(app: Any, client: Any, sign_in: Any, fake: FakeClinicalSystem) -> None:
    set_practice(app, waitlist_enabled=True)
    sign_in(PATIENT)
    listing = page_text(client.get("/appointments"))
    assert 'href="/appointments/earlier"' in listing and "Ask for an earlier appointment" in listing

    form = page_text(client.get("/appointments/earlier"))
    assert "<h1>Ask for an earlier appointment</h1>" in form
    assert '<label class="nhsuk-label" for="slot_type">Type of appointment</label>' in form
    assert '<option value="" selected>Any type</option>' in form
    assert "Which days can you come?</legend>" in form and "What times can you come?</legend>" in form
    assert all(f'name="weekdays" type="checkbox" value="{d}"' in form for d in EVERY_DAY)
    assert all(f'name="parts" type="checkbox" value="{p}"' in form for p in EVERY_TIME)
    assert '<label class="nhsuk-label" for="weeks">How far ahead can you come?</label>' in form
    assert ">1 week</option>" in form and ">2 weeks</option>" in form
    assert "Put me on the list" in form

    joined = join(client)
    assert joined.status_code == 302 and joined.headers["Location"].endswith("/appointments/earlier")
    summary = page_text(client.get("/appointments/earlier"))
    assert "app-flash--success" in summary and "You are on the list for an earlier appointment" in summary
    assert "You are on the list</h2>" in summary
    assert "Any type of appointment, any day, any time of day, until" in summary
    assert 'action="/appointments/earlier/leave"' in summary and "Leave the list" in summary
    assert "You are on the list for an earlier appointment" in page_text(client.get("/appointments"))

    changing = page_text(client.get("/appointments/earlier?change=1"))
    assert "Changing what you asked for keeps your place" in changing and 'value="0" checked' in changing
    assert join(client, weekdays=["0", "1"], parts=["morning"]).status_code == 302
    assert "Mondays or Tuesdays, mornings" in page_text(client.get("/appointments/earlier"))

    left = client.submit("/appointments/earlier/leave", {}, page="/appointments/earlier")
    assert left.status_code == 302
    assert "You are no longer on the list" in page_text(client.get("/appointments"))
    assert "Put me on the list" in page_text(client.get("/appointments/earlier"))
    assert audit_actions(app) == ["waitlist.joined", "waitlist.changed", "waitlist.left"]


def test_a_form_with_nothing_chosen_is_shown_again_with_what_to_fix(
    app: Any, client: Any, sign_in: Any, fake: FakeClinicalSystem
) -> None:
    set_practice(app, waitlist_enabled=True)
    sign_in(PATIENT)
    response = client.submit("/appointments/earlier", {"slot_type": "", "weeks": "99"})
    assert response.status_code == 400
    page = page_text(response)
    assert "There is a problem" in page and "<title>Error: " in page
    assert '<a href="#weekdays-1">Choose at least one day you can come</a>' in page
    assert '<a href="#parts-1">Choose at least one time of day you can come</a>' in page
    assert '<a href="#weeks">Choose how far ahead you could come</a>' in page
    assert 'id="weekdays-1"' in page and 'id="parts-1"' in page
    bad_type = join(client, slot_type="Baby clinic")
    assert bad_type.status_code == 400 and "Choose a type of appointment from the list" in page_text(bad_type)
    assert audit_actions(app) == []


def test_a_practice_with_the_list_off_says_so(app: Any, client: Any, sign_in: Any, fake: FakeClinicalSystem) -> None:
    set_practice(app, waitlist_enabled=False)
    sign_in(PATIENT)
    response = client.get("/appointments/earlier")
    assert response.status_code == 200
    page = page_text(response)
    assert "does not offer earlier appointments online" in page and "Put me on the list" not in page
    assert "Ask for an earlier appointment</a>" not in page_text(client.get("/appointments"))
    token = client.csrf_token("/appointments")
    refused = client.post("/appointments/earlier", data={**JOIN, "csrf_token": token})
    assert refused.status_code == 403 and "does not offer earlier appointments online" in page_text(refused)


def test_an_appointment_links_to_an_earlier_time_and_accepting_moves_it(
    app: Any, client: Any, sign_in: Any, fake: FakeClinicalSystem
) -> None:
    set_practice(app, waitlist_enabled=True)
    sign_in(PATIENT)
    old_id = book(client, fake.slots["later"])
    shown = page_text(client.get(f"/appointments/{old_id}"))
    assert f'href="/appointments/earlier?replacing={old_id}">Ask for an earlier time</a>' in shown
    form = page_text(client.get(f"/appointments/earlier?replacing={old_id}"))
    assert f'name="replacing" value="{old_id}"' in form and "we will cancel this one" in form
    assert join(client, replacing=old_id).status_code == 302
    assert "Earlier than" in page_text(client.get("/appointments/earlier"))

    assert run_worker(app).offered == 1
    offer_id = live_offer_id(app)
    offer = page_text(client.get(f"/appointments/offers/{offer_id}"))
    assert "<h1>An earlier appointment is free</h1>" in offer and "We are holding it for you until" in offer
    assert "If you accept, your appointment on" in offer and "will be cancelled" in offer
    assert "Why do you need this appointment?" in offer
    assert "Accept this appointment" in offer and "No thanks" in offer
    earlier = page_text(client.get("/appointments/earlier"))
    assert "An earlier appointment is being held for you" in earlier
    assert f'href="/appointments/offers/{offer_id}">See the earlier appointment</a>' in earlier

    empty = client.submit(
        f"/appointments/offers/{offer_id}/accept", {"reason": ""}, page=f"/appointments/offers/{offer_id}"
    )
    assert empty.status_code == 400 and "Enter the reason for your appointment" in page_text(empty)
    accepted = client.submit(
        f"/appointments/offers/{offer_id}/accept", {"reason": "A sore knee"}, page=f"/appointments/offers/{offer_id}"
    )
    assert accepted.status_code == 302 and "/booked" in accepted.headers["Location"]
    done = page_text(client.get(accepted.headers["Location"]))
    assert "Your earlier appointment is booked, and your appointment on" in done and "is cancelled" in done
    statuses = {a.slot.id: a.status.value for _, a in fake.appointments.values()}
    assert statuses == {"later": "cancelled", "soon-free": "booked"}
    assert "waitlist.offer_accepted" in audit_actions(app)

    again = client.submit(
        f"/appointments/offers/{offer_id}/accept", {"reason": "A sore knee"}, page="/appointments/earlier"
    )
    assert again.status_code in (302, 409)  # a second press finds the booking made, never a second one
    assert len([a for _, a in fake.appointments.values() if a.status.value == "booked"]) == 1
    ended = client.get(f"/appointments/offers/{offer_id}")
    assert ended.status_code == 200 and "This offer has ended" in page_text(ended)


def test_declining_ends_the_offer_and_keeps_the_place(
    app: Any, client: Any, sign_in: Any, fake: FakeClinicalSystem
) -> None:
    set_practice(app, waitlist_enabled=True)
    sign_in(PATIENT)
    assert join(client).status_code == 302
    run_worker(app)
    offer_id = live_offer_id(app)
    declined = client.submit(f"/appointments/offers/{offer_id}/decline", {}, page=f"/appointments/offers/{offer_id}")
    assert declined.status_code == 302 and declined.headers["Location"].endswith("/appointments/earlier")
    after = page_text(client.get("/appointments/earlier"))
    assert "You are still on the list" in after and "You are on the list</h2>" in after
    ended = client.get(f"/appointments/offers/{offer_id}")
    assert ended.status_code == 200
    assert "<h1>This offer has ended</h1>" in page_text(ended)
    assert 'href="/appointments/earlier"' in page_text(ended)
    token = client.csrf_token("/appointments/earlier")
    late = client.post(f"/appointments/offers/{offer_id}/accept", data={"reason": "A cough", "csrf_token": token})
    assert late.status_code == 409 and "This offer has ended" in page_text(late)
    assert [a for a in audit_actions(app) if a != "waitlist.offered"] == ["waitlist.joined", "waitlist.offer_declined"]


def test_another_patients_offer_is_not_found(app: Any, client: Any, sign_in: Any, fake: FakeClinicalSystem) -> None:
    set_practice(app, waitlist_enabled=True)
    sign_in(PATIENT)
    assert join(client).status_code == 302
    run_worker(app)
    offer_id = live_offer_id(app)
    client.post("/logout", data={"csrf_token": client.csrf_token("/appointments")})
    sign_in(PATIENT2)
    assert client.get(f"/appointments/offers/{offer_id}").status_code == 404
    token = client.csrf_token("/appointments")
    for action in ("accept", "decline"):
        posted = client.post(f"/appointments/offers/{offer_id}/{action}", data={"reason": "Mine", "csrf_token": token})
        assert posted.status_code == 404
    assert client.get("/appointments/offers/99999999").status_code == 404
    assert client.get("/appointments/offers/0").status_code == 404


# The practice manager -------------------------------------------------------------------------------------
RULES: dict[str, Any] = {
    "online_slot_types": ["GP appointment", "Nurse appointment", "Blood test", "Medication review"],
    "booking_horizon_days": "28",
    "min_lead_time_hours": "2",
    "max_future_appointments": "2",
    "cancellation_allowed": "yes",
    "cancellation_cutoff_hours": "24",
    "turnaround_working_days": "2",
    "max_note_length": "300",
    "never_online": "morphine\ndiazepam\npregabalin",
    "record_access_start-day": "31",
    "record_access_start-month": "10",
    "record_access_start-year": "2023",
}


def test_the_manager_switches_the_list_and_sets_the_hold(app: Any, client: Any, sign_in: Any) -> None:
    set_practice(app, waitlist_enabled=True, waitlist_hold_minutes=15)
    sign_in(MANAGER)
    page = page_text(client.get("/manage/rules"))
    assert "Earlier appointments</h2>" in page
    assert "Offer freed times to patients waiting for an earlier appointment?</legend>" in page
    assert 'name="waitlist_enabled" type="radio" value="yes" checked' in page
    assert 'for="waitlist_hold_minutes">How long an offer is held (minutes)</label>' in page
    assert 'name="waitlist_hold_minutes"' in page and 'value="15"' in page and "Between 5 and 120 minutes" in page
    slot_types = re.findall(r'name="online_slot_types" type="checkbox" value="([^"]+)" checked', page)
    rules = {**RULES, "online_slot_types": slot_types}

    saved = client.submit("/manage/rules", {**rules, "waitlist_enabled": "no", "waitlist_hold_minutes": "30"})
    assert saved.status_code == 302
    with app.app_context():
        practice = db.session.scalars(select(Practice).where(Practice.ods_code == "Y02001")).one()
        assert practice.waitlist_enabled is False and practice.waitlist_hold_minutes == 30
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "practice.rules_changed")).one()
        assert set(event.detail["changes"]) == {"waitlist_enabled", "waitlist_hold_minutes"}
    after = page_text(client.get("/manage/rules"))
    assert "How long an offer is held (minutes): 15 to 30" in after
    assert 'name="waitlist_enabled" type="radio" value="no" checked' in after

    for typed, words in (("3", "5 minutes or more"), ("500", "120 minutes or fewer"), ("soon", "whole number")):
        refused = client.submit("/manage/rules", {**rules, "waitlist_enabled": "yes", "waitlist_hold_minutes": typed})
        assert refused.status_code == 400 and words in page_text(refused), typed
    unchanged = client.submit("/manage/rules", rules)  # a form from before the list existed: the setting stands
    assert unchanged.status_code == 302
    with app.app_context():
        practice = db.session.scalars(select(Practice).where(Practice.ods_code == "Y02001")).one()
        assert practice.waitlist_enabled is False and practice.waitlist_hold_minutes == 30


def test_the_uptake_report_shows_offers_and_slots_filled(
    app: Any, client: Any, sign_in: Any, fake: FakeClinicalSystem
) -> None:
    set_practice(app, waitlist_enabled=True)
    sign_in(PATIENT)
    assert join(client).status_code == 302
    run_worker(app)
    offer_id = live_offer_id(app)
    accepted = client.submit(
        f"/appointments/offers/{offer_id}/accept", {"reason": "A cough"}, page=f"/appointments/offers/{offer_id}"
    )
    assert accepted.status_code == 302
    client.post("/logout", data={"csrf_token": client.csrf_token("/appointments")})
    sign_in(MANAGER)
    report = page_text(client.get("/manage/reports"))
    rows = dict(re.findall(r"</span>([^<]+)</th>\s*<td[^>]*><span[^>]*>Figure </span>([^<]*)</td>", report))
    assert rows["Earlier appointments offered"] == "1"
    assert rows["Slots filled by earlier-appointment offers"] == "1"
    assert "100% of offers accepted" in report
    csv = client.get("/manage/reports.csv").get_data(as_text=True)
    assert "Earlier appointments offered,1," in csv
    assert "Slots filled by earlier-appointment offers,1,100% of offers accepted" in csv


def test_an_appointment_too_close_to_move_is_refused_with_what_to_do_and_odd_ids_are_not_found(
    app: Any, client: Any, sign_in: Any, fake: FakeClinicalSystem
) -> None:
    set_practice(app, waitlist_enabled=True)
    tomorrow = fake_slot("tomorrow-morning", 20)  # inside the 24-hour cutoff
    fake.slots[tomorrow.id] = tomorrow
    sign_in(PATIENT)
    booked = book(client, tomorrow)
    assert "Ask for an earlier time" not in page_text(client.get(f"/appointments/{booked}"))
    for response in (client.get(f"/appointments/earlier?replacing={booked}"), join(client, replacing=booked)):
        text = page_text(response)
        assert response.status_code == 400
        assert "You cannot ask for an earlier time for this appointment online because it is less than 24 hours" in text
        assert "To change it, call" in text
    for odd in ("\x00", "x" * 10_000, str(2**63), "../../etc"):  # refused as input, or no such appointment
        assert client.get("/appointments/earlier", query_string={"replacing": odd}).status_code in (400, 404)
    assert audit_actions(app) == []
