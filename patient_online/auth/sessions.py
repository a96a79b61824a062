"""Who is signed in, and when their session ends (inactivity, absolute limit, sign-out elsewhere)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from flask import (
    Flask,
    current_app,
    flash,
    g,
    get_flashed_messages,
    jsonify,
    redirect,
    render_template,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from patient_online.extensions import db, login_manager
from patient_online.models import User
from patient_online.services.access import signed_in_account


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Sign in to continue."
    login_manager.session_protection = "strong"

    @login_manager.user_loader  # type: ignore[misc]
    def _load(user_id: str) -> User | None:
        account = signed_in_account(db.session, int(user_id))
        if account is None:
            return None
        g.account = account  # the patient gate reuses the links read with the user
        user = account.user
        if not user.active or session.get("epoch") != user.session_epoch:
            return None
        return user

    @app.before_request
    def _expire() -> None:
        if not session.get("_user_id"):
            return
        now = time.time()
        idle = dt.timedelta(minutes=float(app.config["SESSION_IDLE_MINUTES"])).total_seconds()
        absolute = dt.timedelta(hours=float(app.config["SESSION_ABSOLUTE_HOURS"])).total_seconds()
        seen = float(session.get("seen_at", 0))
        started = float(session.get("auth_at", 0))
        if now - seen > idle or now - started > absolute:
            end_session()
            flash("For your security, you were signed out. Sign in again to continue.", "info")
            return
        # Noted again once a twentieth of the idle limit has passed (a minute of twenty), not on every page:
        # an unchanged session is not signed and sent again with every response. A session can so end up to
        # that much sooner after the last page, never later.
        if now - seen > idle / 20:
            session["seen_at"] = now

    app.add_url_rule("/session/stay-signed-in", "stay_signed_in", stay_signed_in, methods=["POST"])
    app.add_url_rule("/session/timed-out", "timed_out", timed_out, methods=["POST"])
    app.add_url_rule("/signed-out", "signed_out", signed_out_page)
    app.add_template_global(session_timeout)


def idle_seconds() -> float:
    return dt.timedelta(minutes=float(current_app.config["SESSION_IDLE_MINUTES"])).total_seconds()


def seconds_left() -> float:
    """How long this browser's session has before the idle limit ends it (as the next request would see it)."""
    return max(0.0, float(session.get("seen_at", 0)) + idle_seconds() - time.time())


def session_timeout(user: Any) -> dict[str, Any] | None:
    """What the timeout warning needs on a signed-in page (WCAG 2.2.1): the time left, when to warn, and the
    limit in words for the line that explains it without JavaScript. None when nobody is signed in.

    ``user`` is the page's own ``current_user``: the "problem with the service" page passes an anonymous one,
    so nothing here loads the user from the database."""
    if user is None or not user.is_authenticated:
        return None
    warning = float(current_app.config.get("SESSION_WARNING_SECONDS", 120))
    return {
        "seconds_left": int(seconds_left()),
        "warning_seconds": int(min(warning, idle_seconds())),
        "idle_words": duration_words(idle_seconds()),
    }


def duration_words(seconds: float) -> str:
    """ "20 minutes", "1 minute", "30 seconds": the idle limit as the page says it."""
    whole = round(seconds)
    if whole >= 60 and whole % 60 == 0:
        minutes = whole // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{whole} second{'s' if whole != 1 else ''}"


def stay_signed_in() -> tuple[Response, int]:
    """ "Stay signed in" in the timeout warning: the session counts as used now. 401 when it has already ended
    (the warning then shows the signed-out page). CSRF-protected like every POST."""
    if not current_user.is_authenticated:
        return jsonify(signed_in=False), 401
    session["seen_at"] = time.time()
    return jsonify(signed_in=True, seconds_left=int(idle_seconds())), 200


def timed_out() -> Response:
    """The warning ran out with no answer: end this browser's session (other devices keep theirs, as when the
    idle limit ends a session on its own) and say so."""
    end_session()
    return redirect(url_for("signed_out"))


def signed_out_page() -> Response | str:
    if current_user.is_authenticated:
        return redirect(url_for("public.index"))
    get_flashed_messages()  # "you were signed out" from the idle check says the same as this page
    return render_template("auth/signed_out.html", idle_words=duration_words(idle_seconds()))


def start_session(user: User) -> None:
    """Sign the user in on this browser, with a fresh session."""
    session.clear()
    login_user(user)
    session.permanent = False
    session["epoch"] = user.session_epoch
    session["auth_at"] = session["seen_at"] = time.time()


def end_session() -> None:
    logout_user()
    session.clear()


def signed_in_user() -> User | None:
    """The signed-in account itself (not Flask-Login's proxy, which would follow a new sign-in mid-request)."""
    return current_user._get_current_object() if current_user.is_authenticated else None
