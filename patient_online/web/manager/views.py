"""Practice manager pages."""

from __future__ import annotations

from flask import g, render_template

from . import bp


@bp.get("/")
def index() -> str:
    return render_template("manager/index.html", practice=g.practice)
