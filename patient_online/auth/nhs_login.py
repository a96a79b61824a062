"""/login/nhs and /login/nhs/callback: sign in with NHS login."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from patient_online.domain.identity import (
    IdentityProvider,
    IdentityProviderUnavailable,
    IdentityRefused,
    LinkOutcome,
    NHSLoginBelongsElsewhere,
)
from patient_online.extensions import limiter
from patient_online.services import nhs_login
from patient_online.wiring import nhs_login_client, uow

from .sessions import start_session

bp = Blueprint("nhs_login", __name__)
log = logging.getLogger("patient_online.nhs_login")


def _client() -> IdentityProvider:
    try:
        client = nhs_login_client()
    except (OSError, ValueError) as exc:  # the client key file or a setting is wrong: NHS login cannot be offered
        raise IdentityProviderUnavailable(f"NHS login client not configured ({type(exc).__name__})") from exc
    if client is None:
        abort(404)
    return client


@bp.get("/login/nhs")
@limiter.limit("30 per 15 minutes")
def start() -> Response | tuple[str, int]:
    try:
        asked = nhs_login.begin_sign_in(_client())
    except IdentityProviderUnavailable as exc:
        return _unavailable(exc.reason)
    session["nhs_login"] = {"state": asked.state, "nonce": asked.nonce}
    return redirect(asked.url)


@bp.get("/login/nhs/callback")
@limiter.limit("30 per 15 minutes")
def callback() -> Response | tuple[str, int]:
    pending = session.pop("nhs_login", None)
    if request.args.get("error"):
        flash("You did not finish signing in with NHS login. Try again, or sign in with your email address.", "info")
        return redirect(url_for("auth.login"))
    if not pending or request.args.get("state") != pending.get("state") or not request.args.get("code"):
        return _refused("state missing or wrong", audited=False)
    try:
        result = nhs_login.finish_sign_in(uow(), _client(), request.args["code"], pending["nonce"])
    except IdentityProviderUnavailable as exc:
        return _unavailable(exc.reason)
    except NHSLoginBelongsElsewhere as exc:
        log.warning("nhs login refused", extra={"fields": {"reason": exc.reason}})
        return render_template("auth/nhs_login_elsewhere.html"), 409
    except IdentityRefused as exc:
        return _refused(exc.reason, audited=True)
    start_session(result.user)
    linked = result.outcome in (LinkOutcome.LINKED, LinkOutcome.ALREADY_LINKED)
    if result.separate_account:
        page = render_template(
            "auth/nhs_login_separate.html", outcome=result.outcome.value, linked=linked, level=result.proofing_level
        )
        return page, 200
    if linked:
        if result.outcome is LinkOutcome.LINKED:
            flash("You signed in with NHS login and your account is linked to your GP record.", "success")
        return redirect(url_for("patient.home"))
    return render_template("auth/nhs_login_more.html", outcome=result.outcome.value, level=result.proofing_level), 200


def _unavailable(reason: str) -> tuple[str, int]:
    """NHS login could not be reached or did not answer: say so, and offer the way in that does not need it."""
    log.warning("nhs login unavailable", extra={"fields": {"reason": reason}})
    return render_template("auth/nhs_login_unavailable.html"), 503


def _refused(reason: str, *, audited: bool) -> tuple[str, int]:
    log.warning("nhs login refused", extra={"fields": {"reason": reason}})
    if not audited:
        nhs_login.refuse_sign_in(uow(), reason)
    return render_template("auth/nhs_login_failed.html"), 400
