"""Signing in: password, then a second factor, for every audience; sessions end when they should."""

from __future__ import annotations

import re
import time
from typing import Any

import limits.storage.memory
import pytest
from sqlalchemy import select

from patient_online.adapters.demo.seed import DEMO_PASSWORD
from patient_online.models import Notification, User
from tests.helpers import FormClient, sign_in, totp_now


@pytest.mark.parametrize(
    ("email", "landing"),
    [
        ("patient.y02001@example.com", "/home"),
        ("reception.y02001@example.com", "/reception/"),
        ("manager.y02001@example.com", "/manage/"),
        ("admin@example.com", "/admin/practices"),
    ],
)
def test_each_audience_signs_in_and_lands_on_its_pages(client: Any, sign_in: Any, email: str, landing: str) -> None:
    response = sign_in(email)
    assert response.headers["Location"].endswith(landing)
    assert client.get(landing).status_code == 200


def test_a_page_between_refreshes_sends_no_new_session_cookie(client: Any, sign_in: Any) -> None:
    sign_in("patient.y02001@example.com")
    client.get("/home")
    assert "Set-Cookie" not in client.get("/home").headers  # the idle clock was noted under a minute ago


# Credentials (issue 18) ----------------------------------------------------------------------------------------
PATIENT = "patient.y02001@example.com"
WRONG = "wrong-password-123"


def page_text(response: Any) -> str:
    """The page without its CSRF token (different for every session)."""
    return re.sub(r'name="csrf_token"[^>]*>', "", response.get_data(as_text=True))


def _new_client(app: Any, address: str = "127.0.0.1") -> FormClient:
    client = FormClient(app.test_client())
    client.raw.environ_base["REMOTE_ADDR"] = address
    return client


def test_an_authenticator_code_signs_in_only_once(app: Any, client: Any) -> None:
    code = totp_now(PATIENT, app)
    client.submit("/login", {"email": PATIENT, "password": DEMO_PASSWORD})
    assert client.submit("/login/code", {"code": code}).status_code == 302
    onlooker = _new_client(app, "198.51.100.7")  # saw the code over a shoulder, and knows the password
    onlooker.submit("/login", {"email": PATIENT, "password": DEMO_PASSWORD})
    again = onlooker.submit("/login/code", {"code": code})
    assert again.status_code == 200 and "not correct" in again.get_data(as_text=True)
    assert onlooker.get("/home").status_code == 302


def test_ten_wrong_passwords_from_one_address_do_not_keep_the_owner_out(app: Any) -> None:
    attacker = _new_client(app, "198.51.100.20")
    answers = [attacker.submit("/login", {"email": PATIENT, "password": WRONG}).status_code for _ in range(10)]
    assert answers[:3] == [200, 200, 200] and set(answers[3:]) == {429}  # that address waits, nobody else
    owner = _new_client(app, "203.0.113.9")
    assert sign_in(owner, PATIENT).headers["Location"].endswith("/home")


def test_wrong_passwords_from_anywhere_guard_the_account_but_the_owner_gets_in(app: Any) -> None:
    for n in range(10):
        _new_client(app, f"198.51.100.{n + 30}").submit("/login", {"email": PATIENT, "password": WRONG})
    guesser = _new_client(app, "198.51.100.99")
    guess = guesser.submit("/login", {"email": PATIENT, "password": WRONG})
    owner = _new_client(app, "203.0.113.10")
    right = owner.submit("/login", {"email": PATIENT, "password": DEMO_PASSWORD})
    # The password step no longer tells a right password from a wrong one ...
    assert guess.status_code == right.status_code == 302
    assert guess.headers["Location"] == right.headers["Location"]
    assert page_text(guesser.get("/login/code")) == page_text(owner.get("/login/code"))
    refused = guesser.submit("/login/code", {"code": totp_now(PATIENT, app)})
    assert refused.headers["Location"].endswith("/login")
    assert "password or security code is not correct" in guesser.get("/login").get_data(as_text=True)
    assert guesser.get("/home").status_code == 302
    # ... and the owner, with the password and the code, signs in.
    done = owner.submit("/login/code", {"code": totp_now(PATIENT, app)})
    assert done.headers["Location"].endswith("/home") and owner.get("/home").status_code == 200


