"""An OpenID Connect relying party for NHS login: authorization code flow, private_key_jwt (RS512) client
authentication, vectors of trust, and every ID-token check (issuer, audience, nonce, expiry, RS512 signature).

NHS login rotates its signing keys: the key set is read again when a token names a key id the gateway has not
seen (at most once per ``jwks_refresh_seconds``, so a stream of bad tokens cannot make it hammer the provider)
and, in any case, once it is ``jwks_max_age`` old. A provider that cannot be reached, is too slow, answers
with an error status or refuses the token request raises ``IdentityProviderUnavailable``: the person is told
to try again or to use their password, never shown an error page.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from authlib.jose import JsonWebKey, JsonWebToken
from authlib.jose.errors import JoseError
from authlib.oauth2.rfc7523 import PrivateKeyJWT

from patient_online.domain.identity import Identity, IdentityProvider, IdentityProviderUnavailable, IdentityRefused

CLOCK_SKEW = 60
SIGNING_ALGORITHM = "RS512"  # NHS login signs ID tokens with RS512 only; anything else is refused
VECTOR_OF_TRUST = re.compile(r"P[0-9]\.C[a-z]+(\.C[a-z]+)*")

_id_tokens = JsonWebToken([SIGNING_ALGORITHM])


def vtr_json(value: str | Sequence[str]) -> str:
    """The ``vtr`` parameter as NHS login reads it: a JSON list (``["P9.Cp.Cd","P9.Cm"]``).

    Settings may hold a list (a settings file, or a JSON list read from the environment), a JSON list as text,
    or a single vector; Python's list syntax (``['P9.Cm']``) or anything else is refused at start-up.
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            vectors: Any = json.loads(text) if text.startswith("[") else text.split()
        except ValueError as exc:
            raise ValueError('NHS_LOGIN_VTR must be a JSON list of vectors of trust, such as ["P9.Cp.Cd"]') from exc
    else:
        vectors = list(value)
    if not (isinstance(vectors, list) and vectors and all(_is_vector(v) for v in vectors)):
        raise ValueError('NHS_LOGIN_VTR must be a JSON list of vectors of trust, such as ["P9.Cp.Cd"]')
    return json.dumps(vectors, separators=(",", ":"))


def scope_text(value: str | Sequence[str]) -> str:
    """The ``scope`` parameter, space separated, from text or a list; ``openid`` is always asked for."""
    scopes = value.split() if isinstance(value, str) else [str(s).strip() for s in value]
    scopes = [s for s in scopes if s]
    if "openid" not in scopes:
        scopes.insert(0, "openid")
    return " ".join(dict.fromkeys(scopes))


def _is_vector(value: Any) -> bool:
    return isinstance(value, str) and VECTOR_OF_TRUST.fullmatch(value) is not None


def _header(token: str) -> dict[str, Any]:
    """The token's header, read before its signature is checked only to pick the key and refuse a wrong alg."""
    try:
        first = token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise IdentityRefused("ID token is not a JWT") from exc
    if not isinstance(header, dict):
        raise IdentityRefused("ID token is not a JWT")
    return header


