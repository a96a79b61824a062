"""A local OpenID Connect provider that behaves like NHS login, for the tests.

It serves discovery, JWKS, authorize, token and userinfo on 127.0.0.1; checks the client's private_key_jwt
assertion (RS512, iss = sub = client id, audience = token endpoint, not expired); signs ID tokens with its
own RSA key (RS512); and can tamper with what it returns so the tests can prove every check holds.

It is as strict as NHS login where the gateway has been caught out before: ``vtr`` must be a JSON list of
vectors of trust, userinfo answers only the claims of the scopes asked for (``given_name`` needs
``profile_extended``). It can also misbehave as a real provider does: rotate its signing key (a new key id,
the old key gone from its key set), sign with RS256, answer every request with an error status, or stop.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from authlib.jose import JsonWebKey, JsonWebToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

TAMPERING = ("issuer", "audience", "nonce", "expired", "signature", "userinfo_sub", "unsigned")
VECTOR = re.compile(r"P[059]\.(Cp\.Cd|Cp\.Ck|Cm)")

# The claims each scope releases at userinfo, as NHS login documents them (``sub`` always).
SCOPE_CLAIMS = {
    "profile": ("nhs_number", "birthdate", "family_name", "identity_proofing_level"),
    "profile_extended": ("given_name",),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
    "gp_registration_details": ("gp_registration_details",),
}

_jwt = JsonWebToken(["RS512", "RS256"])


def new_rsa_pem() -> tuple[str, str]:
    """(private PEM, public PEM) of a fresh 2048-bit RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def valid_vtr(text: str) -> bool:
    """NHS login reads ``vtr`` as a JSON list of vectors such as ``["P9.Cp.Cd","P9.Cm"]``: nothing else."""
    try:
        vectors = json.loads(text)
    except ValueError:
        return False
    return (
        isinstance(vectors, list) and bool(vectors) and all(isinstance(v, str) and VECTOR.fullmatch(v) for v in vectors)
    )


