"""Patient Online gateway. ``create_app()`` is the only place things are wired together."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from jinja2 import ChainableUndefined, ChoiceLoader, FileSystemLoader, PackageLoader

from . import settings


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: settings, extensions, adapters, blueprints, commands. Connects to nothing yet."""
    app = Flask(
        __name__,
        static_folder=str(settings.PROJECT_ROOT / "static"),
        template_folder=str(settings.PROJECT_ROOT / "templates"),
        instance_path=str(settings.PROJECT_ROOT / "instance"),
    )
    settings.load(app.config, overrides)
    proxies = int(app.config.get("TRUSTED_PROXIES", 0))
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    app.jinja_options = {
        **app.jinja_options,
        "undefined": ChainableUndefined,
        "loader": ChoiceLoader(
            [FileSystemLoader(str(settings.PROJECT_ROOT / "templates")), PackageLoader("nhsuk_frontend_jinja")]
        ),
    }

    from . import logging_setup, server_log
    from .extensions import csrf, db, limiter, login_manager

    logging_setup.init_app(app)
    server_log.init_app()
    db.init_app(app)
    from . import instrumentation

    instrumentation.init_app(app)
    csrf.init_app(app)
    _init_limiter(app, limiter)
    login_manager.init_app(app)

    # Adapters register themselves on import.
    from . import wiring
    from .adapters import demo, gpconnect  # noqa: F401

    wiring.init_app(app)

    from . import cli, web
    from .auth import sessions

    sessions.init_app(app)
    web.init_app(app)
    cli.init_app(app)
    return app


def _init_limiter(app: Flask, limiter: Any) -> None:
    redis_url = app.config.get("REDIS_URL")
    app.config.setdefault("RATELIMIT_STORAGE_URI", redis_url or "memory://")
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "po")
    limiter.init_app(app)
