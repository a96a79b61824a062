"""The durable outbox's messages: writes a clinical system could not take at once."""

from __future__ import annotations

import enum


class MessageStatus(enum.StrEnum):
    """Where a queued write stands; stored as its value."""

    PENDING = "pending"  # waiting to be delivered (or being delivered under a lease)
    DELIVERED = "delivered"  # the clinical system took it
    FAILED = "failed"  # given up: a permanent refusal or too many attempts
    WITHDRAWN = "withdrawn"  # taken back before it was sent (the patient cancelled it): never delivered
