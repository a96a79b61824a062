"""Patient accounts end to end through the Flask client (CSRF on): register, confirm, second factor,
sign in and out, reset and change credentials, session limits, rate limits, no account enumeration."""

from __future__ import annotations

import datetime as dt
import re
import statistics
import time
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from patient_online.adapters.demo.seed import _totp_secret
from patient_online.models import AuditEvent, Notification, User
from tests.helpers import FormClient

PASSWORD = "purple-kettle-orbit-42"


def latest_code(session: Any, to: str) -> str:
    note = session.scalars(select(Notification).where(Notification.to == to).order_by(Notification.id.desc())).first()
    assert note is not None, f"no message sent to {to}"
    found = re.search(r"\b(\d{6})\b", note.body)
    assert found, note.body
    return found.group(1)


def register(client: Any, session: Any, email: str, second_factor: str = "email") -> None:
    response = client.submit("/register", {"email": email, "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"].endswith("/register/confirm")
    response = client.submit("/register/confirm", {"code": latest_code(session, email)})
    assert response.headers["Location"].endswith("/login/setup")
    if second_factor == "email":
        response = client.submit("/login/setup", {"second_factor": "email"})
        assert response.headers["Location"].endswith("/login/code")
        response = client.submit("/login/code", {"code": latest_code(session, email)})
        assert response.headers["Location"].endswith("/home")


def test_register_confirm_and_choose_email_codes(client: Any, session: Any) -> None:
    register(client, session, "new.person@example.com")
    page = client.get("/home").get_data(as_text=True)
    assert "Link your account to your GP record" in page
    user = session.scalar(select(User).where(User.email == "new.person@example.com"))
    assert user.email_confirmed_at is not None and user.second_factor == "email"
    assert user.password_hash.startswith("$argon2")


def test_register_with_authenticator_app(client: Any, session: Any) -> None:
    client.submit("/register", {"email": "app.user@example.com", "password": PASSWORD})
    client.submit("/register/confirm", {"code": latest_code(session, "app.user@example.com")})
    page = client.get("/login/setup").get_data(as_text=True)
    secret = re.search(r'class="app-secret">([A-Z2-7]+)<', page).group(1)
    wrong = client.submit("/login/setup", {"code": "000000"})
    assert wrong.status_code == 200 and "The code is not correct" in wrong.get_data(as_text=True)
    response = client.submit("/login/setup", {"code": pyotp.TOTP(secret).now()})
    assert response.headers["Location"].endswith("/home")


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "10 characters or more"),
        ("password1234", "too easy to guess"),
        ("qwertyuiopasdf", "too easy to guess"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(client: Any, password: str, message: str) -> None:
    response = client.submit("/register", {"email": "weak@example.com", "password": password})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and message in page
    assert 'value="weak@example.com"' in page  # nothing typed is lost


def test_registering_an_existing_email_reveals_nothing(client: Any, session: Any) -> None:
    response = client.submit("/register", {"email": "patient.y02001@example.com", "password": PASSWORD})
    assert response.headers["Location"].endswith("/register/confirm")
    page = client.get("/register/confirm").get_data(as_text=True)
    assert "We have sent a 6-digit security code" in page
    warning = session.scalars(select(Notification).where(Notification.to == "patient.y02001@example.com")).all()
    assert any(n.template == "register_existing" for n in warning)


def test_wrong_password_and_unknown_email_get_the_same_answer(client: Any) -> None:
    unknown = client.submit("/login", {"email": "nobody@example.com", "password": PASSWORD})
    wrong = client.submit("/login", {"email": "patient.y02001@example.com", "password": PASSWORD})
    assert unknown.status_code == wrong.status_code == 200
    assert "Enter a correct email address and password" in unknown.get_data(as_text=True)
    assert "Enter a correct email address and password" in wrong.get_data(as_text=True)


def test_password_reset_request_reveals_nothing(client: Any, session: Any) -> None:
    for email in ("nobody@example.com", "patient.y02001@example.com"):
        response = client.submit("/reset-password", {"email": email})
        assert response.headers["Location"].endswith("/reset-password/new")
    code = latest_code(session, "patient.y02001@example.com")
    response = client.submit(
        "/reset-password/new", {"email": "patient.y02001@example.com", "code": code, "password": PASSWORD}
    )
    assert response.headers["Location"].endswith("/login")
    first = client.submit("/login", {"email": "patient.y02001@example.com", "password": PASSWORD})
    assert first.headers["Location"].endswith("/login/code")


def test_wrong_second_factor_is_refused_and_audited(client: Any, session: Any) -> None:
    client.submit("/login", {"email": "patient.y02001@example.com", "password": "Demo-gateway-2026!"})
    response = client.submit("/login/code", {"code": wrong_code("patient.y02001@example.com")})
    assert response.status_code == 200 and "not correct" in response.get_data(as_text=True)
    assert client.get("/home").status_code == 302
    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id.desc()).limit(3)).all()
    assert "sign_in.failed" in actions


