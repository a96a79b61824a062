"""Deliver messages to people: the local notifier for the demo and tests, GOV.UK Notify in production.

A notifier is only ever called by the outbox (``services/messages.py``), with no database transaction open,
for a message already written to the ``notification`` table in the transaction of the change it tells of.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from patient_online.domain.errors import DomainError

log = logging.getLogger("patient_online.notify")

EMAIL = "email"
SMS = "sms"


@dataclass(frozen=True)
class OutgoingMessage:
    """One email or text message, as the outbox hands it to a notifier."""

    channel: str  # "email" or "sms"
    to: str
    message_type: str  # e.g. "confirm_email", "appointment_reminder": chooses the GOV.UK Notify template
    subject: str
    body: str
    reference: str  # stable for the message: GOV.UK Notify's reference, and how a resend is recognised
    personalisation: Mapping[str, Any] = field(default_factory=dict)
    maybe_sent: bool = False  # an earlier attempt may have reached the provider


class MessageRefused(DomainError):
    """The provider refused the message for good (a bad address, an unknown template): retrying cannot help."""

    message = "The message was refused."


class MessageProviderUnavailable(RuntimeError):
    """The provider is down, slow or limiting us: the outbox tries again later."""


class Notifier(Protocol):
    def deliver(self, message: OutgoingMessage) -> str:
        """Send ``message``; return the provider's id for it. Raise ``MessageRefused`` for a permanent refusal;
        anything else is tried again later."""
        ...


class LocalOutboxNotifier:
    """The demo and tests: the message's row in the notification table is the mailbox; nothing leaves."""

    def deliver(self, message: OutgoingMessage) -> str:
        return f"local-{message.reference}"


class GovukNotifyNotifier:
    """GOV.UK Notify, through its official client: one template per message type, chosen by id.

    Every template receives the message's own personalisation plus ``subject`` and ``body`` (the text the
    gateway wrote), so a template may use the fields it needs. A message type with no template of its own uses
    ``default_template``.
    """

    def __init__(
        self,
        api_key: str,
        templates: Mapping[str, str],
        default_template: str = "",
        *,
        base_url: str = "",
        timeout: float = 10.0,
    ) -> None:
        from notifications_python_client.notifications import NotificationsAPIClient

        options: dict[str, Any] = {"timeout": timeout}
        if base_url:
            options["base_url"] = base_url
        self._client = NotificationsAPIClient(api_key, **options)  # type: ignore[no-untyped-call]
        self._templates = dict(templates)
        self._default = default_template

    def template_for(self, message_type: str) -> str:
        template = self._templates.get(message_type) or self._default
        if not template:
            raise MessageRefused(f"no GOV.UK Notify template for {message_type}")
        return template

    def deliver(self, message: OutgoingMessage) -> str:
        from notifications_python_client.errors import HTTPError

        template = self.template_for(message.message_type)
        personalisation = {**message.personalisation, "subject": message.subject, "body": message.body}
        try:
            if message.maybe_sent:
                already = self._already_sent(message.reference)
                if already:
                    return already
            if message.channel == SMS:
                answer = self._client.send_sms_notification(  # type: ignore[no-untyped-call]
                    phone_number=message.to,
                    template_id=template,
                    personalisation=personalisation,
                    reference=message.reference,
                )
            else:
                answer = self._client.send_email_notification(  # type: ignore[no-untyped-call]
                    email_address=message.to,
                    template_id=template,
                    personalisation=personalisation,
                    reference=message.reference,
                )
        except HTTPError as exc:
            status = int(getattr(exc, "status_code", 0) or 0)
            if status in (400, 403):  # a bad request or key: sending it again would get the same answer
                raise MessageRefused(f"GOV.UK Notify refused the message ({status})") from None
            raise MessageProviderUnavailable(f"GOV.UK Notify answered {status}") from None
        except Exception as exc:  # timeouts and connection errors
            raise MessageProviderUnavailable(f"GOV.UK Notify unreachable: {type(exc).__name__}") from None
        return str(answer["id"])

    def _already_sent(self, reference: str) -> str:
        """The id of a notification Notify already holds with this reference ('' when none): a worker that
        died after Notify took the message but before it was marked sent must not send it twice."""
        found = self._client.get_all_notifications(reference=reference)  # type: ignore[no-untyped-call]
        for notification in found.get("notifications", []):
            if notification.get("reference") == reference:
                return str(notification["id"])
        return ""


def notifier_from(config: Mapping[str, Any]) -> Notifier:
    """The notifier the settings choose: GOV.UK Notify with ``NOTIFIER=notify``, else the local one."""
    if config.get("NOTIFIER") == "notify":
        return GovukNotifyNotifier(
            config["NOTIFY_API_KEY"],
            dict(config.get("NOTIFY_TEMPLATES") or {}),
            config.get("NOTIFY_TEMPLATE_ID", ""),
            base_url=config.get("NOTIFY_BASE_URL", ""),
            timeout=float(config.get("NOTIFY_TIMEOUT", 10.0)),
        )
    return LocalOutboxNotifier()