def test_the_owner_signing_in_or_resetting_ends_the_guard(app: Any, session: Any) -> None:
    for n in range(10):
        _new_client(app, f"198.51.100.{n + 40}").submit("/login", {"email": PATIENT, "password": WRONG})
    owner = _new_client(app, "203.0.113.11")
    owner.submit("/reset-password", {"email": PATIENT})
    note = session.scalars(select(Notification).where(Notification.to == PATIENT).order_by(Notification.id.desc()))
    code = re.search(r"\b(\d{6})\b", note.first().body).group(1)
    reset = owner.submit("/reset-password/new", {"email": PATIENT, "code": code, "password": "new-lantern-mosaic-71"})
    assert reset.headers["Location"].endswith("/login")
    wrong = _new_client(app, "198.51.100.60").submit("/login", {"email": PATIENT, "password": WRONG})
    assert wrong.status_code == 200 and "Enter a correct email address and password" in wrong.get_data(as_text=True)


def test_the_wait_grows_with_each_failure_from_an_address(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = {"offset": 0.0}

    class ShiftedTime:
        @staticmethod
        def time() -> float:
            return time.time() + clock["offset"]

    monkeypatch.setattr(limits.storage.memory, "time", ShiftedTime)
    attacker = _new_client(app, "198.51.100.70")

    def attempt() -> int:
        return int(attacker.submit("/login", {"email": PATIENT, "password": WRONG}).status_code)

    assert [attempt() for _ in range(4)] == [200, 200, 200, 429]  # three failures: wait a minute
    clock["offset"] = 61
    assert [attempt() for _ in range(4)] == [200, 200, 200, 429]  # six failures: wait ten minutes
    clock["offset"] = 122
    assert attempt() == 429  # a minute is no longer enough
    clock["offset"] = 61 + 601
    assert attempt() == 200


def test_a_trusted_shared_address_has_a_higher_limit(app: Any) -> None:
    app.config["TRUSTED_NETWORKS"] = "10.20.0.0/16, 2001:db8::/64"

    def eleven_people_mistype(address: str) -> list[int]:
        desk = _new_client(app, address)
        emails = [f"person{n}@example.com" for n in range(11)]
        return [desk.submit("/login", {"email": e, "password": WRONG}).status_code for e in emails]

    assert eleven_people_mistype("10.20.3.4")[-1] == 200  # a practice's front desk
    assert eleven_people_mistype("198.51.100.80")[-1] == 429  # anywhere else


def test_staff_reach_no_page_until_a_temporary_password_is_changed(app: Any, client: Any, session: Any) -> None:
    user = session.scalar(select(User).where(User.email == "reception.y02001@example.com"))
    user.must_change_password = True
    session.commit()
    response = sign_in(client, "reception.y02001@example.com")
    landing = client.get(response.headers["Location"])
    assert landing.status_code == 302, landing.get_data(as_text=True)[:3000]
    assert landing.headers["Location"].endswith("/login/new-password")
    for page in ("/reception/", "/reception/patients"):
        assert client.get(page).headers["Location"].endswith("/login/new-password")
    same = client.submit("/login/new-password", {"current_password": DEMO_PASSWORD, "password": DEMO_PASSWORD})
    assert same.status_code == 200 and "different from your current one" in same.get_data(as_text=True)
    done = client.submit(
        "/login/new-password", {"current_password": DEMO_PASSWORD, "password": "sturdy-lantern-mosaic-8"}
    )
    assert done.status_code == 302, done.get_data(as_text=True)[-3000:]
    assert done.headers["Location"].endswith("/reception/")
    assert client.get("/reception/").status_code == 200
