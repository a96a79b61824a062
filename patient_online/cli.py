"""Command line: `flask --app app <group> <command>` (db, demo, staff, practice, outbox)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from alembic import command
from flask import Flask, current_app
from flask.cli import AppGroup

from .extensions import db
from .migrate import alembic_config, db_downgrade

db_cli = AppGroup("db", help="Database schema.")
db_cli.add_command(db_downgrade)
demo_cli = AppGroup("demo", help="The demo practices, patients and accounts.")
staff_cli = AppGroup("staff", help="Staff accounts.")
practice_cli = AppGroup("practice", help="Practices on the gateway.")


def init_app(app: Flask) -> None:
    for group in (db_cli, demo_cli, staff_cli, practice_cli):
        app.cli.add_command(group)
    from . import ig_cli, outbox_cli, proxies_cli

    ig_cli.init_app(app)
    outbox_cli.init_app(app)
    proxies_cli.init_app(app)
    from . import migration_cli

    migration_cli.init_app(app)


def upgrade_database() -> None:
    """Bring the schema up to the newest migration."""
    assert db.engine is not None
    with db.engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Create or update the schema to the newest migration."""
    upgrade_database()
    click.echo("Database is up to date.")


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Write a new migration from the difference between the models and the database."""
    assert db.engine is not None
    with db.engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.revision(config, message=message, autogenerate=True)


@demo_cli.command("seed")
@click.option("--accounts-json", type=click.Path(dir_okay=False, path_type=Path), help="Write the demo sign-ins here.")
def demo_seed(accounts_json: Path | None) -> None:
    """Seed (or top up) the demo practices, clinical data and sign-in accounts. Safe to run again."""
    if not current_app.config["DEMO_DATA_ENABLED"] or current_app.config["ENV"] == "production":
        raise click.ClickException("Demo data is switched off here (it is never allowed in production).")
    from .adapters.demo.seed import seed

    accounts = seed(db.session)
    if accounts_json:
        accounts_json.write_text(json.dumps(accounts, indent=2))
    click.echo(_accounts_text(accounts))


def _accounts_text(accounts: list[dict[str, object]]) -> str:
    lines = [
        "",
        "Demo sign-in accounts (password, then the 6-digit code from an authenticator app holding the secret):",
    ]
    for a in accounts:
        extra = f" NHS {a['nhs_number']}" if a.get("nhs_number") else ""
        if a.get("acts_for"):
            extra += f" acts for {', '.join(a['acts_for'])}"  # type: ignore[arg-type]
        lines.append(
            f"  {a['role']:<17} {a['email']:<40} password {a['password']}  TOTP secret {a['totp_secret']}"
            f"  practice {a['practice_ods'] or '-'}{extra}"
        )
    lines.append("Get the current 6-digit code for a secret with:  flask --app app demo code SECRET")
    return "\n".join(lines)


@demo_cli.command("code")
@click.argument("secret")
def demo_code(secret: str) -> None:
    """Print the current authenticator code for a demo TOTP secret."""
    import pyotp

    click.echo(pyotp.TOTP(secret).now())


@staff_cli.command("create")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--role", type=click.Choice(["system_admin", "practice_manager", "receptionist"]), default="system_admin")
@click.option("--practice", "practice_ods", help="ODS code (for practice roles)")
@click.option("--name", default="")
def staff_create(email: str, password: str, role: str, practice_ods: str | None, name: str) -> None:
    """Create a staff account; it must enrol an authenticator app at first sign-in."""
    from .domain.errors import InputError
    from .services import staff
    from .wiring import uow_factory

    try:
        created = staff.create_staff(
            uow_factory()(db.session), email=email, password=password, role=role, practice_ods=practice_ods, name=name
        )
    except InputError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"Created {role} {created.email}. They set up their authenticator app at first sign-in.")


@practice_cli.command("add")
@click.argument("ods_code")
@click.argument("name")
@click.option("--phone", default="")
@click.option("--address", default="")
def practice_add(ods_code: str, name: str, phone: str, address: str) -> None:
    """Add a practice (demo adapter until set-adapter is used)."""
    from .domain.errors import InputError
    from .services import practices
    from .wiring import uow_factory

    try:
        practice = practices.add_practice(uow_factory()(db.session), ods_code, name, phone=phone, address=address)
    except InputError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"Added {practice.ods_code} {practice.name}.")


def adapter_options(options: tuple[str, ...]) -> dict[str, str]:
    """Adapter options given on the command line as ``--option name=value``."""
    raw = {}
    for item in options:
        if "=" not in item:
            raise click.ClickException(f"Give options as name=value, not '{item}'.")
        key, value = item.split("=", 1)
        raw[key.strip()] = value.strip()
    return raw


@practice_cli.command("set-adapter")
@click.argument("ods_code")
@click.argument("adapter")
@click.option("--option", "options", multiple=True, help="name=value, repeat for each option")
def practice_set_adapter(ods_code: str, adapter: str, options: tuple[str, ...]) -> None:
    """Point a practice at a clinical-system adapter, validating its options."""
    from .domain.errors import DomainError
    from .services import practices
    from .wiring import uow_factory

    raw = adapter_options(options)
    try:
        practice = practices.set_adapter(uow_factory()(db.session), ods_code, adapter, raw, actor_id=None)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{practice.ods_code} now uses the {adapter} adapter.")
    from .services import system_ids

    # Each system has its own ids for patients: find every patient of the practice again by NHS number.
    try:
        report = system_ids.refind_practice_patients(uow_factory()(db.session), practice.ods_code)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(
        f"Patients found again at the new system: {report.found} found ({report.changed} with a new id), "
        f"{report.not_found} not found, {report.failed} not reached (try again later)."
    )
