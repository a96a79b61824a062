"""Template filters and globals: dates in UK time and words, NHS numbers, the current practice."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, current_app, g, render_template
from markupsafe import Markup

from patient_online.domain.nhs_number import formatted
from patient_online.domain.words import plural

LONDON = ZoneInfo("Europe/London")


def uk_date(value: dt.date | dt.datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.astimezone(LONDON).date()
    return f"{value.day} {value:%B %Y}"


def uk_day(value: dt.date | dt.datetime) -> str:
    if isinstance(value, dt.datetime):
        value = value.astimezone(LONDON).date()
    return f"{value:%A} {value.day} {value:%B %Y}"


def uk_time(value: dt.datetime) -> str:
    local = value.astimezone(LONDON)
    return local.strftime("%-I:%M%p").lower()


def uk_datetime(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return f"{uk_date(value)} at {uk_time(value)}"


def fixed_part(name: str) -> Markup:
    """A part of every page that never changes (``templates/partials/fixed/``: the skip link, the footer),
    rendered once per app instead of on every page; again each time while templates reload (development)."""
    parts: dict[str, Markup] = current_app.extensions.setdefault("fixed_parts", {})
    part = parts.get(name)
    if part is None:
        part = Markup(render_template(f"partials/fixed/{name}.html"))  # noqa: S704 (autoescaped when rendered)
        if not current_app.jinja_env.auto_reload:
            parts[name] = part
    return part


def init_app(app: Flask) -> None:
    app.add_template_filter(uk_date)
    app.add_template_filter(uk_day)
    app.add_template_filter(uk_time)
    app.add_template_filter(uk_datetime)
    app.add_template_filter(formatted, "nhs_number")
    app.add_template_filter(plural)  # {{ n|plural("patient") }}: "1 patient", "2 patients"
    app.add_template_global(fixed_part)

    @app.context_processor
    def _globals() -> dict[str, Any]:
        acting = g.get("acting")
        practice = acting.practice if acting is not None else g.get("practice")
        return {
            "current_practice": practice,
            "acting": acting,
            "service_name": "Patient Online",
            "has_endpoint": lambda name: name in current_app.view_functions,
        }