def test_sign_in_is_rate_limited_with_a_time_to_wait(client: Any) -> None:
    for _ in range(10):
        client.submit("/login", {"email": "patient.y02001@example.com", "password": "wrong-password-123"})
    response = client.submit("/login", {"email": "patient.y02001@example.com", "password": "Demo-gateway-2026!"})
    assert response.status_code == 429
    assert "Try again in" in response.get_data(as_text=True)


def test_limits_do_not_lock_the_owner_out_from_another_address(client: Any) -> None:
    for n in range(10):
        client.raw.environ_base["REMOTE_ADDR"] = f"127.0.0.{n + 2}"
        client.submit("/login", {"email": "patient2.y02001@example.com", "password": "wrong-password-123"})
    client.raw.environ_base["REMOTE_ADDR"] = "127.0.0.99"
    response = client.submit("/login", {"email": "patient2.y02001@example.com", "password": "Demo-gateway-2026!"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/login/code")


def test_sign_out_ends_every_session_of_the_account(app: Any, client: Any, sign_in: Any) -> None:
    from tests.helpers import FormClient
    from tests.helpers import sign_in as other_sign_in

    other = FormClient(app.test_client())
    other_sign_in(other, "patient.y02001@example.com")
    sign_in("patient.y02001@example.com")
    assert other.get("/home").status_code == 200
    client.submit("/logout", {}, page="/home")
    assert client.get("/home").status_code == 302
    assert other.get("/home").status_code == 302  # signed out there too


def test_changing_password_ends_other_sessions_but_not_this_one(app: Any, client: Any, sign_in: Any) -> None:
    from tests.helpers import FormClient
    from tests.helpers import sign_in as other_sign_in

    other = FormClient(app.test_client())
    other_sign_in(other, "patient.y02001@example.com")
    sign_in("patient.y02001@example.com")
    response = client.submit(
        "/account/password", {"pw-current_password": "Demo-gateway-2026!", "pw-password": PASSWORD}, page="/account"
    )
    assert response.headers["Location"].endswith("/account")
    assert client.get("/home").status_code == 200
    assert other.get("/home").status_code == 302


def test_change_email_needs_a_code_sent_to_the_new_address(client: Any, session: Any, sign_in: Any) -> None:
    sign_in("patient.y02001@example.com")
    client.submit(
        "/account/email",
        {"em-email": "aisha.new@example.com", "em-current_password": "Demo-gateway-2026!"},
        page="/account",
    )
    code = latest_code(session, "aisha.new@example.com")
    response = client.submit("/account/email/confirm", {"ec-code": code}, page="/account")
    assert response.headers["Location"].endswith("/account")
    assert "aisha.new@example.com" in client.get("/account").get_data(as_text=True)


def test_activity_page_shows_the_patients_own_events(client: Any, sign_in: Any) -> None:
    sign_in("patient.y02001@example.com")
    page = client.get("/account/activity").get_data(as_text=True)
    assert "You signed in" in page


# Credentials (issue 18) ----------------------------------------------------------------------------------------
def wrong_code(email: str) -> str:
    """A 6-digit code that is none of the account's codes in the accepted window."""
    totp = pyotp.TOTP(_totp_secret(email))
    now = totp.timecode(dt.datetime.now(dt.UTC))
    window = {totp.generate_otp(step) for step in range(now - 2, now + 3)}
    return next(c for c in ("123456", "654321", "111111") if c not in window)


def page_text(response: Any) -> str:
    """The page without its CSRF token (different for every session)."""
    return re.sub(r'name="csrf_token"[^>]*>', "", response.get_data(as_text=True))


def test_the_reset_page_answers_known_and_unknown_emails_alike(app: Any, client: Any) -> None:
    def answer(email: str, code: str, password: str) -> str:
        visitor = FormClient(app.test_client())
        visitor.submit("/reset-password", {"email": email})
        response = visitor.submit("/reset-password/new", {"email": email, "code": code, "password": password})
        assert response.status_code == 200
        return page_text(response).replace(email, "EMAIL")

    known, unknown = "patient.y02001@example.com", "nobody.here@example.com"
    assert answer(known, "123456", PASSWORD) == answer(unknown, "123456", PASSWORD)
    assert "not correct or has expired" in answer(known, "123456", PASSWORD)
    assert answer(known, "123456", "password1234") == answer(unknown, "123456", "password1234")
    assert "too easy to guess" in answer(unknown, "123456", "password1234")


def test_registering_takes_the_same_work_for_a_new_and_an_existing_email(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from patient_online.crypto import hash_password as real
    from patient_online.services import accounts

    hashed: list[str] = []

    def counting(password: str) -> str:
        hashed.append(password)
        return real(password)

    monkeypatch.setattr(accounts, "hash_password", counting)
    timings: dict[str, list[float]] = {"existing": [], "new": []}
    for n in range(3):
        for kind, email in (("existing", "patient.y02001@example.com"), ("new", f"someone.new{n}@example.com")):
            token = client.csrf_token("/register")
            start = time.perf_counter()
            response = client.raw.post("/register", data={"email": email, "password": PASSWORD, "csrf_token": token})
            timings[kind].append(time.perf_counter() - start)
            assert response.headers["Location"].endswith("/register/confirm")
    assert len(hashed) == 6  # one costly hash per registration, whichever the email
    # Coarse: before the change an existing email was answered about twenty times faster than a new one.
    assert statistics.median(timings["existing"]) > statistics.median(timings["new"]) / 3


def test_changing_the_email_needs_the_password_and_signs_out_everywhere_else(
    app: Any, client: Any, session: Any, sign_in: Any
) -> None:
    from tests.helpers import sign_in as other_sign_in

    other = FormClient(app.test_client())
    other_sign_in(other, "patient.y02001@example.com")
    sign_in("patient.y02001@example.com")
    refused = client.submit(
        "/account/email",
        {"em-email": "aisha.new@example.com", "em-current_password": "not-my-password-1"},
        page="/account",
    )
    assert refused.status_code == 200 and "Your current password is not correct" in refused.get_data(as_text=True)
    assert not session.scalars(select(Notification).where(Notification.to == "aisha.new@example.com")).all()
    client.submit(
        "/account/email",
        {"em-email": "aisha.new@example.com", "em-current_password": "Demo-gateway-2026!"},
        page="/account",
    )
    code = latest_code(session, "aisha.new@example.com")
    assert other.get("/home").status_code == 200
    client.submit("/account/email/confirm", {"ec-code": code}, page="/account")
    assert client.get("/home").status_code == 200  # this browser carries on
    assert other.get("/home").status_code == 302  # the other session has ended
    told = session.scalars(
        select(Notification).where(Notification.to == "patient.y02001@example.com").order_by(Notification.id.desc())
    ).first()
    assert told is not None and told.template == "email_changed"
    actions = session.scalars(select(AuditEvent.action)).all()
    assert {"account.email_change_requested", "account.email_changed"} <= set(actions)


def test_a_session_left_open_cannot_guess_the_password_on_the_account_page(client: Any, sign_in: Any) -> None:
    sign_in("patient.y02001@example.com")
    data = {"em-email": "aisha.new@example.com", "em-current_password": "not-my-password-1"}
    answers = [client.submit("/account/email", data, page="/account").status_code for _ in range(6)]
    assert answers == [200] * 5 + [429]
