"""Short-lived values the web pages keep on the server, not in the browser's cookie.

The session cookie is signed but anyone holding it can read it, so what a page must remember between two
requests that is personal or secret (the medicines an order form offered, a Linkage Key waiting to be
printed) is kept here, sealed, and the cookie carries only a random token. The row is found by a hash of
the token and sealed with a key derived from it, so neither the cookie alone nor this table alone reveals
the value. Rows expire; every gunicorn node sees the same rows.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime


class HeldValue(Base):
    """One value held for one account until it is taken or expires."""

    __tablename__ = "held_value"

    # A hash of the token the cookie holds (never the token itself).
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(40))
    sealed: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
