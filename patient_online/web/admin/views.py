"""/admin/practices: every practice, its adapter and link state; add practices and set adapters."""

from __future__ import annotations

from flask import render_template
from sqlalchemy import select

from patient_online.adapters import registry
from patient_online.extensions import db
from patient_online.models import Practice
from patient_online.services.clinical import system_for

from . import bp


@bp.get("/")
@bp.get("/practices")
def practices() -> str:
    rows = db.session.scalars(select(Practice).order_by(Practice.ods_code)).all()
    states = {p.id: system_for(p).link_state() for p in rows}
    return render_template("admin/practices.html", practices=rows, states=states, adapters=registry.names())
