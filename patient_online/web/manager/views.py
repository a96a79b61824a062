"""/manage/: the practice manager's starting point, with what needs attention first."""

from __future__ import annotations

from flask import g, render_template

from patient_online.services import controls
from patient_online.wiring import uow

from . import bp


@bp.get("/")
def index() -> str:
    home = controls.manager_home(uow(), g.practice)
    return render_template(
        "manager/index.html",
        practice=g.practice,
        views=home.views,
        shortfalls=home.shortfalls,
        link=home.link,
    )
