"""NHS login: the whole OpenID Connect flow against a local provider, including tampered tokens."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from authlib.jose import JsonWebKey, JsonWebToken
from sqlalchemy import select
from sqlalchemy.engine import Engine

from patient_online.adapters.demo.models import DemoPatient
from patient_online.models import AccountLink, AuditEvent, Patient, User, Verification
from tests.conftest import TEST_SETTINGS
from tests.oidc_provider import TAMPERING, FakeNHSLogin, new_rsa_pem, valid_vtr

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


# Binding an NHS login to an account -------------------------------------------------------------------------
def demo_account(session: Any, email: str = "patient.y02001@example.com") -> tuple[User, Patient]:
    """A demo patient's password account and the GP record it is linked to."""
    user = session.scalar(select(User).where(User.email == email))
    link = session.scalar(select(AccountLink).where(AccountLink.user_id == user.id))
    return user, session.get(Patient, link.patient_id)


def unlinked_demo(session: Any, practice_ods: str = "Y02001") -> DemoPatient:
    """A demo patient of the practice whose record no account is linked to."""
    linked = select(Patient.nhs_number).join(AccountLink, AccountLink.patient_id == Patient.id)
    return session.scalars(
        select(DemoPatient)
        .where(DemoPatient.practice_ods == practice_ods, DemoPatient.nhs_number.not_in(linked))
        .order_by(DemoPatient.nhs_number)
    ).first()


def reread(session: Any, user: User) -> User:
    """The account as the database holds it now (each request used a session of its own)."""
    session.expire_all()
    return session.get(User, user.id)


def identity_of(record: Patient, level: str = "P9", **extra: Any) -> dict[str, Any]:
    return {
        "identity_proofing_level": level,
        "nhs_number": record.nhs_number,
        "birthdate": record.date_of_birth.isoformat(),
        "family_name": record.family_name,
        "given_name": record.given_name,
        "email": "someone.else@example.com",
        "email_verified": True,
        "gp_registration_details": {"gp_ods_code": "Y02001"},
        **extra,
    }


def signed_in_as(client: Any, session: Any) -> User | None:
    """The account the client's session belongs to (None when not signed in)."""
    with client.raw.session_transaction() as browser:
        user_id = browser.get("_user_id")
    return session.get(User, int(user_id)) if user_id else None


def test_a_stored_sub_signs_into_the_same_account_whatever_the_email(
    client: Any, session: Any, provider: FakeNHSLogin
) -> None:
    owner, record = demo_account(session)
    provider.set_identity(**identity_of(record, level="P5", email="changed@example.com"))
    owner.nhs_login_sub = provider.identity["sub"]
    session.commit()
    response = nhs_login(client)
    assert response.headers["Location"].endswith("/home")
    assert signed_in_as(client, session).id == owner.id


def test_p9_with_the_records_nhs_number_and_birth_date_links_to_the_existing_account(
    client: Any, session: Any, provider: FakeNHSLogin
) -> None:
    owner, record = demo_account(session)
    provider.set_identity(**identity_of(record))  # a different email from the account's
    response = nhs_login(client)
    assert response.headers["Location"].endswith("/home")
    assert f"Hello {record.given_name}" in client.get("/home").get_data(as_text=True)
    owner = reread(session, owner)
    assert signed_in_as(client, session).id == owner.id and owner.nhs_login_sub == provider.identity["sub"]
    assert owner.email == "patient.y02001@example.com"
    assert session.scalars(select(User).where(User.nhs_login_sub == provider.identity["sub"])).all() == [owner]
    bound = session.scalars(select(AuditEvent).where(AuditEvent.action == "nhs_login.bound")).all()
    assert [e.actor_user_id for e in bound] == [owner.id]


def test_p9_of_another_person_with_the_same_email_gets_a_separate_account(
    client: Any, session: Any, provider: FakeNHSLogin
) -> None:
    owner, record = demo_account(session)
    other = unlinked_demo(session)
    provider.set_identity(**identity_for(other, email=owner.email))
    page = nhs_login(client).get_data(as_text=True)
    assert "We made a separate account for this NHS login" in page
    me = signed_in_as(client, session)
    assert me is not None and me.id != owner.id and reread(session, owner).nhs_login_sub is None
    assert f"Hello {record.given_name}" not in client.get("/home").get_data(as_text=True)
    links = session.scalars(select(AccountLink).where(AccountLink.user_id == me.id)).all()
    assert [link.patient.nhs_number for link in links] == [other.nhs_number]  # their own record, proved by P9


