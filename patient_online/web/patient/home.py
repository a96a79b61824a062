"""The patient's home page: the services of their practice, and whose account is shown."""

from __future__ import annotations

from flask import g, render_template

from patient_online.domain.access import Service
from patient_online.services.linking import latest_request
from patient_online.wiring import uow

from . import bp


@bp.get("/home")
def home() -> str:
    current = g.acting
    if current is None:
        suspended = [link for link in g.standing.links if link.status == "suspended"]
        return render_template(
            "patient/home_unlinked.html", request_=latest_request(uow(), g.user), suspended=suspended
        )
    return render_template("patient/home.html", acting=current, Service=Service)
