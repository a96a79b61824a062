"""Reception pages: verification queue, patients, linkage letters, proxies."""

from __future__ import annotations

from flask import Blueprint
from werkzeug.wrappers import Response

from ..staff_gate import staff_gate

bp = Blueprint("reception", __name__)


@bp.before_request
def _gate() -> Response | None:
    return staff_gate("receptionist")


from . import (  # noqa: E402,F401
    access,
    bookings,
    messages,
    migration,
    patients,
    proxies,
    subject_access,
    verifications,
    views,
)
