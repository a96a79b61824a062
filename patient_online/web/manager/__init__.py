"""Practice manager pages: services, rules, reports, staff."""

from __future__ import annotations

from flask import Blueprint
from werkzeug.wrappers import Response

from ..staff_gate import staff_gate

bp = Blueprint("manager", __name__)


@bp.before_request
def _gate() -> Response | None:
    return staff_gate("practice_manager")


from . import migration, reports, rules, staff, switches, views  # noqa: E402,F401
