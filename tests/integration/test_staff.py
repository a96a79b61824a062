"""Staff accounts: created from the command line or by a practice manager, always with an authenticator."""

from __future__ import annotations

import re
from typing import Any

import pyotp
from sqlalchemy import select

from patient_online.models import StaffMembership, User
from tests.helpers import FormClient


def test_staff_create_command_makes_the_first_admin(app: Any, session: Any) -> None:
    result = app.test_cli_runner().invoke(
        args=["staff", "create", "--email", "first.admin@example.com", "--password", "sturdy-lantern-mosaic-7"]
    )
    assert result.exit_code == 0, result.output
    user = session.scalar(select(User).where(User.email == "first.admin@example.com"))
    assert user.is_system_admin and user.is_staff and user.totp_enrolled_at is None
    assert user.must_change_password  # the password was typed by whoever ran the command


def test_manager_adds_a_receptionist_who_must_enrol_an_authenticator(
    app: Any, client: Any, session: Any, sign_in: Any
) -> None:
    sign_in("manager.y02001@example.com")
    missing = client.submit("/manage/staff", {"email": "new.receptionist@example.com", "role": "receptionist"})
    assert "Enter a temporary password" in missing.get_data(as_text=True)
    added = client.submit(
        "/manage/staff",
        {
            "email": "new.receptionist@example.com",
            "name": "Sam Lee",
            "role": "receptionist",
            "password": "sturdy-lantern-mosaic-7",
        },
    )
    assert added.headers["Location"].endswith("/manage/staff")

    newcomer = FormClient(app.test_client())
    first = newcomer.submit("/login", {"email": "new.receptionist@example.com", "password": "sturdy-lantern-mosaic-7"})
    assert first.headers["Location"].endswith("/login/setup")
    setup = newcomer.get("/login/setup").get_data(as_text=True)
    assert "Send me codes by email" not in setup  # staff must use an app
    secret = re.search(r'class="app-secret">([A-Z2-7]+)<', setup).group(1)
    done = newcomer.submit("/login/setup", {"code": pyotp.TOTP(secret).now()})
    assert done.headers["Location"].endswith("/reception/")
    # The temporary password is changed before anything else.
    assert newcomer.get("/reception/").headers["Location"].endswith("/login/new-password")
    changed = newcomer.submit(
        "/login/new-password",
        {"current_password": "sturdy-lantern-mosaic-7", "password": "own-quiet-harbour-82"},
    )
    assert changed.headers["Location"].endswith("/reception/")
    assert newcomer.get("/reception/").status_code == 200
    assert newcomer.get("/manage/").status_code == 403
    user = session.scalar(select(User).where(User.email == "new.receptionist@example.com"))
    assert not user.must_change_password


def test_manager_removes_a_role_but_not_their_own(client: Any, session: Any, sign_in: Any) -> None:
    sign_in("manager.y02001@example.com")
    rows = session.scalars(select(StaffMembership).join(StaffMembership.user)).all()
    own = next(m for m in rows if m.user.email == "manager.y02001@example.com")
    theirs = next(m for m in rows if m.user.email == "reception.y02001@example.com")
    client.submit(f"/manage/staff/{own.id}/remove", {}, page="/manage/staff")
    assert session.get(StaffMembership, own.id) is not None
    client.submit(f"/manage/staff/{theirs.id}/remove", {}, page="/manage/staff")
    assert session.get(StaffMembership, theirs.id) is None


def test_a_manager_cannot_remove_staff_of_another_practice(client: Any, session: Any, sign_in: Any) -> None:
    sign_in("manager.y02001@example.com")
    other = session.scalar(
        select(StaffMembership).join(StaffMembership.user).where(User.email == "reception.y02002@example.com")
    )
    client.submit(f"/manage/staff/{other.id}/remove", {}, page="/manage/staff")
    assert session.get(StaffMembership, other.id) is not None


def _add(client: Any, email: str, password: str = "") -> str:
    data = {"email": email, "name": "Sam Lee", "role": "receptionist", "password": password}
    response = client.submit("/manage/staff", data)
    assert response.status_code == 200
    page = re.sub(r'name="csrf_token"[^>]*>', "", response.get_data(as_text=True))
    page = re.sub(r'data-seconds-left="\d+"', "", page)  # the sign-out countdown moves on while the test runs
    return page.replace(email, "EMAIL")


def test_the_staff_form_does_not_say_whether_an_email_is_a_patients(client: Any, sign_in: Any) -> None:
    sign_in("manager.y02001@example.com")
    patient, staff_elsewhere = "patient.y02001@example.com", "reception.y02002@example.com"
    nobody = "not.yet.staff@example.com"
    # Without a temporary password: the same answer as for an address nobody uses.
    assert _add(client, patient) == _add(client, nobody)
    # With one: the same answer for any address in use, patient or staff elsewhere, that never says which.
    in_use = _add(client, patient, "sturdy-lantern-mosaic-7")
    assert in_use == _add(client, staff_elsewhere, "sturdy-lantern-mosaic-7")
    assert "You cannot use this email address for a new staff account" in in_use
    assert "patient" not in in_use.lower().split("<main", 1)[1].split("<table", 1)[0]


def test_a_manager_still_adds_a_role_to_someone_on_their_staff(client: Any, session: Any, sign_in: Any) -> None:
    sign_in("manager.y02001@example.com")
    response = client.submit("/manage/staff", {"email": "reception.y02001@example.com", "role": "practice_manager"})
    assert response.headers["Location"].endswith("/manage/staff")
    user = session.scalar(select(User).where(User.email == "reception.y02001@example.com"))
    session.refresh(user)
    assert {m.role for m in user.memberships} == {"receptionist", "practice_manager"}


def test_an_admin_made_from_the_command_line_changes_the_password_first(app: Any, session: Any) -> None:
    password = "sturdy-lantern-mosaic-7"
    app.test_cli_runner().invoke(
        args=["staff", "create", "--email", "second.admin@example.com", "--password", password]
    )
    admin = FormClient(app.test_client())
    admin.submit("/login", {"email": "second.admin@example.com", "password": password})
    secret = re.search(r'class="app-secret">([A-Z2-7]+)<', admin.get("/login/setup").get_data(as_text=True)).group(1)
    admin.submit("/login/setup", {"code": pyotp.TOTP(secret).now()})
    assert admin.get("/admin/practices").headers["Location"].endswith("/login/new-password")
    page = admin.get("/login/new-password").get_data(as_text=True)
    assert "Choose your own password" in page and "Temporary password" in page
