"""The patient's home page: every service they can use, whose account is shown, and for a proxy what they may
do for the person they act for."""

from __future__ import annotations

from typing import Any

from flask import g, render_template, url_for

from patient_online.domain.access import Service
from patient_online.domain.record import RecordLevel, sections_for
from patient_online.services.linking import latest_request
from patient_online.wiring import uow

from . import bp


def _someone_else() -> dict[str, Any]:
    """Where "Manage online services for someone else" leads: the people they act for when there are any,
    else straight to the request form (nobody has to know the word "proxy" to find it)."""
    acts_for_anyone = bool(g.standing.proxies)
    return {
        "href": url_for("patient.proxy") if acts_for_anyone else url_for("patient.proxy_request"),
        "acts_for_anyone": acts_for_anyone,
        "has_own_record": any(link.status == "active" for link in g.standing.links),
    }


@bp.get("/home")
def home() -> str:
    current = g.acting
    if current is None:
        suspended = [link for link in g.standing.links if link.status == "suspended"]
        return render_template(
            "patient/home_unlinked.html",
            request_=latest_request(uow(), g.user),
            suspended=suspended,
            someone_else=_someone_else(),
        )
    level = current.access.record_level if current.access.allows(Service.RECORD) else RecordLevel.NONE
    return render_template(
        "patient/home.html",
        acting=current,
        Service=Service,
        sections=sections_for(level) if level > RecordLevel.NONE else [],
        level=level,
        proxy_level=RecordLevel(current.proxy.record_level) if current.proxy else None,
        someone_else=_someone_else(),
    )
