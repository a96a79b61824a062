"""Information governance commands: `flask audit seal|verify` and `flask retention run [--dry-run]`."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from .extensions import db
from .wiring import uow_factory

audit_cli = AppGroup("audit", help="The audit trail's hash chains.")
retention_cli = AppGroup("retention", help="The retention policy (RETENTION in the settings).")


def init_app(app: Flask) -> None:
    app.cli.add_command(audit_cli)
    app.cli.add_command(retention_cli)


@audit_cli.command("seal")
def audit_seal() -> None:
    """Link new audit events into their hash chains. Run every minute or two; safe to run at any time."""
    from .services import audit_chain

    done = audit_chain.seal(uow_factory()(db.session))
    click.echo(f"Sealed {done.events} audit events in {done.chains} chains.")


@audit_cli.command("verify")
def audit_verify() -> None:
    """Recompute every hash chain; exits with status 1 and names each event that does not match."""
    from .services import audit_chain

    result = audit_chain.verify(db.session)
    db.session.rollback()
    for chain in result.chains:
        click.echo(f"chain {chain.chain_key}: {chain.events} events, {'ok' if not chain.problems else 'BROKEN'}")
    if result.unsealed:
        click.echo(f"{result.unsealed} events are not sealed yet (flask audit seal).")
    if not result.ok:
        for problem in result.problems:
            click.echo(f"problem: {problem}", err=True)
        raise SystemExit(1)
    click.echo("The audit trail is whole.")


@retention_cli.command("run")
@click.option("--dry-run", is_flag=True, help="Only count what the policy would remove, per kind.")
def retention_run(dry_run: bool) -> None:
    """Apply the retention policy: batched, audited, safe to run daily (a second run changes nothing)."""
    from .services import retention

    report = retention.run(uow_factory()(db.session), dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for kind, words in retention.KINDS:
        click.echo(f"{words}: {verb} {report.counts[kind]}")
    click.echo(f"{'Dry run: nothing changed.' if dry_run else 'Done.'} Total {report.total}.")
