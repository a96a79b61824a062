"""NHS login in a real browser against the local stand-in provider: a P9 person whose NHS number and birth
date match a linked GP record signs into that account and sees the record; someone at P5 or P0 who only shares
its email address gets an account of their own with no record; a provider in trouble gives a clear page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.oidc_provider import FakeNHSLogin, new_rsa_pem
from tests.system.servers import free_port, gateway_env, gunicorn, prepare_database

from .conftest import screenshot

pytestmark = pytest.mark.browser

CLIENT_ID = "patient-online-e2e"
OWNER_EMAIL = "patient.y02001@example.com"


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeNHSLogin]:
    private, public = new_rsa_pem()
    op = FakeNHSLogin(CLIENT_ID, public)
    op.client_private_pem = private  # type: ignore[attr-defined]
    yield op
    op.stop()


@pytest.fixture(scope="module")
def nhs_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('e2e-nhs-login') / 'gateway.sqlite3'}"


@pytest.fixture(scope="module")
def nhs_server(provider: FakeNHSLogin, nhs_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gateway under gunicorn with NHS login pointed at the stand-in (vtr given as a JSON list)."""
    key = tmp_path_factory.mktemp("e2e-nhs-login-key") / "client.pem"
    key.write_text(provider.client_private_pem)  # type: ignore[attr-defined]
    port = free_port()
    env = gateway_env(
        nhs_database,
        PATIENT_ONLINE_NHS_LOGIN_ISSUER=provider.issuer,
        PATIENT_ONLINE_NHS_LOGIN_CLIENT_ID=CLIENT_ID,
        PATIENT_ONLINE_NHS_LOGIN_PRIVATE_KEY_PATH=str(key),
        PATIENT_ONLINE_NHS_LOGIN_REDIRECT_URI=f"http://127.0.0.1:{port}/login/nhs/callback",
        PATIENT_ONLINE_NHS_LOGIN_VTR='["P9.Cp.Cd","P9.Cp.Ck","P9.Cm","P5.Cp.Cd","P5.Cp.Ck","P5.Cm","P0.Cp.Cd"]',
    )
    prepare_database(env)
    with gunicorn(env, workers=1, threads=4, port=port) as base:
        yield base


@pytest.fixture
def tab(browser: Any, nhs_server: str) -> Iterator[Any]:
    context = browser.new_context(base_url=nhs_server, viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def linked_record(database_url: str, email: str) -> dict[str, Any]:
    """The GP record the demo account with this email is linked to, as the gateway holds it."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        row = (
            conn.execute(
                text(
                    "SELECT p.nhs_number, p.date_of_birth, p.given_name, p.family_name FROM patient p "
                    "JOIN account_link l ON l.patient_id = p.id JOIN user_account u ON u.id = l.user_id "
                    "WHERE u.email = :email"
                ),
                {"email": email},
            )
            .mappings()
            .one()
        )
    engine.dispose()
    return dict(row)


def account_with_sub(database_url: str, sub: str) -> str | None:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        email = conn.execute(text("SELECT email FROM user_account WHERE nhs_login_sub = :s"), {"s": sub}).scalar()
    engine.dispose()
    return str(email) if email is not None else None


def identity(record: dict[str, Any], level: str, email: str) -> dict[str, Any]:
    return {
        "identity_proofing_level": level,
        "nhs_number": record["nhs_number"],
        "birthdate": str(record["date_of_birth"]),
        "given_name": record["given_name"],
        "family_name": record["family_name"],
        "email": email,
        "email_verified": True,
        "gp_registration_details": {"gp_ods_code": "Y02001"},
    }


def test_p9_with_the_records_nhs_number_signs_into_the_linked_account_and_sees_the_record(
    tab: Any, provider: FakeNHSLogin, nhs_database: str
) -> None:
    record = linked_record(nhs_database, OWNER_EMAIL)
    provider.set_identity(**identity(record, "P9", "a.different.address@example.com"))
    tab.goto("/login")
    tab.click("a:has-text('Continue with NHS login')")
    assert f"Hello {record['given_name']}" in tab.inner_text("h1")
    tab.goto("/record")
    assert "Your GP health record" in tab.title()
    screenshot(tab, "nhs-login-p9-bound-record")
    assert account_with_sub(nhs_database, provider.identity["sub"]) == OWNER_EMAIL


@pytest.mark.parametrize("level", ["P5", "P0"])
def test_below_p9_with_the_same_email_gets_a_separate_account_and_no_record(
    tab: Any, provider: FakeNHSLogin, nhs_database: str, level: str
) -> None:
    record = linked_record(nhs_database, OWNER_EMAIL)
    provider.set_identity(**identity(record, level, OWNER_EMAIL))
    tab.goto("/login/nhs")
    assert "We made a separate account for this NHS login" in tab.inner_text("h1")
    screenshot(tab, f"nhs-login-separate-account-{level.lower()}")
    tab.click("a:has-text('Continue')")
    assert "Welcome to Patient Online" in tab.inner_text("h1")
    assert tab.locator("main a:has-text('Link your account to your GP record')").count() == 1
    assert f"Hello {record['given_name']}" not in tab.inner_text("main")
    tab.goto("/record")
    assert "Your GP health record" not in tab.title()
    separate = account_with_sub(nhs_database, provider.identity["sub"])
    assert separate is not None and separate != OWNER_EMAIL


def test_a_provider_in_trouble_gives_a_clear_page(tab: Any, provider: FakeNHSLogin, nhs_database: str) -> None:
    record = linked_record(nhs_database, OWNER_EMAIL)
    provider.set_identity(**identity(record, "P9", "a.different.address@example.com"))
    provider.fail_status, provider.fail_only = 503, ("/token",)
    try:
        response = tab.goto("/login/nhs")
    finally:
        provider.fail_status, provider.fail_only = None, ()
    assert response.status == 503
    assert "NHS login is not available at the moment" in tab.inner_text("h1")
    assert "sign in with your email address and password" in tab.inner_text("main")
    screenshot(tab, "nhs-login-unavailable")


def test_a_record_already_bound_to_another_nhs_login_is_explained(
    tab: Any, provider: FakeNHSLogin, nhs_database: str
) -> None:
    """Runs after the P9 test above bound the owner's account: a second P9 NHS login for the same record."""
    record = linked_record(nhs_database, OWNER_EMAIL)
    provider.set_identity(**identity(record, "P9", "yet.another.address@example.com"))
    response = tab.goto("/login/nhs")
    assert response.status == 409
    assert "already connected to a different NHS login" in tab.inner_text("h1")
    screenshot(tab, "nhs-login-record-bound-elsewhere")
    assert account_with_sub(nhs_database, provider.identity["sub"]) is None