@pytest.mark.parametrize("level", ["P5", "P0"])
def test_below_p9_with_the_same_email_gets_a_separate_account_and_no_record(
    client: Any, session: Any, provider: FakeNHSLogin, level: str
) -> None:
    owner, record = demo_account(session)
    provider.set_identity(**identity_of(record, level=level, email=owner.email.upper()))
    page = nhs_login(client).get_data(as_text=True)
    assert "We made a separate account for this NHS login" in page
    me = signed_in_as(client, session)
    assert me is not None and me.id != owner.id and reread(session, owner).nhs_login_sub is None
    assert session.scalars(select(AccountLink).where(AccountLink.user_id == me.id)).all() == []
    home = client.get("/home").get_data(as_text=True)
    assert "Link your account to your GP record" in home and f"Hello {record.given_name}" not in home
    assert client.get("/record").status_code != 200


def test_p9_with_the_right_nhs_number_but_another_birth_date_is_never_bound(
    client: Any, session: Any, provider: FakeNHSLogin
) -> None:
    owner, record = demo_account(session)
    provider.set_identity(**identity_of(record, birthdate="1950-01-01", email=owner.email))
    nhs_login(client)
    me = signed_in_as(client, session)
    assert me is not None and me.id != owner.id and reread(session, owner).nhs_login_sub is None
    assert session.scalars(select(AccountLink).where(AccountLink.user_id == me.id)).all() == []


def test_a_record_bound_to_another_nhs_login_is_explained_and_not_taken(
    client: Any, session: Any, provider: FakeNHSLogin
) -> None:
    owner, record = demo_account(session)
    owner.nhs_login_sub = "an-earlier-nhs-login"
    session.commit()
    provider.set_identity(**identity_of(record))
    response = nhs_login(client)
    assert response.status_code == 409
    assert "already connected to a different NHS login" in response.get_data(as_text=True)
    assert signed_in_as(client, session) is None
    assert reread(session, owner).nhs_login_sub == "an-earlier-nhs-login"
    assert session.scalar(select(User).where(User.nhs_login_sub == provider.identity["sub"])) is None


# The OpenID Connect client --------------------------------------------------------------------------------
def test_a_rotated_signing_key_is_fetched_without_a_restart(client: Any, session: Any, provider: FakeNHSLogin) -> None:
    provider.set_identity(**identity_for(demo(session, "9990010145")))
    assert nhs_login(client).status_code == 302
    client.submit("/logout", {}, page="/home")
    provider.rotate_keys()
    response = nhs_login(client)  # the same person again, now with a token signed by the new key
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    assert provider.jwks_requests == 2


def test_an_unreachable_provider_gives_a_clear_page_when_starting(client: Any, provider: FakeNHSLogin) -> None:
    provider.stop()
    response = client.get("/login/nhs")
    assert response.status_code == 503
    page = response.get_data(as_text=True)
    assert "NHS login is not available" in page and "sign in with your email address and password" in page


@pytest.mark.parametrize("trouble", ["stopped", "503", "500"])
def test_a_provider_failing_after_the_browser_left_gives_a_clear_page(
    client: Any, session: Any, provider: FakeNHSLogin, trouble: str
) -> None:
    provider.set_identity(**identity_for(demo(session, "9990010145")))
    start = client.get("/login/nhs")
    back = httpx.get(start.headers["Location"], follow_redirects=False)
    if trouble == "stopped":
        provider.stop()
    else:
        provider.fail_status = int(trouble)
    response = client.get(back.headers["Location"].removeprefix("http://localhost"))
    assert response.status_code == 503
    assert "NHS login is not available" in response.get_data(as_text=True)
    assert signed_in_as(client, session) is None


@pytest.mark.parametrize(
    "vtr",
    [
        ["P9.Cp.Cd", "P9.Cp.Ck", "P9.Cm"],
        '["P9.Cp.Cd", "P9.Cp.Ck", "P9.Cm"]',
        "P9.Cp.Cd",
    ],
)
def test_vtr_is_sent_as_json_whether_written_as_a_list_or_a_string(
    app: Any, client: Any, session: Any, provider: FakeNHSLogin, vtr: Any
) -> None:
    app.config["NHS_LOGIN_VTR"] = vtr
    provider.set_identity(**identity_for(demo(session, "9990010145")))
    response = nhs_login(client)
    assert response.headers["Location"].endswith("/home")
    sent = provider.seen_authorize[-1]["vtr"]
    assert valid_vtr(sent) and json.loads(sent)[0] == "P9.Cp.Cd"


