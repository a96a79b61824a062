"""Messages with fakes: every email and text is queued in the caller's transaction and sent by the outbox (never
from inside the use case), retried while the provider is down, given up on when refused, security codes first;
mobile numbers are confirmed with a code; text messages say nothing clinical."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from patient_online.domain.errors import InputError
from patient_online.models import Notification, OutboxMessage
from patient_online.services import contact_preferences as contact
from patient_online.services import messages, outbox, reminders
from patient_online.services.notify import MessageProviderUnavailable, MessageRefused
from tests.fakes import FakeUnitOfWork
from tests.unit.conftest import acting

TO = "sam.jones@example.org"


def deliver(uow: FakeUnitOfWork, **options: object) -> list[outbox.Outcome]:
    return outbox.deliver_due(uow, "w1", lane=outbox.MESSAGES, **options).outcomes  # type: ignore[arg-type]


def row(uow: FakeUnitOfWork, reference: str | None) -> Notification:
    found = uow.session.scalars(select(Notification).where(Notification.reference == reference)).one()
    uow.session.refresh(found)
    return found


def test_an_email_is_queued_with_the_change_and_sent_by_the_outbox(uow: FakeUnitOfWork) -> None:
    note = uow.send_email(TO, "appointment_booked", "Booked", "Tuesday at 9:30am")
    assert uow.notifier.delivered == []  # nothing leaves from inside the use case
    uow.commit()
    [message] = uow.session.scalars(select(OutboxMessage)).all()
    assert message.kind == "message.email" and message.idempotency_key == note.reference and message.priority == 0
    assert deliver(uow) == [outbox.Outcome.DELIVERED]
    [sent] = uow.notifier.delivered
    assert (sent.to, sent.message_type, sent.subject, sent.reference) == (
        TO,
        "appointment_booked",
        "Booked",
        note.reference,
    )
    assert row(uow, note.reference).status == "sent" and row(uow, note.reference).provider_id == "fake-1"
    assert deliver(uow) == []


def test_a_message_of_a_change_that_rolled_back_is_never_sent(uow: FakeUnitOfWork) -> None:
    uow.send_email(TO, "appointment_booked", "Booked", "Body")
    uow.rollback()
    assert deliver(uow) == [] and uow.notifier.delivered == []


def test_the_provider_down_delays_the_message_and_it_is_sent_once_later(uow: FakeUnitOfWork) -> None:
    uow.settings = {"OUTBOX_BACKOFF_BASE": 30}
    note = uow.send_email(TO, "appointment_booked", "Booked", "Body")
    uow.commit()
    uow.notifier.failures.extend([MessageProviderUnavailable("503"), MessageProviderUnavailable("429")])
    assert deliver(uow) == [outbox.Outcome.RETRY]
    assert deliver(uow) == []  # waiting for its next try
    uow.clock.advance(seconds=31)  # type: ignore[attr-defined]
    assert deliver(uow) == [outbox.Outcome.RETRY]
    uow.clock.advance(seconds=61)  # type: ignore[attr-defined]
    assert deliver(uow) == [outbox.Outcome.DELIVERED]
    assert len(uow.notifier.delivered) == 1 and uow.notifier.delivered[0].maybe_sent  # a retry checks first
    assert row(uow, note.reference).status == "sent"


def test_a_refused_message_is_given_up_and_marked_failed(uow: FakeUnitOfWork) -> None:
    note = uow.send_email("nobody", "appointment_booked", "Booked", "Body")
    uow.commit()
    uow.notifier.failures.append(MessageRefused("bad address"))
    assert deliver(uow) == [outbox.Outcome.FAILED]
    assert row(uow, note.reference).status == "failed"


def test_security_codes_are_sent_before_other_messages(uow: FakeUnitOfWork) -> None:
    for n in range(3):
        uow.send_email(TO, "appointment_booked", f"Booked {n}", "Body")
    code = uow.send_email(TO, "sign_in", "Your security code", "Your security code is 123456.")
    uow.commit()
    assert code.priority and uow.urgent_messages == [code.reference]
    assert deliver(uow, limit=1) == [outbox.Outcome.DELIVERED]
    assert [m.reference for m in uow.notifier.delivered] == [code.reference]


def test_a_security_code_is_sent_at_once_after_the_commit(uow: FakeUnitOfWork) -> None:
    code = uow.send_email(TO, "confirm_email", "Confirm", "Your security code is 123456.")
    uow.commit()
    assert messages.send_now(uow, [code.reference, "never-committed"]) == [outbox.Outcome.DELIVERED]
    assert row(uow, code.reference).status == "sent"


def test_a_key_makes_a_message_once_only(uow: FakeUnitOfWork) -> None:
    uow.send_email(TO, "prescription_status", "Issued", "Body", key="rx:1:issued")
    uow.commit()
    assert messages.already_queued(uow, "rx:1:issued") and not messages.already_queued(uow, "rx:1:ready")


def test_messages_and_clinical_writes_are_separate_lanes(uow: FakeUnitOfWork) -> None:
    uow.send_email(TO, "appointment_booked", "Booked", "Body")
    uow.commit()
    assert outbox.deliver_due(uow, "w1").outcomes == []  # the writes lane has nothing
    assert deliver(uow) == [outbox.Outcome.DELIVERED]


# Mobile numbers and choices ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "typed", ["07700 900123", "07700900123", "+44 7700 900123", "0044 7700 900 123", "(07700) 900-123"]
)
def test_uk_mobile_numbers_as_people_write_them(typed: str) -> None:
    assert contact.uk_mobile(typed) == "+447700900123"
    assert contact.display_mobile(contact.uk_mobile(typed)) == "07700 900123"


@pytest.mark.parametrize("typed", ["", "01632 960000", "0770090012", "077009001234", "+1 202 555 0100", "seven"])
def test_other_numbers_are_refused_plainly(typed: str) -> None:
    with pytest.raises(InputError) as refused:
        contact.uk_mobile(typed)
    assert refused.value.field == "mobile" and "UK mobile number" in refused.value.message


def _code(uow: FakeUnitOfWork) -> str:
    body = uow.session.scalars(
        select(Notification.body).where(Notification.channel == "sms").order_by(Notification.id.desc())
    ).first()
    found = re.search(r"\b(\d{6})\b", str(body))
    assert found
    return found[1]


def test_a_mobile_number_is_confirmed_with_a_code_sent_by_text(uow: FakeUnitOfWork) -> None:
    uow.settings = {"SECRET_KEY": "k"}
    who = acting(uow)
    with pytest.raises(InputError):
        contact.set_channels(uow, who.user, {contact.APPOINTMENTS: "both"})  # no number yet
    assert contact.start_mobile_change(uow, who.user, "07700 900123") == "07700 900123"
    [text] = uow.session.scalars(select(Notification).where(Notification.channel == "sms")).all()
    assert text.to == "+447700900123" and text.priority
    with pytest.raises(InputError, match="not correct"):
        contact.confirm_mobile(uow, who.user, "000000" if _code(uow) != "000000" else "111111")
    contact.confirm_mobile(uow, who.user, _code(uow))
    assert contact.verified_mobile(uow, who.user.id) == "+447700900123"
    contact.set_channels(uow, who.user, {contact.APPOINTMENTS: "both", contact.PRESCRIPTIONS: "both"})
    assert contact.choices(uow, who.user).channels == {
        contact.APPOINTMENTS: "both",
        contact.PRESCRIPTIONS: "both",
        contact.SECURITY: "email",
    }
    assert contact.wants(uow, who.user.id, contact.APPOINTMENTS, "email")
    assert contact.wants(uow, who.user.id, contact.PRESCRIPTIONS, "sms")
    assert not contact.wants(uow, who.user.id, contact.SECURITY, "sms")
    # An email about a prescription brings a short text beside it; nothing clinical in it.
    uow.send_email(who.user.email, "prescription_status", "Issued", "Amlodipine 5mg tablets were sent to Boots")
    uow.commit()
    alert = uow.session.scalars(select(Notification).where(Notification.template == "prescriptions_alert")).one()
    assert alert.to == "+447700900123" and "Amlodipine" not in alert.body
    contact.remove_mobile(uow, who.user)
    assert not contact.wants(uow, who.user.id, contact.PRESCRIPTIONS, "sms")
    assert "contact.mobile_confirmed" in uow.audit_actions()


def test_an_expired_or_overused_mobile_code_is_refused(uow: FakeUnitOfWork) -> None:
    uow.settings = {"SECRET_KEY": "k"}
    who = acting(uow)
    contact.start_mobile_change(uow, who.user, "07700 900123")
    code = _code(uow)
    uow.clock.advance(minutes=16)  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="expired"):
        contact.confirm_mobile(uow, who.user, code)
    assert contact.verified_mobile(uow, who.user.id) == ""


# Nothing clinical by text -----------------------------------------------------------------------------------
CLINICAL = ["Painful swollen knee", "knee", "Amlodipine", "Ramipril", "reason", "medicine", "tablets"]


def every_sms(uow: FakeUnitOfWork) -> list[str]:
    """Every text message the gateway writes, rendered with sample data that includes a reason and medicines."""
    uow.settings = {"SECRET_KEY": "k"}
    who = acting(uow)
    contact.start_mobile_change(uow, who.user, "07700 900123")
    start = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)
    texts = [reminders.sms_text("Riverside Medical Centre", start, "Room 4"), *messages.TEXT_ALERTS.values()]
    texts += list(uow.session.scalars(select(Notification.body).where(Notification.channel == "sms")))
    return texts


def test_no_text_message_says_anything_clinical(uow: FakeUnitOfWork) -> None:
    texts = every_sms(uow)
    assert len(texts) >= 2
    for text in texts:
        assert len(text) <= 306  # two text messages at most
        for word in CLINICAL:
            assert word.lower() not in text.lower(), f"{word!r} in a text message: {text}"
