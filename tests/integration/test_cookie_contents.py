"""The session cookie is signed, not encrypted: anyone holding it can read it. Nothing personal or secret may
be in it, so these tests decode it as an attacker would (with the app's own serializer, no key needed to read)
after the pages that used to put health data or a linkage key there."""

from __future__ import annotations

import json
import re
from typing import Any

from patient_online.models import HeldValue
from tests.helpers import FormClient
from tests.helpers import sign_in as do_sign_in

# Sign-in bookkeeping, the form token, the staff member's chosen practice, and held-value tokens: nothing else.
ALLOWED_KEYS = {
    "_user_id",
    "_fresh",
    "_id",
    "_permanent",
    "epoch",
    "auth_at",
    "seen_at",
    "csrf_token",
    "practice_id",
    "held",
    "_flashes",
}
MEDICINE = re.compile(r'class="nhsuk-label nhsuk-checkboxes__label" for="items-\d+">([^<]+)<')


def cookie_contents(app: Any, client: Any) -> dict[str, Any]:
    """What the browser holds in the session cookie, decoded the way the app reads it."""
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    data: dict[str, Any] = app.session_interface.get_signing_serializer(app).loads(cookie.value)
    return data


def test_the_order_form_keeps_the_offered_medicines_on_the_server(app: Any, session: Any) -> None:
    client = FormClient(app.test_client())
    do_sign_in(client, "patient.y02001@example.com")
    page = client.get("/prescriptions/order").get_data(as_text=True)
    medicines = MEDICINE.findall(page)
    assert medicines, "the demo patient has medicines to order"
    contents = cookie_contents(app, client.raw)
    dumped = json.dumps(contents)
    assert "rx_offered" not in contents and set(contents) <= ALLOWED_KEYS, contents
    for name in medicines:
        assert name not in dumped and name.split()[0] not in dumped
    # What the form offered is on the server, found only through the random token the cookie holds.
    assert session.query(HeldValue).filter(HeldValue.purpose == "rx_offered").count() == 1


def test_issuing_a_letter_keeps_the_linkage_key_off_the_cookie(app: Any) -> None:
    staff = FormClient(app.test_client())
    do_sign_in(staff, "reception.y02001@example.com")
    found = staff.get("/reception/patients?q=999+001+0145").get_data(as_text=True)
    patient_id = int(re.search(r"/reception/patients/(\d+)", found).group(1))  # type: ignore[union-attr]
    issued = staff.submit(
        f"/reception/patients/{patient_id}/letter",
        {"check-method": "documents", "check-documents": ["passport", "council_tax"]},
        page=f"/reception/patients/{patient_id}/letter/new",
    )
    assert issued.status_code == 302
    held = cookie_contents(app, staff.raw)  # between issuing and printing: the key is waiting
    assert "letter_key" not in held and set(held) <= ALLOWED_KEYS, held
    letter = staff.get(issued.headers["Location"]).get_data(as_text=True)
    key = re.search(r'class="app-secret">([A-Z0-9-]+)<', letter).group(1)  # type: ignore[union-attr]
    for moment in (held, cookie_contents(app, staff.raw)):
        dumped = json.dumps(moment)
        assert key not in dumped and key.replace("-", "") not in dumped


def test_registering_and_resetting_keep_the_email_address_off_the_cookie(app: Any) -> None:
    client = FormClient(app.test_client())
    email = "cookie.reader@example.com"
    client.submit("/register", {"email": email, "password": "A-long-password-2026", "mobile": ""})
    assert email not in json.dumps(cookie_contents(app, client.raw))
    # The confirmation page still knows where the code went.
    assert email in client.get("/register/confirm").get_data(as_text=True)

    other = FormClient(app.test_client())
    other.submit("/reset-password", {"email": email})
    assert email not in json.dumps(cookie_contents(app, other.raw))
    assert email in other.get("/reset-password/new").get_data(as_text=True)
