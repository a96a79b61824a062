"""Send messages to people: a local outbox for the demo and tests, GOV.UK Notify in production."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy.orm import Session

from patient_online.models import Notification


class Notifier(Protocol):
    def send_email(self, session: Session, to: str, template: str, subject: str, body: str) -> None: ...


class LocalOutboxNotifier:
    """Keeps every message in the notification table, where the demo shows it and tests read it."""

    def send_email(self, session: Session, to: str, template: str, subject: str, body: str) -> None:
        session.add(Notification(to=to, channel="email", template=template, subject=subject, body=body))


class GovukNotifyNotifier:
    """GOV.UK Notify, through its official client; one generic template carries subject and body."""

    def __init__(self, api_key: str, template_id: str) -> None:
        from notifications_python_client.notifications import NotificationsAPIClient

        self._client = NotificationsAPIClient(api_key)  # type: ignore[no-untyped-call]
        self._template_id = template_id

    def send_email(self, session: Session, to: str, template: str, subject: str, body: str) -> None:
        self._client.send_email_notification(  # type: ignore[no-untyped-call]
            email_address=to,
            template_id=self._template_id,
            personalisation={"subject": subject, "body": body},
            reference=template,
        )


def notifier_from(config: Mapping[str, Any]) -> Notifier:
    """The notifier the settings choose: GOV.UK Notify with ``NOTIFIER=notify``, else the local outbox."""
    if config.get("NOTIFIER") == "notify":
        return GovukNotifyNotifier(config["NOTIFY_API_KEY"], config.get("NOTIFY_TEMPLATE_ID", ""))
    return LocalOutboxNotifier()
