"""`flask practice migrate ODS ...`: a practice's move to another clinical system, one step per run.

flask practice migrate Y02001 --plan demo --option copy=2 --start 2026-12-05T18:00 --end 2026-12-07T08:00
flask practice migrate Y02001 --dry-run        # the match report, changing nothing
flask practice migrate Y02001 --freeze         # at the window's start
flask practice migrate Y02001 --cut-over       # switch the adapter and match every linked patient
flask practice migrate Y02001 --match          # ask the new system again for those still waiting
flask practice migrate Y02001 --rollback       # within the window
flask practice migrate Y02001 --done
flask practice migrate Y02001 --demo-copy      # demo only: a second copy of the practice's demo data
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from .cli import adapter_options
from .extensions import db

LONDON = ZoneInfo("Europe/London")
STEPS = ("dry_run", "freeze", "cut_over", "match", "rollback", "done", "demo_copy", "status")


def _when(text: str) -> dt.datetime:
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter("Give a date and time like 2026-12-05T18:00 (UK time).") from exc
    return at.replace(tzinfo=LONDON) if at.tzinfo is None else at


@click.command("migrate")
@with_appcontext
@click.argument("ods_code")
@click.option("--plan", "target", help="Plan a move to this adapter (with --option, --start and --end).")
@click.option("--option", "options", multiple=True, help="name=value for the target adapter, repeat for each")
@click.option("--start", help="When changes pause (UK time, 2026-12-05T18:00)")
@click.option("--end", help="When the window ends: rollback is possible until then (UK time)")
@click.option("--message", default="", help="What patients read while changes are paused (a default is written)")
@click.option("--dry-run", "dry_run", is_flag=True, help="Print the match report against the target; change nothing.")
@click.option("--freeze", is_flag=True, help="Pause bookings, cancellations and orders; hold queued writes.")
@click.option("--cut-over", "cut_over", is_flag=True, help="Switch to the new system and match every patient.")
@click.option("--match", is_flag=True, help="Ask the new system again for patients still waiting.")
@click.option("--rollback", is_flag=True, help="Go back to the old system, ids and queued writes (within the window).")
@click.option("--done", is_flag=True, help="Close the plan: the change is complete.")
@click.option("--demo-copy", "demo_copy", is_flag=True, help="Demo only: copy the practice's demo data as copy 2.")
@click.option("--status", is_flag=True, help="Show the plan.")
@click.option("--batch-size", default=50, show_default=True, help="Patients asked per batch.")
def migrate(
    ods_code: str,
    target: str | None,
    options: tuple[str, ...],
    start: str | None,
    end: str | None,
    message: str,
    batch_size: int,
    **steps: bool,
) -> None:
    """Move a practice to another clinical system, one step at a time (see docs/migration.md)."""
    from .domain.errors import DomainError
    from .services import system_migration as service
    from .wiring import uow_factory

    chosen = [name for name in STEPS if steps.get(name)]
    if len(chosen) + (1 if target else 0) != 1:
        raise click.UsageError("Choose one step: --plan, --dry-run, --freeze, --cut-over, --match, --rollback, --done.")
    uow = uow_factory()(db.session)
    raw = adapter_options(options)
    try:
        if target:
            if not start or not end:
                raise click.UsageError("A plan needs --start and --end.")
            view = service.plan_migration(uow, None, ods_code, target, raw, _when(start), _when(end), message)
            click.echo(f"Planned: {view.practice_name} moves from {view.source_adapter} to {view.target_adapter}.")
            click.echo(f"Patients will read: {view.patient_message}")
        elif steps["dry_run"]:
            report = service.rehearse(uow, ods_code, batch_size=batch_size)
            click.echo("Rehearsal (nothing was changed):")
            _print(report)
        elif steps["freeze"]:
            view = service.freeze(uow, None, ods_code)
            click.echo(f"{view.practice_name}: bookings, cancellations and orders are paused.")
        elif steps["cut_over"]:
            _print(service.cut_over(uow, None, ods_code, batch_size=batch_size))
        elif steps["match"]:
            _print(service.match_patients(uow, None, ods_code, batch_size=batch_size))
        elif steps["rollback"]:
            view = service.roll_back(uow, None, ods_code)
            click.echo(f"{view.practice_name} is back on {view.source_adapter}, with every patient's old id.")
        elif steps["done"]:
            view = service.finish(uow, None, ods_code)
            click.echo(f"{view.practice_name}: the change of clinical system is finished.")
        elif steps["demo_copy"]:
            _demo_copy(ods_code)
        else:
            found = service.view_plan(uow, ods_code)
            click.echo("No plan." if found is None else f"{found.practice_name}: {found.state.label}, {found.report}")
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc


def _demo_copy(ods_code: str) -> None:
    if not current_app.config["DEMO_DATA_ENABLED"] or current_app.config["ENV"] == "production":
        raise click.ClickException("Demo data is switched off here (it is never allowed in production).")
    from .adapters.demo.seed import copy_practice

    space = copy_practice(db.session, ods_code.strip().upper())
    db.session.commit()
    click.echo(f"Demo data copied as '{space}'. Plan the move with: --plan demo --option copy=2")


def _print(report: object) -> None:
    from .services.system_migration import MatchReport

    assert isinstance(report, MatchReport)
    for line in report.lines():
        click.echo(line)
    for waiting in report.waiting:
        click.echo(f"  {waiting.nhs_number}  {waiting.name}: {waiting.reason}")


def init_app(app: Flask) -> None:
    from .cli import practice_cli

    practice_cli.add_command(migrate)
