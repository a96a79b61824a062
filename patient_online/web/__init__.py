"""Blueprints, one per audience, plus the security headers and error pages every response shares."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from flask import Flask, Response, current_app, render_template, request
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from patient_online.domain.errors import ClinicalSystemUnavailable, DomainError, NotAllowed
from patient_online.domain.errors import NotFound as DomainNotFound
from patient_online.extensions import db, limiter

log = logging.getLogger("patient_online.web")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'self'; object-src 'none'; frame-ancestors 'none'"
)


def init_app(app: Flask) -> None:
    from patient_online.auth.nhs_login import bp as nhs_login_bp
    from patient_online.auth.views import bp as auth_bp

    from . import public
    from .admin import bp as admin_bp
    from .input import IdConverter
    from .manager import bp as manager_bp
    from .patient import bp as patient_bp
    from .reception import bp as reception_bp

    app.url_map.converters["id"] = IdConverter
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


def _page(status: int, template: str, **context: Any) -> tuple[str, int]:
    db.session.rollback()
    return render_template(template, status=status, **context), status


def _csrf_error(exc: CSRFError) -> tuple[str, int]:
    return _page(400, "errors/csrf.html")


def _rate_limited(exc: RateLimitExceeded) -> tuple[str, int]:
    seconds = 60
    current = limiter.current_limit
    if current is not None:
        seconds = max(1, int(current.reset_at - time.time()))
    return _page(429, "errors/429.html", retry_minutes=math.ceil(seconds / 60))


def _http_error(exc: HTTPException) -> tuple[str, int] | HTTPException:
    code = exc.code or 500
    if code == 403:
        return _refused(str(exc.description or ""))
    if code in (400, 404, 405, 429, 500):
        return _page(code, f"errors/{code if code != 405 else 404}.html", description=exc.description)
    return exc


def _not_allowed(exc: NotAllowed) -> tuple[str, int]:
    return _refused(exc.message)


def _refused(description: str) -> tuple[str, int]:
    """Every refusal is audited: who tried which page (never the query string)."""
    from flask_login import current_user

    from patient_online.wiring import uow

    work = uow()
    work.rollback()
    work.audit(
        "access.refused",
        actor_id=current_user.get_id() and int(current_user.get_id()),
        path=request.url_rule.rule if request.url_rule else "",
    )
    work.commit()
    return render_template("errors/403.html", status=403, description=description), 403


def _not_found(exc: DomainNotFound) -> tuple[str, int]:
    return _page(404, "errors/404.html", description=exc.message)


def _clinical_unavailable(exc: ClinicalSystemUnavailable) -> tuple[str, int]:
    return _page(503, "errors/clinical_unavailable.html", description=exc.message)


def _domain_error(exc: DomainError) -> tuple[str, int]:
    return _page(400, "errors/400.html", description=exc.message)


def _server_error(exc: Exception) -> tuple[str, int]:
    log.exception("unhandled error", extra={"fields": {"error_type": type(exc).__name__}})
    return _page(500, "errors/500.html")
