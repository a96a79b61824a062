"""System administrator pages: practices and their clinical-system adapters."""

from __future__ import annotations

from flask import Blueprint, abort, g, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

bp = Blueprint("admin", __name__)


@bp.before_request
def _gate() -> Response | None:
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if current_user.kind != "staff" or not current_user.is_system_admin:
        abort(403)
    if current_user.must_change_password:  # a temporary password is changed before anything else
        return redirect(url_for("auth.new_password"))
    g.user = current_user._get_current_object()
    return None


from . import views  # noqa: E402,F401
