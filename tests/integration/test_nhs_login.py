"""NHS login: the whole OpenID Connect flow against a local provider, including tampered tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from patient_online.adapters.demo.models import DemoPatient
from patient_online.models import AccountLink, AuditEvent, User, Verification
from tests.oidc_provider import TAMPERING, FakeNHSLogin, new_rsa_pem

CLIENT_ID = "patient-online-test"


@pytest.fixture(scope="module")
def client_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    private, public = new_rsa_pem()
    path = tmp_path_factory.mktemp("keys") / "client.pem"
    path.write_text(private)
    return path, public


@pytest.fixture
def provider(client_key: tuple[Path, str]) -> Iterator[FakeNHSLogin]:
    op = FakeNHSLogin(CLIENT_ID, client_key[1])
    yield op
    op.stop()


@pytest.fixture
def settings(provider: FakeNHSLogin, client_key: tuple[Path, str]) -> dict[str, Any]:
    return {
        "NHS_LOGIN_ISSUER": provider.issuer,
        "NHS_LOGIN_CLIENT_ID": CLIENT_ID,
        "NHS_LOGIN_PRIVATE_KEY_PATH": str(client_key[0]),
        "NHS_LOGIN_REDIRECT_URI": "http://localhost/login/nhs/callback",
    }


def nhs_login(client: Any) -> Any:
    """Follow the browser's path: gateway -> provider -> back to the gateway's callback."""
    start = client.get("/login/nhs")
    assert start.status_code == 302, start.get_data(as_text=True)[:300]
    back = httpx.get(start.headers["Location"], follow_redirects=False)
    assert back.status_code == 302
    return client.get(back.headers["Location"].removeprefix("http://localhost"))


def demo(session: Any, nhs: str) -> DemoPatient:
    return session.scalar(select(DemoPatient).where(DemoPatient.nhs_number == nhs))


def identity_for(person: DemoPatient, level: str = "P9", **extra: Any) -> dict[str, Any]:
    return {
        "identity_proofing_level": level,
        "nhs_number": person.nhs_number,
        "birthdate": person.date_of_birth.isoformat(),
        "family_name": person.family_name,
        "given_name": person.given_name,
        "email": f"{person.given_name.lower()}.nhslogin@example.com",
        "email_verified": True,
        "gp_registration_details": {"gp_ods_code": person.practice_ods},
        **extra,
    }


def test_p9_identity_is_linked_and_verified(client: Any, session: Any, provider: FakeNHSLogin) -> None:
    person = demo(session, "9990010145")
    provider.set_identity(**identity_for(person))
    response = nhs_login(client)
    assert response.headers["Location"].endswith("/home")
    assert f"Hello {person.given_name}" in client.get("/home").get_data(as_text=True)
    user = session.scalar(select(User).where(User.nhs_login_sub == provider.identity["sub"]))
    link = session.scalar(select(AccountLink).where(AccountLink.user_id == user.id))
    assert link.method == "nhs_login"
    assert session.scalar(select(Verification).where(Verification.user_id == user.id)).method == "nhs_login"
    authorize = provider.seen_authorize[-1]
    assert authorize["vtr"].startswith("[") and "P9" in authorize["vtr"] and authorize["nonce"] and authorize["state"]
    assertion = provider.seen_assertions[-1]
    assert assertion["header"]["alg"] == "RS512" and assertion["claims"]["iss"] == CLIENT_ID


def test_signing_in_again_reuses_the_account(client: Any, session: Any, provider: FakeNHSLogin) -> None:
    provider.set_identity(**identity_for(demo(session, "9990010145")))
    nhs_login(client)
    client.submit("/logout", {}, page="/home")
    nhs_login(client)
    assert len(session.scalars(select(User).where(User.nhs_login_sub == provider.identity["sub"])).all()) == 1


def test_p5_gets_a_clear_explanation_and_no_record(client: Any, session: Any, provider: FakeNHSLogin) -> None:
    provider.set_identity(**identity_for(demo(session, "9990010145"), level="P5"))
    page = nhs_login(client).get_data(as_text=True)
    assert "NHS login has not yet checked your photo ID" in page
    assert "ask your GP practice to link your account" in page
    assert "Link your account to your GP record" in client.get("/home").get_data(as_text=True)


def test_p9_with_a_different_date_of_birth_is_not_linked(client: Any, session: Any, provider: FakeNHSLogin) -> None:
    provider.set_identity(**identity_for(demo(session, "9990010145"), birthdate="1950-01-01"))
    assert "could not match you" in nhs_login(client).get_data(as_text=True)


def test_p9_at_a_practice_not_on_the_gateway(client: Any, session: Any, provider: FakeNHSLogin) -> None:
    provider.set_identity(
        **identity_for(demo(session, "9990010145"), gp_registration_details={"gp_ods_code": "B99999"})
    )
    assert "does not use this service" in nhs_login(client).get_data(as_text=True)


@pytest.mark.parametrize("tamper", TAMPERING)
def test_tampered_tokens_are_refused(client: Any, session: Any, provider: FakeNHSLogin, tamper: str) -> None:
    provider.set_identity(**identity_for(demo(session, "9990010145")))
    provider.tamper = tamper
    response = nhs_login(client)
    assert response.status_code == 400
    assert "could not sign you in with NHS login" in response.get_data(as_text=True)
    assert client.get("/home").status_code == 302  # not signed in
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "sign_in.failed")).first() is not None


def test_a_wrong_state_is_refused(client: Any, session: Any, provider: FakeNHSLogin) -> None:
    provider.set_identity(**identity_for(demo(session, "9990010145")))
    start = client.get("/login/nhs")
    back = httpx.get(start.headers["Location"], follow_redirects=False)
    forged = back.headers["Location"].removeprefix("http://localhost").split("&state=")[0] + "&state=forged"
    assert client.get(forged).status_code == 400
