"""The gateway's own data, as SQLAlchemy 2.x models. The demo clinical system keeps its tables apart."""

from .accounts import OneTimeCode, StaffMembership, User
from .audit import AuditEvent
from .base import Base, utcnow
from .bookings import BookingIntent, BookingRecord
from .contact import ContactPreference
from .governance import AccountClosure, AuditChain
from .held import HeldValue
from .messaging import AppointmentReminder, Notification, OutboxMessage
from .orders import PrescriptionOrder
from .patients import AccountLink, LinkageLetter, LinkRequest, Patient, ProxyLink, Verification
from .practice import Pharmacy, Practice, ServiceSwitch
from .reception import HandledMessage
from .system_ids import PatientSystemId
from .system_migration import MigrationPatient, SystemMigration
from .waitlist import SlotOffer, WaitlistEntry, WaitlistLook

__all__ = [
    "AccountClosure",
    "AccountLink",
    "AppointmentReminder",
    "AuditChain",
    "AuditEvent",
    "Base",
    "BookingIntent",
    "BookingRecord",
    "ContactPreference",
    "HandledMessage",
    "HeldValue",
    "LinkRequest",
    "LinkageLetter",
    "MigrationPatient",
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
    "SlotOffer",
    "StaffMembership",
    "SystemMigration",
    "User",
    "Verification",
    "WaitlistEntry",
    "WaitlistLook",
    "utcnow",
]
