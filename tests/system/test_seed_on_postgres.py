"""`flask db upgrade` on an empty PostgreSQL database, then `demo seed` twice, leaves one consistent demo set."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from tests.conftest import create_postgres_database, drop_postgres_database

from .servers import flask, gateway_env

TABLES = (
    "practice",
    "user_account",
    "patient",
    "account_link",
    "proxy_link",
    "demo_patient",
    "demo_slot",
    "demo_appointment",
    "demo_medication",
    "demo_record_entry",
    "pharmacy",
    "staff_membership",
)


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in TABLES}
    engine.dispose()
    return found


def test_upgrade_then_seed_twice_on_postgresql() -> None:
    url = create_postgres_database()
    try:
        env = gateway_env(url)
        flask(env, "db", "upgrade")
        flask(env, "demo", "seed")
        first = counts(url)
        second_run = flask(env, "demo", "seed")
        assert counts(url) == first
        assert first["practice"] == 2 and first["demo_patient"] >= 120 and first["demo_slot"] > 1000
        assert "system_admin" in second_run.stdout and "TOTP secret" in second_run.stdout
        ready = flask(env, "db", "upgrade")
        assert "up to date" in ready.stdout
    finally:
        drop_postgres_database(url)