class FakeNHSLogin:
    def __init__(self, client_id: str, client_public_pem: str) -> None:
        self.client_id = client_id
        self.client_key = JsonWebKey.import_key(client_public_pem, {"kty": "RSA"})
        self.rotations = 0
        self.signing_key = self._new_key("op-1")
        other, _ = new_rsa_pem()
        self.wrong_key = JsonWebKey.import_key(other, {"kty": "RSA", "kid": "op-1"})
        self.sign_alg = "RS512"
        self.fail_status: int | None = None  # endpoints answer this status (a provider in trouble)
        self.fail_only: tuple[str, ...] = ()  # only these paths fail (all of them when empty)
        self.delay = 0.0  # seconds to wait before answering (a provider too slow to wait for)
        self.jwks_requests = 0
        self.codes: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.identity: dict[str, Any] = {}
        self.tamper: str | None = None
        self.seen_assertions: list[dict[str, Any]] = []
        self.seen_authorize: list[dict[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._stopped = False
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop answering: the port is closed, so the gateway meets a refused connection."""
        if not self._stopped:
            self._stopped = True
            self.server.shutdown()
            self.server.server_close()

    def set_identity(self, **claims: Any) -> None:
        self.identity = {"sub": str(uuid.uuid4()), "identity_proofing_level": "P9", **claims}

    def rotate_keys(self) -> str:
        """Sign with a new key under a new key id; the old key leaves the key set at once. Returns the new kid."""
        self.rotations += 1
        self.signing_key = self._new_key(f"op-{self.rotations + 1}")
        return str(self.signing_key.kid)

    @staticmethod
    def _new_key(kid: str) -> Any:
        private, _ = new_rsa_pem()
        return JsonWebKey.import_key(private, {"kty": "RSA", "kid": kid, "use": "sig"})

    # Tokens -------------------------------------------------------------------------------------------
    def _id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": self.identity["sub"],
            "nonce": nonce,
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
            "vot": f"{self.identity['identity_proofing_level']}.Cp.Cd",
            "identity_proofing_level": self.identity["identity_proofing_level"],
        }
        if self.tamper == "issuer":
            claims["iss"] = "http://127.0.0.1:1/not-nhs-login"
        if self.tamper == "audience":
            claims["aud"] = "someone-else"
        if self.tamper == "nonce":
            claims["nonce"] = "replayed-nonce"
        if self.tamper == "expired":
            claims["iat"], claims["exp"] = now - 3600, now - 1800
        if self.tamper == "unsigned":

            def part(data: dict[str, Any]) -> str:
                return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

            return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
        key = self.wrong_key if self.tamper == "signature" else self.signing_key
        header = {"alg": self.sign_alg, "kid": self.signing_key.kid}
        # check=False: Authlib refuses claim values that look like card numbers, and a random subject can.
        return _jwt.encode(header, claims, key, check=False).decode()

    def _check_assertion(self, assertion: str) -> bool:
        try:
            claims = _jwt.decode(assertion, self.client_key)
            claims.validate()
        except Exception:
            return False
        self.seen_assertions.append({"header": dict(claims.header), "claims": dict(claims)})
        return (
            claims.header.get("alg") == "RS512"
            and claims.get("iss") == self.client_id
            and claims.get("sub") == self.client_id
            and claims.get("aud") == f"{self.issuer}/token"
            and float(claims.get("exp", 0)) > time.time()
        )

    def _userinfo(self, scopes: list[str]) -> dict[str, Any]:
        released = {"sub"} | {claim for scope in scopes for claim in SCOPE_CLAIMS.get(scope, ())}
        return {k: v for k, v in self.identity.items() if k in released}

    def _authorize_error(self, query: dict[str, str]) -> str:
        """Why NHS login would refuse this authorization request ("" when it would not)."""
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return "invalid_request"
        if "openid" not in query.get("scope", "").split(" "):
            return "invalid_scope"
        if not valid_vtr(query.get("vtr", "")):
            return "invalid_request"
        return ""

    # HTTP ---------------------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        op = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _in_trouble(self) -> bool:
                if op.delay:
                    time.sleep(op.delay)
                if op.fail_status is not None and (not op.fail_only or urlparse(self.path).path in op.fail_only):
                    self._json(op.fail_status, {"error": "temporarily_unavailable"})
                    return True
                return False

            def do_GET(self) -> None:
                if self._in_trouble():
                    return
                url = urlparse(self.path)
                if url.path == "/.well-known/openid-configuration":
                    self._json(
                        200,
                        {
                            "issuer": op.issuer,
                            "authorization_endpoint": f"{op.issuer}/authorize",
                            "token_endpoint": f"{op.issuer}/token",
                            "userinfo_endpoint": f"{op.issuer}/userinfo",
                            "jwks_uri": f"{op.issuer}/jwks",
                            "scopes_supported": ["openid", *SCOPE_CLAIMS],
                            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                            "token_endpoint_auth_signing_alg_values_supported": ["RS512"],
                            "id_token_signing_alg_values_supported": ["RS512"],
                        },
                    )
                elif url.path == "/jwks":
                    op.jwks_requests += 1
                    self._json(200, {"keys": [op.signing_key.as_dict(is_private=False)]})
                elif url.path == "/authorize":
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    op.seen_authorize.append(query)
                    error = op._authorize_error(query)
                    if error:
                        self._json(400, {"error": error})
                        return
                    code = secrets.token_urlsafe(16)
                    op.codes[code] = {
                        "nonce": query.get("nonce", ""),
                        "redirect_uri": query["redirect_uri"],
                        "scopes": query["scope"].split(" "),
                    }
                    self.send_response(302)
                    self.send_header(
                        "Location",
                        f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}",
                    )
                    self.end_headers()
                elif url.path == "/userinfo":
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    if token not in op.tokens:
                        self._json(401, {"error": "invalid_token"})
                        return
                    info = op._userinfo(op.tokens[token]["scopes"])
                    if op.tamper == "userinfo_sub":
                        info["sub"] = "someone-else"
                    self._json(200, info)
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if self._in_trouble():
                    return
                if urlparse(self.path).path != "/token":
                    self._json(404, {"error": "not_found"})
                    return
                if form.get(
                    "client_assertion_type"
                ) != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" or not op._check_assertion(
                    form.get("client_assertion", "")
                ):
                    self._json(401, {"error": "invalid_client"})
                    return
                grant = op.codes.pop(form.get("code", ""), None)
                if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                    self._json(400, {"error": "invalid_grant"})
                    return
                access = secrets.token_urlsafe(24)
                op.tokens[access] = {"scopes": grant["scopes"]}
                self._json(
                    200,
                    {
                        "access_token": access,
                        "token_type": "Bearer",
                        "expires_in": 300,
                        "id_token": op._id_token(grant["nonce"]),
                    },
                )

        return Handler
