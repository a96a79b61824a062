"""Information governance: the audit hash chain's heads and closed online accounts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created, intpk, text_note

GENESIS_HASH = "0" * 64


class AuditChain(Base):
    """The head of one audit hash chain: one per practice and kind of event (``services/audit_chain.py``).

    ``seq``/``last_hash`` are the newest sealed event; ``anchor_seq``/``anchor_hash`` the newest event removed
    by the retention policy, so that the oldest event kept still proves its place in the chain.
    """

    __tablename__ = "audit_chain"

    chain_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)
    anchor_seq: Mapped[int] = mapped_column(Integer, default=0)
    anchor_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)
    sealed_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class AccountClosure(Base):
    """An online account closed by its owner or by reception; its personal details are anonymised later."""

    __tablename__ = "account_closure"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), unique=True)
    closed_at: Mapped[created]
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    closed_by_role: Mapped[str] = mapped_column(String(30), default="patient")
    reason: Mapped[text_note]
    anonymised_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