def test_a_json_list_from_the_environment_is_sent_as_json(
    monkeypatch: pytest.MonkeyPatch, seeded_engine: Engine, settings: dict[str, Any], provider: FakeNHSLogin
) -> None:
    from patient_online import create_app
    from patient_online.wiring import nhs_login_client

    monkeypatch.setenv("PATIENT_ONLINE_NHS_LOGIN_VTR", '["P9.Cp.Cd","P9.Cp.Ck","P9.Cm"]')
    application = create_app({**TEST_SETTINGS, "DATABASE_ENGINE": seeded_engine, **settings})
    with application.test_request_context():
        url, _, _ = nhs_login_client(application).authorization_url()  # type: ignore[union-attr]
    assert parse_qs(urlparse(url).query)["vtr"] == ['["P9.Cp.Cd","P9.Cp.Ck","P9.Cm"]']


def test_an_rs256_id_token_is_refused(client: Any, session: Any, provider: FakeNHSLogin) -> None:
    provider.set_identity(**identity_for(demo(session, "9990010145")))
    provider.sign_alg = "RS256"
    response = nhs_login(client)
    assert response.status_code == 400
    assert signed_in_as(client, session) is None


def test_profile_extended_is_asked_for_and_gives_the_given_name(
    client: Any, session: Any, provider: FakeNHSLogin
) -> None:
    person = demo(session, "9990010145")
    provider.set_identity(**identity_for(person))
    nhs_login(client)
    assert "profile_extended" in provider.seen_authorize[-1]["scope"].split(" ")
    user = session.scalar(select(User).where(User.nhs_login_sub == provider.identity["sub"]))
    assert user.given_name == person.given_name


def test_scopes_written_as_a_list_are_sent_space_separated(
    app: Any, client: Any, session: Any, provider: FakeNHSLogin
) -> None:
    app.config["NHS_LOGIN_SCOPES"] = ["openid", "profile", "profile_extended", "email", "gp_registration_details"]
    provider.set_identity(**identity_for(demo(session, "9990010145")))
    assert nhs_login(client).headers["Location"].endswith("/home")
    assert provider.seen_authorize[-1]["scope"] == "openid profile profile_extended email gp_registration_details"


# The client on its own: bounded key refresh, timeouts -------------------------------------------------------
def relying_party(provider: FakeNHSLogin, client_key: tuple[Path, str], **options: Any) -> Any:
    from patient_online.adapters.nhs_login import RelyingParty

    fields: dict[str, Any] = {
        "issuer": provider.issuer,
        "client_id": CLIENT_ID,
        "private_key_pem": client_key[0].read_text(),
        "redirect_uri": "http://localhost/login/nhs/callback",
        "scopes": "openid profile",
        "vtr": '["P9.Cp.Cd"]',
    }
    return RelyingParty(**{**fields, **options})


def token_with_kid(provider: FakeNHSLogin, kid: str, nonce: str = "n-1") -> str:
    """An ID token with good claims signed by a key the provider never published."""
    stranger = JsonWebKey.import_key(new_rsa_pem()[0], {"kty": "RSA", "kid": kid})
    now = int(time.time())
    claims = {"iss": provider.issuer, "aud": CLIENT_ID, "sub": "s-1", "nonce": nonce, "iat": now, "exp": now + 300}
    return JsonWebToken(["RS512"]).encode({"alg": "RS512", "kid": kid}, claims, stranger).decode()


def test_unknown_key_ids_refresh_the_key_set_at_most_once_per_interval(
    provider: FakeNHSLogin, client_key: tuple[Path, str]
) -> None:
    from patient_online.domain.identity import IdentityRefused

    now = [1000.0]
    rp = relying_party(provider, client_key, jwks_refresh_seconds=30.0, clock=lambda: now[0])
    rp.authorization_url()
    rp.signing_key("op-1")
    assert provider.jwks_requests == 1
    for kid in ("ghost-1", "ghost-2", "ghost-3"):
        with pytest.raises(IdentityRefused):
            rp.check_id_token(token_with_kid(provider, kid), "n-1")
    assert provider.jwks_requests == 2  # one refresh for the first unknown kid, none for the next two
    now[0] += 31
    with pytest.raises(IdentityRefused):
        rp.check_id_token(token_with_kid(provider, "ghost-4"), "n-1")
    assert provider.jwks_requests == 3


def test_a_provider_too_slow_to_answer_is_unavailable(provider: FakeNHSLogin, client_key: tuple[Path, str]) -> None:
    from patient_online.domain.identity import IdentityProviderUnavailable

    provider.delay = 1.0
    with pytest.raises(IdentityProviderUnavailable):
        relying_party(provider, client_key, timeout=0.2).authorization_url()


def test_a_vtr_that_is_not_a_list_of_vectors_is_refused_when_configured(
    provider: FakeNHSLogin, client_key: tuple[Path, str]
) -> None:
    with pytest.raises(ValueError, match="NHS_LOGIN_VTR"):
        relying_party(provider, client_key, vtr="['P9.Cp.Cd']")  # Python's list syntax, not JSON
