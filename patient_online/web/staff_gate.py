"""The single gate for staff audiences: signed in, staff, holding the role at the chosen practice."""

from __future__ import annotations

from flask import abort, g, redirect, request, session, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from patient_online.domain.errors import NotAllowed
from patient_online.extensions import db
from patient_online.models import Practice
from patient_online.services import staff
from patient_online.wiring import uow


def staff_gate(role: str) -> Response | None:
    """Let through only staff with ``role`` at the practice chosen (``?practice=<id>``, the header's practice
    switcher), else the one chosen before in this session, else their first; a move between practices is audited."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if current_user.kind != "staff":
        abort(403)
    if current_user.must_change_password:  # a temporary password is changed before anything else
        return redirect(url_for("auth.new_password"))
    user = current_user._get_current_object()
    try:
        chosen = staff.choose_practice(
            uow(), user, role, request.args.get("practice", type=int), session.get("practice_id")
        )
    except NotAllowed:
        abort(403)
    session["practice_id"] = chosen
    practice_ids = sorted(m.practice_id for m in user.memberships if m.role == role)
    g.user = user
    g.practice = db.session.get(Practice, chosen)
    g.practices = [db.session.get(Practice, pid) for pid in practice_ids]
    g.role = role
    return None
