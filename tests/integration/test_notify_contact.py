"""The contact page: a patient adds a UK mobile number, confirms it with the code sent by text, and chooses
email only or email and a text per kind of message; mistakes are clear 400 pages; staff see where messages stand."""

from __future__ import annotations

import html
import re
from typing import Any

from sqlalchemy import select

from patient_online.models import AuditEvent, Notification

PATIENT = "patient.y02001@example.com"


def text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def sms_code(session: Any) -> str:
    body = session.scalars(
        select(Notification.body).where(Notification.channel == "sms").order_by(Notification.id.desc())
    ).first()
    found = re.search(r"\b(\d{6})\b", str(body))
    assert found
    return found[1]


def test_add_confirm_and_choose_text_messages(client: Any, sign_in: Any, session: Any) -> None:
    sign_in(PATIENT)
    assert "How we contact you" in text(client.get("/account"))
    page = text(client.get("/account/contact"))
    assert "How we contact you" in page and "You have not given us a mobile number" in page

    wrong = client.submit("/account/contact/mobile", {"mo-mobile": "01632 960000"}, page="/account/contact")
    assert wrong.status_code == 400 and "Enter a UK mobile number, like 07700 900123" in text(wrong)
    assert 'href="#mo-mobile"' in text(wrong)  # the error summary links to the field

    early = client.submit(
        "/account/contact/choices",
        {f"ch-{k}": "both" for k in ("appointments", "prescriptions", "security")},
        page="/account/contact",
    )
    assert early.status_code == 400 and "Add and confirm a mobile number" in text(early)

    sent = client.submit("/account/contact/mobile", {"mo-mobile": "07700 900123"}, page="/account/contact")
    assert sent.status_code == 302
    [sms] = session.scalars(select(Notification).where(Notification.channel == "sms")).all()
    assert sms.to == "+447700900123" and sms.template == "confirm_mobile"
    bad = client.submit("/account/contact/mobile/confirm", {"mc-code": "12"}, page="/account/contact")
    assert bad.status_code == 400 and "6 digits" in text(bad)
    done = client.submit("/account/contact/mobile/confirm", {"mc-code": sms_code(session)}, page="/account/contact")
    assert done.status_code == 302
    assert "07700 900123 (confirmed)" in text(client.get("/account/contact"))

    saved = client.submit(
        "/account/contact/choices",
        {"ch-appointments": "both", "ch-prescriptions": "both", "ch-security": "email"},
        page="/account/contact",
    )
    assert saved.status_code == 302
    page = text(client.get("/account/contact"))
    assert re.search(r'value="both"\s+checked', page)
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("contact.%"))))
    assert actions == {"contact.mobile_code_sent", "contact.mobile_confirmed", "contact.channels_changed"}


def test_a_made_up_channel_is_a_400_not_a_500(client: Any, sign_in: Any) -> None:
    sign_in(PATIENT)
    response = client.submit("/account/contact/choices", {"ch-appointments": "pigeon"}, page="/account/contact")
    assert response.status_code == 400


def test_the_demo_mailbox_shows_messages_and_is_gone_in_a_real_setup(client: Any, app: Any) -> None:
    client.submit("/register", {"email": "mailbox.reader@example.com", "password": "purple-kettle-orbit-42"})
    page = text(client.get("/demo-system/messages"))
    assert "Demo mailbox" in page and "mailbox.reader@example.com" in page and "Security code" in page
    app.config["NOTIFIER"] = "notify"
    try:
        assert client.get("/demo-system/messages").status_code == 404
    finally:
        app.config["NOTIFIER"] = "outbox"
    app.config["DEMO_DATA_ENABLED"] = False
    try:
        assert client.get("/demo-system/messages").status_code == 404
    finally:
        app.config["DEMO_DATA_ENABLED"] = True


def test_reception_sees_where_messages_stand_without_their_text(
    client: Any, sign_in: Any, app: Any, demo_accounts: Any
) -> None:
    from tests.helpers import FormClient
    from tests.helpers import sign_in as sign_in_as

    sign_in(PATIENT)
    client.submit("/account/contact/mobile", {"mo-mobile": "07700 900123"}, page="/account/contact")
    staff = [a["email"] for a in demo_accounts if a["email"].startswith("reception")]
    assert staff, [a["email"] for a in demo_accounts]
    desk = FormClient(app.test_client())
    sign_in_as(desk, staff[0])
    page = text(desk.get("/reception/messages"))
    assert "Messages to patients" in page and "Text to 07… 123" in page
    assert "Your Patient Online code is" not in page and "07700 900123" not in page
    assert desk.get("/reception/messages?status=failed").status_code == 200
