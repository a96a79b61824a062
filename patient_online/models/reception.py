"""What reception has dealt with on its "needs attention" list."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, intpk


class HandledMessage(Base):
    """A repeat request the gateway could not deliver, that reception has dealt with (told the patient): it
    leaves the list. One row per outbox message."""

    __tablename__ = "handled_message"

    id: Mapped[intpk]
    outbox_message_id: Mapped[int] = mapped_column(ForeignKey("outbox_message.id", ondelete="CASCADE"), unique=True)
    handled_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    handled_at: Mapped[dt.datetime]
    how: Mapped[str] = mapped_column(String(20), default="told_patient")
