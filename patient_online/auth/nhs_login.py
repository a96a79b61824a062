"""/login/nhs and /login/nhs/callback: sign in with NHS login."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from patient_online.domain.identity import IdentityProvider, IdentityRefused, LinkOutcome
from patient_online.extensions import limiter
from patient_online.services import nhs_login
from patient_online.wiring import nhs_login_client, uow

from .sessions import start_session

bp = Blueprint("nhs_login", __name__)
log = logging.getLogger("patient_online.nhs_login")


def _client() -> IdentityProvider:
    client = nhs_login_client()
    if client is None:
        abort(404)
    return client


@bp.get("/login/nhs")
@limiter.limit("30 per 15 minutes")
def start() -> Response:
    try:
        asked = nhs_login.begin_sign_in(_client())
    except (IdentityRefused, OSError, ValueError) as exc:
        log.warning("nhs login unavailable", extra={"fields": {"error_type": type(exc).__name__}})
        flash("NHS login is not available at the moment. Sign in with your email address instead.", "info")
        return redirect(url_for("auth.login"))
    session["nhs_login"] = {"state": asked.state, "nonce": asked.nonce}
    return redirect(asked.url)


@bp.get("/login/nhs/callback")
@limiter.limit("30 per 15 minutes")
def callback() -> Response | str | tuple[str, int]:
    pending = session.pop("nhs_login", None)
    if request.args.get("error"):
        flash("You did not finish signing in with NHS login. Try again, or sign in with your email address.", "info")
        return redirect(url_for("auth.login"))
    if not pending or request.args.get("state") != pending.get("state") or not request.args.get("code"):
        return _refused("state missing or wrong", audited=False)
    try:
        result = nhs_login.finish_sign_in(uow(), _client(), request.args["code"], pending["nonce"])
    except IdentityRefused as exc:
        return _refused(exc.reason, audited=True)
    start_session(result.user)
    if result.outcome in (LinkOutcome.LINKED, LinkOutcome.ALREADY_LINKED):
        if result.outcome is LinkOutcome.LINKED:
            flash("You signed in with NHS login and your account is linked to your GP record.", "success")
        return redirect(url_for("patient.home"))
    return render_template("auth/nhs_login_more.html", outcome=result.outcome.value, level=result.proofing_level)


def _refused(reason: str, *, audited: bool) -> tuple[str, int]:
    log.warning("nhs login refused", extra={"fields": {"reason": reason}})
    if not audited:
        nhs_login.refuse_sign_in(uow(), reason)
    return render_template("auth/nhs_login_failed.html"), 400
