"""Who is signed in, and when their session ends (inactivity, absolute limit, sign-out elsewhere)."""

from __future__ import annotations

import datetime as dt
import time

from flask import Flask, flash, g, session
from flask_login import current_user, login_user, logout_user

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
