"""`flask --app app proxies review`: apply the proxy age rules (design rule 18); safe to run as often as you like."""

from __future__ import annotations

import datetime as dt

import click
from flask import Flask
from flask.cli import AppGroup

from .extensions import db

proxies_cli = AppGroup("proxies", help="Proxy access: people acting for others.")


def init_app(app: Flask) -> None:
    app.cli.add_command(proxies_cli)


@proxies_cli.command("review")
@click.option(
    "--today",
    "today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Apply the rules as on this date (YYYY-MM-DD); default: today in the UK.",
)
def proxies_review(today: dt.datetime | None) -> None:
    """Send notices before a child's review age and 16th birthday, and suspend parental access on the day."""
    from .services import proxy
    from .wiring import uow_factory

    try:
        report = proxy.apply_age_rules(uow_factory()(db.session), today.date() if today else None)
    finally:
        db.scoped.remove()
    click.echo(f"proxy age rules: {report}")
