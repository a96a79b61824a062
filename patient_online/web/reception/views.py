"""The reception dashboard: what is waiting, and where to go."""

from __future__ import annotations

from flask import g, render_template

from patient_online.extensions import db
from patient_online.services import verification
from patient_online.services.clinical import system_for

from . import bp


@bp.get("/")
def index() -> str:
    queue = verification.pending_requests(db.session, g.user, g.practice)
    return render_template(
        "reception/index.html", practice=g.practice, waiting=len(queue), link=system_for(g.practice).link_state()
    )
