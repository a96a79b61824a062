"""Reception page: the emails and text messages sent to the practice's patients, and whether they arrived."""

from __future__ import annotations

from flask import g, render_template, request

from patient_online.services import messages
from patient_online.wiring import uow

from . import bp

STATUSES = {"": "All messages", "queued": "Waiting to be sent", "failed": "Could not be sent", "sent": "Sent"}


@bp.get("/messages")
def message_list() -> str:
    status = request.args.get("status", "")
    status = status if status in STATUSES else ""
    found = messages.practice_messages(uow(), g.user.id, g.practice.id, status)
    return render_template(
        "reception/messages.html",
        practice=g.practice,
        status=status,
        statuses=STATUSES,
        rows=found.rows,
        counts=found.counts,
    )
