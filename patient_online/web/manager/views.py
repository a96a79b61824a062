"""/manage/: the practice manager's starting point, with what needs attention first."""

from __future__ import annotations

from flask import g, render_template

from patient_online.services import controls
from patient_online.wiring import uow

from . import bp


@bp.get("/")
def index() -> str:
    views = controls.practice_switch_views(uow(), g.practice)
    return render_template(
        "manager/index.html",
        practice=g.practice,
        views=views,
        shortfalls=[v for v in views if v.below_contract],
    )
