"""Password hashing, secret encryption and short random tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from flask import current_app

_hasher = PasswordHasher()
# Each argon2 hash takes 64 MiB while it runs. Without a bound, a gunicorn worker with 8 threads signing 8
# people in at once (Monday morning) peaked above 600 MB, and at two at a time near 250 MB. One at a time
# keeps a worker under 200 MB and costs no throughput: the work is CPU-bound and a worker has one core, so
# sign-ins queue for the core either way.
_hashing = threading.BoundedSemaphore(1)
# A real hash to compare against when there is no account, so timing does not reveal which emails exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password-used-for-timing")


def hash_password(password: str) -> str:
    with _hashing:
        return _hasher.hash(password)


def check_password(stored_hash: str, password: str) -> bool:
    """True when the password matches; always does the same work, even without an account."""
    try:
        with _hashing:
            return _hasher.verify(stored_hash or _DUMMY_HASH, password) and bool(stored_hash)
    except (VerificationError, InvalidHashError):
        return False


def token_hash(token: str, secret: str | None = None) -> str:
    """Keyed hash for codes and keys we only ever compare (one-time codes, linkage keys); ``secret`` defaults
    to the app's SECRET_KEY (use cases pass theirs from the unit of work's settings)."""
    key = str(current_app.config["SECRET_KEY"] if secret is None else secret).encode()
    return hmac.new(key, token.strip().upper().encode(), hashlib.sha256).hexdigest()


def tokens_match(stored: str, token: str, secret: str | None = None) -> bool:
    return hmac.compare_digest(stored, token_hash(token, secret))


def random_code(digits: int = 6) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(digits))


_KEY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def random_key(length: int) -> str:
    """Readable random key for paper letters: no characters that look alike."""
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(length))


def _fernet() -> Fernet:
    key = current_app.config.get("ADAPTER_SECRET_KEY")
    if not key:
        digest = hashlib.sha256(str(current_app.config["SECRET_KEY"]).encode()).digest()
        key = base64.urlsafe_b64encode(digest)
    return Fernet(key)


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode() if value else ""


def decrypt(value: str) -> str:
    if not value:
        return ""
    try:
        return _fernet().decrypt(value.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("A stored secret cannot be read with the configured key") from exc
