"""Keep a short-lived value on the server for one account; the browser holds only a random token.

Why: the session cookie is signed, not encrypted, so what it carries can be read by anyone who has it
(a shared computer, a proxy's log, a browser extension). Medicine names and Linkage Keys must not be there.
The row is found by a hash of the token and sealed with a key derived from the token, so the database alone
does not reveal the value either. Works the same on SQLite and PostgreSQL and across gunicorn nodes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, select

from patient_online.models import HeldValue

from .unit_of_work import AbstractUnitOfWork

TOKEN_BYTES = 32


def _row_id(token: str) -> str:
    return hashlib.sha256(b"held-value-id:" + token.encode()).hexdigest()


def _fernet(token: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"held-value-key:" + token.encode()).digest()))


def hold(
    uow: AbstractUnitOfWork,
    owner_id: int,
    purpose: str,
    value: Any,
    lifetime: dt.timedelta,
    replacing: str | None = None,
) -> str:
    """Keep ``value`` (JSON) for the owner until ``lifetime`` has passed; returns the token for the cookie.

    ``replacing`` is the token the cookie held before, whose value is dropped; expired values are swept here
    too, so the table stays small without a separate job."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = uow.now()
    uow.writing()
    uow.session.execute(delete(HeldValue).where(HeldValue.expires_at < now))
    if replacing:
        uow.session.execute(delete(HeldValue).where(HeldValue.id == _row_id(replacing)))
    sealed = _fernet(token).encrypt(json.dumps(value).encode()).decode()
    uow.session.add(
        HeldValue(id=_row_id(token), owner_id=owner_id, purpose=purpose, sealed=sealed, expires_at=now + lifetime)
    )
    uow.commit()
    return token


def _unseal(row: HeldValue | None, token: str, owner_id: int, purpose: str, now: dt.datetime) -> Any:
    if row is None or row.owner_id != owner_id or row.purpose != purpose or row.expires_at < now:
        return None
    try:
        return json.loads(_fernet(token).decrypt(row.sealed.encode()))
    except (InvalidToken, ValueError):
        return None


def read(uow: AbstractUnitOfWork, owner_id: int, purpose: str, token: str | None) -> Any:
    """The value held under ``token`` for this owner and purpose, or None (unknown, someone else's, expired)."""
    if not token:
        return None
    row = uow.session.scalar(select(HeldValue).where(HeldValue.id == _row_id(token)))
    return _unseal(row, token, owner_id, purpose, uow.now())


def take(uow: AbstractUnitOfWork, owner_id: int, purpose: str, token: str | None) -> Any:
    """Like ``read``, but the value is gone afterwards: what is shown once is shown only once.

    The delete decides: when two requests race for the same token, only the one whose delete removed the
    row gets the value."""
    if not token:
        return None
    uow.writing()
    row = uow.session.scalar(select(HeldValue).where(HeldValue.id == _row_id(token)))
    value = _unseal(row, token, owner_id, purpose, uow.now())
    mine = delete(HeldValue).where(
        HeldValue.id == _row_id(token), HeldValue.owner_id == owner_id, HeldValue.purpose == purpose
    )
    removed = uow.session.execute(mine).rowcount  # type: ignore[attr-defined]
    uow.commit()
    return value if removed == 1 else None