@dataclass
class RelyingParty:
    """NHS login's relying party: discovery and keys are fetched on first use."""

    issuer: str
    client_id: str
    private_key_pem: str
    redirect_uri: str
    scopes: str | Sequence[str]
    vtr: str | Sequence[str]
    timeout: float = 10.0
    jwks_refresh_seconds: float = 60.0
    jwks_max_age: float = 3600.0
    clock: Callable[[], float] = time.monotonic
    _metadata: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _keys: Any = field(default=None, init=False, repr=False)
    _keys_read_at: float = field(default=0.0, init=False, repr=False)
    _unknown_kid_refresh_at: float | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        # Settings are checked when the client is made, so a wrong vtr never reaches NHS login.
        self.vtr = vtr_json(self.vtr)
        self.scopes = scope_text(self.scopes)

    # Provider documents -------------------------------------------------------------------------------
    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = httpx.get(url, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise IdentityProviderUnavailable(f"{what} unreachable ({type(exc).__name__})") from exc
        if response.status_code != 200:
            raise IdentityProviderUnavailable(f"{what} answered {response.status_code}")
        try:
            data = response.json()
        except ValueError as exc:
            raise IdentityProviderUnavailable(f"{what} is not JSON") from exc
        if not isinstance(data, dict):
            raise IdentityProviderUnavailable(f"{what} is not a JSON object")
        return data

    @property
    def metadata(self) -> dict[str, Any]:
        """The discovery document, kept once it has been read and checked."""
        if self._metadata is None:
            data = self._get_json(f"{self.issuer.rstrip('/')}/.well-known/openid-configuration", "discovery")
            if data.get("issuer") != self.issuer:
                raise IdentityProviderUnavailable("discovery issuer differs from the configured issuer")
            self._metadata = data
        return self._metadata

    def signing_key(self, kid: str | None) -> Any:
        """The provider's key with this id, reading the key set again when the id is new to the gateway."""
        with self._lock:
            now = self.clock()
            if self._keys is None or now - self._keys_read_at >= self.jwks_max_age:
                self._read_keys(now)
            key = self._find(kid)
            last = self._unknown_kid_refresh_at
            if key is None and (last is None or now - last >= self.jwks_refresh_seconds):
                self._unknown_kid_refresh_at = now
                self._read_keys(now)
                key = self._find(kid)
        if key is None:
            raise IdentityRefused("ID token signed with a key the provider does not publish")
        return key

    def _read_keys(self, now: float) -> None:
        data = self._get_json(str(self.metadata["jwks_uri"]), "key set")
        try:
            self._keys = JsonWebKey.import_key_set(data)
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise IdentityProviderUnavailable("key set not readable") from exc
        self._keys_read_at = now

    def _find(self, kid: str | None) -> Any:
        keys = [k for k in self._keys.keys if k.kty == "RSA"]
        if kid is None:
            return keys[0] if len(keys) == 1 else None
        return next((k for k in keys if k.kid == kid), None)

    # The flow -----------------------------------------------------------------------------------------
    def authorization_url(self) -> tuple[str, str, str]:
        """Where to send the browser, with the state and nonce to keep in the session."""
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": str(self.scopes),
            "state": state,
            "nonce": nonce,
            "vtr": str(self.vtr),
        }
        return f"{self.metadata['authorization_endpoint']}?{urlencode(params)}", state, nonce

    def redeem(self, code: str, nonce: str) -> Identity:
        """Exchange the code (client authenticated by a signed RS512 assertion), check the ID token, read userinfo."""
        token_endpoint = str(self.metadata["token_endpoint"])
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
            except Exception as exc:  # refused connection, timeout, error status, an OAuth error: all the same here
                raise IdentityProviderUnavailable(f"token request failed ({type(exc).__name__})") from exc
            claims = self.check_id_token(str(token.get("id_token", "")), nonce)
            userinfo = self._userinfo(client)
        if userinfo.get("sub") != claims["sub"]:
            raise IdentityRefused("userinfo sub differs from the ID token's")
        return _identity({**claims, **userinfo}, str(claims["sub"]))

    def _userinfo(self, client: OAuth2Client) -> dict[str, Any]:
        try:
            info = client.get(self.metadata["userinfo_endpoint"])
        except httpx.HTTPError as exc:
            raise IdentityProviderUnavailable(f"userinfo unreachable ({type(exc).__name__})") from exc
        if info.status_code >= 500:
            raise IdentityProviderUnavailable(f"userinfo answered {info.status_code}")
        if info.status_code != 200:
            raise IdentityRefused(f"userinfo answered {info.status_code}")
        try:
            data: dict[str, Any] = info.json()
        except ValueError as exc:
            raise IdentityRefused("userinfo is not JSON") from exc
        return data

    def check_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """Signature (RS512, with the provider's published key), then issuer, audience, nonce, expiry, issue time."""
        if not id_token:
            raise IdentityRefused("no ID token")
        header = _header(id_token)
        if header.get("alg") != SIGNING_ALGORITHM:
            raise IdentityRefused(f"ID token not signed with {SIGNING_ALGORITHM}")
        kid = header.get("kid")
        key = self.signing_key(str(kid) if kid is not None else None)
        try:
            claims = _id_tokens.decode(id_token, key)
        except (JoseError, ValueError) as exc:
            raise IdentityRefused(f"ID token signature not valid ({type(exc).__name__})") from exc
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


def _identity(merged: dict[str, Any], sub: str) -> Identity:
    gp = merged.get("gp_registration_details") or {}
    if isinstance(gp, str):
        try:
            gp = json.loads(gp)
        except ValueError:
            gp = {}
    if not isinstance(gp, dict):
        gp = {}
    return Identity(
        sub=sub,
        proofing_level=str(merged.get("identity_proofing_level", "")),
        nhs_number=str(merged.get("nhs_number", "")),
        birthdate=str(merged.get("birthdate", "")),
        family_name=str(merged.get("family_name", "")),
        given_name=str(merged.get("given_name", "")),
        email=str(merged.get("email", "")),
        email_verified=merged.get("email_verified") in (True, "true"),
        gp_ods_code=str(gp.get("gp_ods_code", "")),
    )


_: type[IdentityProvider] = RelyingParty
