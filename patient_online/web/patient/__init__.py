"""Patient pages. One gate for the whole audience: signed in, a patient account."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, request, session, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from patient_online.domain.errors import NotAllowed
from patient_online.extensions import db
from patient_online.services.access import Acting, standing

bp = Blueprint("patient", __name__)


@bp.before_request
def _gate() -> Response | None:
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if current_user.kind != "patient":
        abort(403)
    g.user = current_user._get_current_object()
    try:
        g.standing = standing(db.session, g.user, session.get("acting_for"), g.get("account"))
    except NotAllowed:
        # The proxy link ended or was suspended while in use: back to the person's own record, and say so.
        session.pop("acting_for", None)
        db.session.rollback()
        flash("You can no longer act for that person, so you are back in your own account.", "info")
        return redirect(url_for("patient.proxy"))
    g.acting = g.standing.acting
    return None


def acting() -> Acting:
    """The linked patient the page is for; patients who are not linked yet are sent to /link."""
    current: Acting | None = g.get("acting")
    if current is None:
        abort(redirect(url_for("patient.link")))
    return current


from . import (  # noqa: E402,F401
    account,
    appointments,
    contact,
    earlier,
    home,
    link,
    my_data,
    prescriptions,
    proxy,
    record,
)
