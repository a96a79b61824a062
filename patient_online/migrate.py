"""Alembic, driven from the app: `flask --app app db upgrade` builds or updates the schema, and
`flask --app app db downgrade [REVISION]` takes it back (one migration by default), for undoing a release."""

from __future__ import annotations

import click
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import Engine

from .settings import PROJECT_ROOT


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def downgrade_schema(engine: Engine, revision: str = "-1") -> None:
    """Take the schema back to ``revision``: a revision id, ``-N`` for N migrations back, or ``base`` for
    nothing at all. One transaction: on PostgreSQL a downgrade that fails half-way changes nothing."""
    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None before the first migration, or after a downgrade to base)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@click.command("downgrade")
@click.argument("revision", default="-1")
def db_downgrade(revision: str) -> None:
    """Take the schema back to REVISION (default -1: undo the newest migration applied; "base": everything)."""
    from .extensions import db

    assert db.engine is not None
    before = current_revision(db.engine)
    try:
        downgrade_schema(db.engine, revision)
    except CommandError as exc:  # e.g. -1 with nothing applied, or a revision that does not exist
        raise click.ClickException(f"Cannot downgrade to {revision}: {exc}") from exc
    after = current_revision(db.engine)
    click.echo(f"Database downgraded from {before or 'base'} to {after or 'base'}.")
