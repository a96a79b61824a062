"""The reception dashboard: what is waiting, and where to go."""

from __future__ import annotations

from flask import g, render_template

from patient_online.services import verification
from patient_online.wiring import clinical_systems, uow

from . import bp


@bp.get("/")
def index() -> str:
    queue = verification.pending_requests(uow(), g.user, g.practice)
    return render_template(
        "reception/index.html", practice=g.practice, waiting=len(queue), link=clinical_systems().link_state(g.practice)
    )
