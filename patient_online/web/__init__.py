"""Blueprints, one per audience, plus the security headers and error pages every response shares."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from flask import Flask, Response, current_app, g, render_template, request
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from patient_online.domain.errors import ClinicalSystemUnavailable, DomainError, NotAllowed
from patient_online.domain.errors import NotFound as DomainNotFound
from patient_online.extensions import database_unreachable, db, limiter, login_manager
from patient_online.logging_setup import exception_type

log = logging.getLogger("patient_online.web")

# An error page: the body and status, and headers when it has any (Retry-After).
ErrorPage = tuple[str, int] | tuple[str, int, dict[str, str]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'self'; object-src 'none'; frame-ancestors 'none'"
)


def init_app(app: Flask) -> None:
    from patient_online.auth.nhs_login import bp as nhs_login_bp
    from patient_online.auth.views import bp as auth_bp

    from . import public
    from .admin import bp as admin_bp
    from .input import IdConverter, guard_request
    from .manager import bp as manager_bp
    from .patient import bp as patient_bp
    from .reception import bp as reception_bp

    app.url_map.converters["id"] = IdConverter
    app.before_request(guard_request)  # NUL, controls and over-long values in the address or a form body: 400
    app.register_blueprint(public.bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(nhs_login_bp)
    app.register_blueprint(patient_bp)
    app.register_blueprint(reception_bp, url_prefix="/reception")
    app.register_blueprint(manager_bp, url_prefix="/manage")
    app.register_blueprint(admin_bp, url_prefix="/admin")
    from . import demo_system  # the demo clinical system's staff screen

    demo_system.init_app(app)

    app.after_request(_security_headers)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(RateLimitExceeded, _rate_limited)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(NotAllowed, _not_allowed)
    app.register_error_handler(DomainNotFound, _not_found)
    app.register_error_handler(ClinicalSystemUnavailable, _clinical_unavailable)
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(Exception, _server_error)

    from . import filters

    filters.init_app(app)


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers["X-Frame-Options"] = "DENY"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if current_app.config["ENV"] == "production":
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    if request.endpoint not in ("public.assets", "static"):
        headers["Cache-Control"] = "no-store"
    return response


def _page(status: int, template: str, **context: Any) -> ErrorPage:
    """An error page in the full layout (the signed-in person, their practice). Should reading those fail
    because the database has gone, the page that needs nothing takes its place."""
    try:
        db.session.rollback()
        return render_template(template, status=status, **context), status
    except Exception as exc:
        if not database_unreachable(exc):
            raise
        return _server_error(exc)


def _csrf_error(exc: CSRFError) -> ErrorPage:
    return _page(400, "errors/csrf.html")


def _rate_limited(exc: RateLimitExceeded) -> ErrorPage:
    seconds = 60
    current = limiter.current_limit
    if current is not None:
        seconds = max(1, int(current.reset_at - time.time()))
    return _page(429, "errors/429.html", retry_minutes=math.ceil(seconds / 60))


def _http_error(exc: HTTPException) -> ErrorPage | HTTPException:
    code = exc.code or 500
    if code == 403:
        return _refused(str(exc.description or ""))
    if code == 500:  # abort(500), or an error handler that failed in turn (Flask has logged that one)
        original = getattr(exc, "original_exception", None)
        return _service_problem(503 if original is not None and database_unreachable(original) else 500)
    if code in (400, 404, 405, 429):
        return _page(code, f"errors/{code if code != 405 else 404}.html", description=exc.description)
    return exc


def _not_allowed(exc: NotAllowed) -> ErrorPage:
    return _refused(exc.message)


def _refused(description: str) -> ErrorPage:
    """Every refusal is audited: who tried which page (never the query string). With the database out of
    reach the refusal cannot be audited, nor the page shown: the "problem with the service" page is."""
    from flask_login import current_user

    from patient_online.wiring import uow

    try:
        work = uow()
        work.rollback()
        work.audit(
            "access.refused",
            actor_id=current_user.get_id() and int(current_user.get_id()),
            path=request.url_rule.rule if request.url_rule else "",
        )
        work.commit()
        return render_template("errors/403.html", status=403, description=description), 403
    except Exception as exc:
        if not database_unreachable(exc):
            raise
        return _server_error(exc)


def _not_found(exc: DomainNotFound) -> ErrorPage:
    return _page(404, "errors/404.html", description=exc.message)


def _clinical_unavailable(exc: ClinicalSystemUnavailable) -> ErrorPage:
    return _page(503, "errors/clinical_unavailable.html", description=exc.message)


def _domain_error(exc: DomainError) -> ErrorPage:
    # A domain error may say which status is true (403 the practice has not allowed it, 404 not found...).
    return _page(getattr(exc, "http_status", 400), "errors/400.html", description=exc.message)


# How long a patient is asked to wait when the database is out of reach (a restart or a fail-over takes seconds).
RETRY_AFTER_SECONDS = 30


def _server_error(exc: Exception) -> tuple[str, int, dict[str, str]]:
    """Anything unhandled: 503 with Retry-After when the database is out of reach (it will be back), else 500.
    The log line has the traceback and the request id; the page gives the patient the same id to quote."""
    outage = database_unreachable(exc)
    log.error(
        "unhandled error",
        exc_info=exc,
        extra={
            "fields": {
                "error_type": exception_type(exc),
                "database_unreachable": outage,
                "method": request.method,
                "path": request.url_rule.rule if request.url_rule else "unmatched",
            }
        },
    )
    return _service_problem(503 if outage else 500)


def _service_problem(status: int) -> tuple[str, int, dict[str, str]]:
    """The "problem with the service" page, made from the template alone: no context processor runs (they
    read the signed-in person, the practice, the people they act for), the broken session is dropped, so
    nothing here needs the database and the worker's next request starts afresh."""
    db.discard()
    reference = g.get("request_id") or ""
    context = {
        "status": status,
        "reference": reference,
        "service_name": "Patient Online",
        "current_user": login_manager.anonymous_user(),
        "current_practice": None,
        "acting": None,
        "get_flashed_messages": lambda **_: [],  # left in the session for the next page
        "fixed_part": _fixed_part_without_database,
    }
    body = current_app.jinja_env.get_template("errors/500.html").render(context)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else {}
    return body, status, headers


def _fixed_part_without_database(name: str) -> Markup:
    """``fixed_part`` without Flask's render_template, whose context processors would load the user."""
    return Markup(current_app.jinja_env.get_template(f"partials/fixed/{name}.html").render())  # noqa: S704
