"""A local OpenID Connect provider that behaves like NHS login, for the tests.

It serves discovery, JWKS, authorize, token and userinfo on 127.0.0.1; checks the client's private_key_jwt
assertion (RS512, iss = sub = client id, audience = token endpoint, not expired); signs ID tokens with its
own RSA key (RS512); and can tamper with what it returns so the tests can prove every check holds.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from authlib.jose import JsonWebKey, jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

TAMPERING = ("issuer", "audience", "nonce", "expired", "signature", "userinfo_sub", "unsigned")


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


class FakeNHSLogin:
    def __init__(self, client_id: str, client_public_pem: str) -> None:
        self.client_id = client_id
        self.client_key = JsonWebKey.import_key(client_public_pem, {"kty": "RSA"})
        private, _ = new_rsa_pem()
        self.signing_key = JsonWebKey.import_key(private, {"kty": "RSA", "kid": "op-1", "use": "sig"})
        other, _ = new_rsa_pem()
        self.wrong_key = JsonWebKey.import_key(other, {"kty": "RSA", "kid": "op-1"})
        self.codes: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.identity: dict[str, Any] = {}
        self.tamper: str | None = None
        self.seen_assertions: list[dict[str, Any]] = []
        self.seen_authorize: list[dict[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def set_identity(self, **claims: Any) -> None:
        self.identity = {"sub": str(uuid.uuid4()), "identity_proofing_level": "P9", **claims}

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
            import base64

            def part(data: dict[str, Any]) -> str:
                return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

            return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
        key = self.wrong_key if self.tamper == "signature" else self.signing_key
        # check=False: Authlib refuses claim values that look like card numbers, and a random subject can.
        return jwt.encode({"alg": "RS512", "kid": "op-1"}, claims, key, check=False).decode()

    def _check_assertion(self, assertion: str) -> bool:
        try:
            claims = jwt.decode(assertion, self.client_key)
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

            def do_GET(self) -> None:
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
                            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                            "token_endpoint_auth_signing_alg_values_supported": ["RS512"],
                            "id_token_signing_alg_values_supported": ["RS512"],
                        },
                    )
                elif url.path == "/jwks":
                    self._json(200, {"keys": [op.signing_key.as_dict(is_private=False)]})
                elif url.path == "/authorize":
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    op.seen_authorize.append(query)
                    if (
                        query.get("client_id") != op.client_id
                        or query.get("response_type") != "code"
                        or "vtr" not in query
                    ):
                        self._json(400, {"error": "invalid_request"})
                        return
                    code = secrets.token_urlsafe(16)
                    op.codes[code] = {"nonce": query.get("nonce", ""), "redirect_uri": query["redirect_uri"]}
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
                    info = dict(op.identity)
                    if op.tamper == "userinfo_sub":
                        info["sub"] = "someone-else"
                    self._json(200, info)
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
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
                op.tokens[access] = dict(op.identity)
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
