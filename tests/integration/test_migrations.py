"""The migrations build the schema from empty on SQLite and PostgreSQL, and match the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import patient_online.adapters.demo.models  # noqa: F401
from patient_online.extensions import make_engine
from patient_online.migrate import alembic_config
from patient_online.models import Base
from tests.conftest import PROJECT_ROOT, drop_database, new_database_url


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migrations_match_models(kind: str, tmp_path: Path) -> None:
    url = new_database_url(kind, tmp_path)
    engine = make_engine(url, PROJECT_ROOT)
    try:
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
        assert differences == [], f"models and migrations disagree: {differences}"
    finally:
        engine.dispose()
        drop_database(url)
