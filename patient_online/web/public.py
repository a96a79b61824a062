"""Pages anyone may see, static front-end assets, and the operations endpoints."""

from __future__ import annotations

from typing import Any

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, jsonify, redirect, render_template, send_from_directory, url_for
from flask_login import current_user
from sqlalchemy import select, text
from werkzeug.wrappers import Response

from patient_online.extensions import db
from patient_online.migrate import alembic_config
from patient_online.models import Practice
from patient_online.settings import PROJECT_ROOT
from patient_online.wiring import clinical_systems

bp = Blueprint("public", __name__)


@bp.get("/")
def index() -> Response | str:
    if current_user.is_authenticated:
        from patient_online.auth.views import landing_for

        return redirect(landing_for(current_user))
    return render_template("public/index.html")


@bp.get("/assets/<path:filename>")
def assets(filename: str) -> Response:
    """NHS.UK frontend's installed assets, served where its stylesheet expects them."""
    return send_from_directory(PROJECT_ROOT / "static" / "nhsuk", filename, max_age=3600)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when the database answers, migrations are current and we know each practice's link state."""
    body: dict[str, Any] = {"database": "ok", "migrations": "unknown", "practices": {}}
    ready = True
    try:
        conn = db.session.connection()
        conn.execute(text("SELECT 1"))
        current = MigrationContext.configure(conn).get_current_heads()
        head = ScriptDirectory.from_config(alembic_config()).get_heads()
        body["migrations"] = "current" if set(current) == set(head) else "behind"
        ready = ready and body["migrations"] == "current"
    except Exception as exc:  # the point is to report, not to fail
        db.session.rollback()
        body["database"] = f"unavailable ({type(exc).__name__})"
        return jsonify(status="unavailable", **body), 503
    for practice in db.session.scalars(select(Practice).order_by(Practice.ods_code)):
        try:
            state = clinical_systems().link_state(practice)
            body["practices"][practice.ods_code] = {
                "adapter": practice.adapter_name,
                "link": "up" if state.ok else "down",
                "detail": state.detail,
            }
        except Exception as exc:
            body["practices"][practice.ods_code] = {
                "adapter": practice.adapter_name,
                "link": f"error ({type(exc).__name__})",
            }
    return jsonify(status="ready" if ready else "not ready", **body), 200 if ready else 503


@bp.get("/help")
def help_page() -> str:
    return render_template("public/help.html")


@bp.get("/accessibility")
def accessibility() -> str:
    return render_template("public/accessibility.html")


@bp.get("/privacy")
def privacy() -> str:
    """The privacy notice: each practice is the controller, the deployment's operator the processor."""
    from flask import current_app

    return render_template(
        "public/privacy.html",
        operator_name=current_app.config.get("OPERATOR_NAME", ""),
        operator_contact=current_app.config.get("OPERATOR_CONTACT", ""),
        retention=current_app.config.get("RETENTION", {}),
    )


@bp.get("/cookies")
def cookies() -> str:
    """The cookies the service sets: only strictly necessary ones (checked against a signed-in journey)."""
    from flask import current_app

    return render_template("public/cookies.html", session_cookie=current_app.config["SESSION_COOKIE_NAME"])


@bp.get("/favicon.ico")
def favicon() -> Response:
    return redirect(url_for("public.assets", filename="images/favicon.ico"))
