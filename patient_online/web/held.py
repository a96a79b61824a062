"""What a page remembers between requests, kept on the server: the session cookie holds only a random token.

Use for anything personal or secret (medicine names, a Linkage Key); see services/held_values.py for why.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import g, session

from patient_online.services import held_values
from patient_online.wiring import uow

_COOKIE_KEY = "held"


def _tokens() -> dict[str, str]:
    found = session.get(_COOKIE_KEY)
    return dict(found) if isinstance(found, dict) else {}


def hold(purpose: str, value: Any, lifetime: dt.timedelta) -> None:
    """Keep ``value`` for the signed-in person under ``purpose``, replacing what was held there before."""
    tokens = _tokens()
    tokens[purpose] = held_values.hold(uow(), g.user.id, purpose, value, lifetime, replacing=tokens.get(purpose))
    session[_COOKIE_KEY] = tokens


def read(purpose: str) -> Any:
    """What is held under ``purpose`` for the signed-in person, or None."""
    return held_values.read(uow(), g.user.id, purpose, _tokens().get(purpose))


def take(purpose: str) -> Any:
    """What is held under ``purpose``, once: afterwards it is gone from the server and the cookie."""
    tokens = _tokens()
    token = tokens.pop(purpose, None)
    if token is None:
        return None
    session[_COOKIE_KEY] = tokens
    return held_values.take(uow(), g.user.id, purpose, token)
