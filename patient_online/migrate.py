"""Alembic, driven from the app: `flask --app app db upgrade` builds or updates the schema."""

from __future__ import annotations

from alembic.config import Config

from .settings import PROJECT_ROOT


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config
