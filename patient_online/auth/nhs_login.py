"""/login/nhs and /login/nhs/callback: sign in with NHS login."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from patient_online.extensions import db, limiter
from patient_online.services import audit
from patient_online.services.nhs_login import LinkOutcome, sign_in_with_nhs_login

from .oidc import OIDCError, RelyingParty
from .sessions import start_session

bp = Blueprint("nhs_login", __name__)
log = logging.getLogger("patient_online.nhs_login")


def relying_party() -> RelyingParty:
    """Built once per app from settings; discovery and keys are fetched on first use."""
    cached: RelyingParty | None = current_app.extensions.get("nhs_login_rp")
    if cached is None:
        config = current_app.config
        if not config.get("NHS_LOGIN_ISSUER"):
            abort(404)
        key_path = Path(config["NHS_LOGIN_PRIVATE_KEY_PATH"])
        cached = RelyingParty(
            issuer=config["NHS_LOGIN_ISSUER"],
            client_id=config["NHS_LOGIN_CLIENT_ID"],
            private_key_pem=key_path.read_text(),
            redirect_uri=config.get("NHS_LOGIN_REDIRECT_URI") or url_for("nhs_login.callback", _external=True),
            scopes=config["NHS_LOGIN_SCOPES"],
            vtr=config["NHS_LOGIN_VTR"],
        )
        current_app.extensions["nhs_login_rp"] = cached
    return cached


@bp.get("/login/nhs")
@limiter.limit("30 per 15 minutes")
def start() -> Response:
    try:
        url, state, nonce = relying_party().authorization_url()
    except (OIDCError, OSError, ValueError) as exc:
        log.warning("nhs login unavailable", extra={"fields": {"error_type": type(exc).__name__}})
        flash("NHS login is not available at the moment. Sign in with your email address instead.", "info")
        return redirect(url_for("auth.login"))
    session["nhs_login"] = {"state": state, "nonce": nonce}
    return redirect(url)


@bp.get("/login/nhs/callback")
@limiter.limit("30 per 15 minutes")
def callback() -> Response | str | tuple[str, int]:
    pending = session.pop("nhs_login", None)
    if request.args.get("error"):
        flash("You did not finish signing in with NHS login. Try again, or sign in with your email address.", "info")
        return redirect(url_for("auth.login"))
    if not pending or request.args.get("state") != pending.get("state") or not request.args.get("code"):
        return _refuse("state missing or wrong")
    try:
        identity = relying_party().redeem(request.args["code"], pending["nonce"])
    except OIDCError as exc:
        return _refuse(exc.reason)
    result = sign_in_with_nhs_login(db.session, identity)
    start_session(result.user)
    if result.outcome in (LinkOutcome.LINKED, LinkOutcome.ALREADY_LINKED):
        if result.outcome is LinkOutcome.LINKED:
            flash("You signed in with NHS login and your account is linked to your GP record.", "success")
        return redirect(url_for("patient.home"))
    return render_template("auth/nhs_login_more.html", outcome=result.outcome.value, level=identity.proofing_level)


def _refuse(reason: str) -> tuple[str, int]:
    log.warning("nhs login refused", extra={"fields": {"reason": reason}})
    audit.record(db.session, "sign_in.failed", stage="nhs_login", reason=reason)
    db.session.commit()
    return render_template("auth/nhs_login_failed.html"), 400
