"""The single gate for staff audiences: signed in, staff, holding the role at the chosen practice."""

from __future__ import annotations

from flask import abort, g, redirect, request, session, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from patient_online.extensions import db
from patient_online.models import Practice


def staff_gate(role: str) -> Response | None:
    """Let through only staff with ``role`` at the practice chosen in the session (or their only one)."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if current_user.kind != "staff":
        abort(403)
    if current_user.must_change_password:  # a temporary password is changed before anything else
        return redirect(url_for("auth.new_password"))
    practice_ids = sorted(m.practice_id for m in current_user.memberships if m.role == role)
    if not practice_ids:
        abort(403)
    wanted = request.args.get("practice", type=int) or session.get("practice_id")
    chosen = wanted if wanted in practice_ids else practice_ids[0]
    session["practice_id"] = chosen
    g.user = current_user._get_current_object()
    g.practice = db.session.get(Practice, chosen)
    g.practices = [db.session.get(Practice, pid) for pid in practice_ids]
    g.role = role
    return None
