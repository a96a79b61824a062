"""An OpenID Connect relying party for NHS login: authorization code flow, private_key_jwt (RS512) client
authentication, vectors of trust, and every ID-token check (issuer, audience, nonce, expiry, signature)."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from authlib.jose import JsonWebKey, jwt
from authlib.jose.errors import JoseError
from authlib.oauth2.rfc7523 import PrivateKeyJWT

from patient_online.domain.identity import Identity, IdentityProvider, IdentityRefused

CLOCK_SKEW = 60


@dataclass
class RelyingParty:
    """NHS login's relying party: discovery and keys are fetched on first use."""

    issuer: str
    client_id: str
    private_key_pem: str
    redirect_uri: str
    scopes: str
    vtr: str
    timeout: float = 10.0

    @cached_property
    def metadata(self) -> dict[str, Any]:
        response = httpx.get(f"{self.issuer.rstrip('/')}/.well-known/openid-configuration", timeout=self.timeout)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        if data.get("issuer") != self.issuer:
            raise IdentityRefused("discovery issuer differs from the configured issuer")
        return data

    @cached_property
    def jwks(self) -> Any:
        response = httpx.get(self.metadata["jwks_uri"], timeout=self.timeout)
        response.raise_for_status()
        return JsonWebKey.import_key_set(response.json())

    def authorization_url(self) -> tuple[str, str, str]:
        """Where to send the browser, with the state and nonce to keep in the session."""
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scopes,
            "state": state,
            "nonce": nonce,
            "vtr": self.vtr,
        }
        return f"{self.metadata['authorization_endpoint']}?{urlencode(params)}", state, nonce

    def redeem(self, code: str, nonce: str) -> Identity:
        """Exchange the code (client authenticated by a signed RS512 assertion), check the ID token, read userinfo."""
        token_endpoint = self.metadata["token_endpoint"]
        with OAuth2Client(
            client_id=self.client_id,
            client_secret=self.private_key_pem,
            token_endpoint_auth_method=PrivateKeyJWT.name,
            redirect_uri=self.redirect_uri,
            timeout=self.timeout,
        ) as client:
            client.register_client_auth_method(PrivateKeyJWT(token_endpoint, alg="RS512"))
            try:
                token = client.fetch_token(token_endpoint, code=code, grant_type="authorization_code")
            except Exception as exc:
                raise IdentityRefused(f"token request failed ({type(exc).__name__})") from exc
            claims = self.check_id_token(str(token.get("id_token", "")), nonce)
            info = client.get(self.metadata["userinfo_endpoint"])
            if info.status_code != 200:
                raise IdentityRefused(f"userinfo answered {info.status_code}")
            userinfo: dict[str, Any] = info.json()
        if userinfo.get("sub") != claims["sub"]:
            raise IdentityRefused("userinfo sub differs from the ID token's")
        merged = {**claims, **userinfo}
        gp = merged.get("gp_registration_details") or {}
        if isinstance(gp, str):
            gp = json.loads(gp)
        return Identity(
            sub=str(claims["sub"]),
            proofing_level=str(merged.get("identity_proofing_level", "")),
            nhs_number=str(merged.get("nhs_number", "")),
            birthdate=str(merged.get("birthdate", "")),
            family_name=str(merged.get("family_name", "")),
            given_name=str(merged.get("given_name", "")),
            email=str(merged.get("email", "")),
            email_verified=bool(merged.get("email_verified", False)),
            gp_ods_code=str(gp.get("gp_ods_code", "")),
        )

    def check_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """Signature with the provider's keys, then issuer, audience, nonce, expiry and issue time."""
        if not id_token:
            raise IdentityRefused("no ID token")
        try:
            claims = jwt.decode(id_token, self.jwks)
        except (JoseError, ValueError) as exc:
            raise IdentityRefused(f"ID token signature not valid ({type(exc).__name__})") from exc
        if claims.header.get("alg") in (None, "none", "HS256"):
            raise IdentityRefused("ID token not signed with the provider's key")
        now = time.time()
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if claims.get("iss") != self.issuer:
            raise IdentityRefused("ID token issuer is wrong")
        if self.client_id not in audiences:
            raise IdentityRefused("ID token audience is wrong")
        if not nonce or claims.get("nonce") != nonce:
            raise IdentityRefused("ID token nonce does not match")
        if float(claims.get("exp", 0)) < now - CLOCK_SKEW:
            raise IdentityRefused("ID token has expired")
        if float(claims.get("iat", now + 2 * CLOCK_SKEW)) > now + CLOCK_SKEW:
            raise IdentityRefused("ID token issued in the future")
        if not claims.get("sub"):
            raise IdentityRefused("ID token has no subject")
        return dict(claims)


_: type[IdentityProvider] = RelyingParty
