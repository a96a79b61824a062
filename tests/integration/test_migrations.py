"""The migrations build the schema from empty on SQLite and PostgreSQL, and match the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

import patient_online.adapters.demo.models  # noqa: F401
from patient_online.extensions import db, make_engine
from patient_online.migrate import alembic_config, current_revision
from patient_online.models import Base
from tests.conftest import PROJECT_ROOT, TEST_SETTINGS, drop_database, new_database_url


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


Schema = dict[str, tuple[tuple[str, ...], tuple[str, ...]]]


def _schema(engine: Engine) -> Schema:
    """Each table's columns and indexes, as the database itself describes them."""
    seen = inspect(engine)
    return {
        table: (
            tuple(sorted(f"{c['name']} {c['type']} {c['nullable']}" for c in seen.get_columns(table))),
            tuple(sorted(f"{i['name']} {i['column_names']} {i['unique']}" for i in seen.get_indexes(table))),
        )
        for table in seen.get_table_names()
        if table != "alembic_version"
    }


def _revisions() -> list[str]:
    """Every migration, oldest first, read from the migrations folder (not listed here: more are added)."""
    script = ScriptDirectory.from_config(alembic_config())
    ordered = [revision.revision for revision in script.walk_revisions("base", "heads")]
    return list(reversed(ordered))


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_flask_db_downgrade_undoes_each_migration_down_to_base_and_up_again(kind: str, tmp_path: Path) -> None:
    """Up one migration at a time noting the schema; then `flask db downgrade` (one step each) must give back
    exactly the schema of the revision before, down to an empty database; then up to head again."""
    from patient_online import create_app

    url = new_database_url(kind, tmp_path)
    engine = make_engine(url, PROJECT_ROOT)
    bound = db.factory.kw.get("bind"), db.engine
    revisions = _revisions()
    assert revisions[0] == "0001" and len(set(revisions)) == len(revisions)
    try:
        schemas: dict[str | None, Schema] = {None: _schema(engine)}
        for revision in revisions:
            _upgrade(engine, revision)
            assert current_revision(engine) == revision
            schemas[revision] = _schema(engine)

        cli = create_app({**TEST_SETTINGS, "DATABASE_ENGINE": engine}).test_cli_runner()
        below: list[str | None] = [None, *revisions[:-1]]
        for revision, previous in reversed(list(zip(revisions, below, strict=True))):
            done = cli.invoke(args=["db", "downgrade"])
            assert done.exit_code == 0, done.output
            assert current_revision(engine) == previous, f"downgrade from {revision}"
            assert _schema(engine) == schemas[previous], f"downgrading {revision} did not undo it"
        assert _schema(engine) == {}

        refused = cli.invoke(args=["db", "downgrade"])
        assert refused.exit_code != 0 and "Cannot downgrade" in refused.output, "nothing left to undo"

        _upgrade(engine, "head")
        assert _schema(engine) == schemas[revisions[-1]]
        done = cli.invoke(args=["db", "downgrade", "base"])
        assert done.exit_code == 0, done.output
        assert _schema(engine) == {}
        _upgrade(engine, "head")
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        db.factory.configure(bind=bound[0])
        db.engine = bound[1]
        engine.dispose()
        drop_database(url)


def _upgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
