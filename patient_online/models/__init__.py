"""The gateway's own data, as SQLAlchemy 2.x models. The demo clinical system keeps its tables apart."""

from .accounts import OneTimeCode, StaffMembership, User
from .audit import AuditEvent
from .base import Base, utcnow
from .bookings import BookingIntent, BookingRecord
from .held import HeldValue
from .messaging import Notification, OutboxMessage
from .orders import PrescriptionOrder
from .patients import AccountLink, LinkageLetter, LinkRequest, Patient, ProxyLink, Verification
from .practice import Pharmacy, Practice, ServiceSwitch
from .system_ids import PatientSystemId

__all__ = [
    "AccountLink",
    "AuditEvent",
    "Base",
    "BookingIntent",
    "BookingRecord",
    "HeldValue",
    "LinkRequest",
    "LinkageLetter",
    "Notification",
    "OneTimeCode",
    "OutboxMessage",
    "Patient",
    "PatientSystemId",
    "Pharmacy",
    "Practice",
    "PrescriptionOrder",
    "ProxyLink",
    "ServiceSwitch",
    "StaffMembership",
    "User",
    "Verification",
    "utcnow",
]
