"""`flask --app app outbox run`: the worker that delivers, exactly once, every email and text message (security
codes first) and the writes queued for clinical systems, sends appointment reminders as they fall due, and offers
freed times to the patients waiting for an earlier appointment. `flask reminders run` sends the reminders that are
due now, once; `flask waitlist run` makes one round of offers."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from types import FrameType

import click
from flask import Flask
from flask.cli import AppGroup

from .extensions import db
from .services.outbox import DeliveryReport, Outcome
from .services.waitlist import WaitlistReport
from .wiring import uow_factory

log = logging.getLogger("patient_online.outbox")
outbox_cli = AppGroup("outbox", help="The durable outbox: messages to people, writes for clinical systems.")
reminders_cli = AppGroup("reminders", help="Appointment reminders.")
waitlist_cli = AppGroup("waitlist", help="Earlier appointments: offer freed times to the patients waiting for them.")
REMINDERS_EVERY = 60.0  # seconds between the worker's looks for reminders that are due


def init_app(app: Flask) -> None:
    app.cli.add_command(outbox_cli)
    app.cli.add_command(reminders_cli)
    app.cli.add_command(waitlist_cli)


def _send_reminders() -> str:
    from .services import reminders

    try:
        return str(reminders.send_due_reminders(uow_factory()(db.session)))
    finally:
        db.scoped.remove()


def _offer_earlier_times() -> WaitlistReport:
    from .services import waitlist

    try:
        return waitlist.run(uow_factory()(db.session))
    finally:
        db.scoped.remove()


@waitlist_cli.command("run")
def waitlist_run() -> None:
    """One round: end holds that ran out, and offer free times to the first patient waiting for each (safe to
    run on several workers and nodes at once)."""
    click.echo(_offer_earlier_times())


@reminders_cli.command("run")
def reminders_run() -> None:
    """Send the appointment reminders that are due now (each once, however often this runs)."""
    click.echo(_send_reminders())


def _default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _messages_line(report: DeliveryReport) -> str:
    parts = [
        f"{words} {report.count(outcome)}"
        for outcome, words in (
            (Outcome.DELIVERED, "sent"),
            (Outcome.RETRY, "to try again"),
            (Outcome.FAILED, "could not be sent"),
        )
        if report.count(outcome)
    ]
    return "messages to people: " + ", ".join(parts or ["none"])


@outbox_cli.command("run")
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@click.option("--interval", type=float, default=5.0, show_default=True, help="Seconds between looks for due messages.")
@click.option("--worker-id", default=None, help="A name unique to this worker (default: host:pid).")
@click.option("--lease", type=float, default=60.0, show_default=True, help="Seconds a claimed message stays ours.")
def outbox_run(once: bool, interval: float, worker_id: str | None, lease: float) -> None:
    """Deliver due messages with retries and backoff; stops cleanly on SIGTERM or Ctrl-C."""
    from .services import appointments, messages, outbox, prescriptions  # noqa: F401  (they register handlers)

    make_uow = uow_factory()
    worker = worker_id or _default_worker_id()
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo(f"outbox worker {worker} started")
    reminders_due = 0.0
    while not stop.is_set():
        try:
            uow = make_uow(db.session)
            sent = outbox.deliver_due(uow, worker, lease_seconds=lease, should_stop=stop.is_set, lane=outbox.MESSAGES)
            report = outbox.deliver_due(uow, worker, lease_seconds=lease, should_stop=stop.is_set, lane=outbox.WRITES)
        except Exception as exc:  # the database hiccuped: our leases keep the messages safe, try again later
            log.exception("outbox worker error", extra={"fields": {"worker": worker, "error_type": type(exc).__name__}})
            click.echo(f"outbox worker {worker}: error {type(exc).__name__}, trying again", err=True)
        else:
            if sent.outcomes:
                click.echo(f"outbox worker {worker}: {_messages_line(sent)}")
            if report.outcomes:
                click.echo(f"outbox worker {worker}: {report}")
        finally:
            db.scoped.remove()
        try:  # cheap when nobody is waiting; a practice's book is searched only when its look is due
            offers = _offer_earlier_times()
            if offers.anything_done:
                click.echo(f"outbox worker {worker}: {offers}")
        except Exception as exc:
            log.exception("waitlist error", extra={"fields": {"worker": worker, "error_type": type(exc).__name__}})
        if once:
            break
        if time.monotonic() >= reminders_due and not stop.is_set():  # `flask reminders run` does this on its own
            reminders_due = time.monotonic() + REMINDERS_EVERY
            try:
                click.echo(f"outbox worker {worker}: {_send_reminders()}")
            except Exception as exc:
                log.exception("reminders error", extra={"fields": {"worker": worker, "error_type": type(exc).__name__}})
        stop.wait(interval)
    click.echo(f"outbox worker {worker} stopped")


@outbox_cli.command("status")
def outbox_status() -> None:
    """How many messages are pending, delivered and failed."""
    from .services import outbox

    found = outbox.counts(uow_factory()(db.session))
    click.echo(", ".join(f"{status.value} {n}" for status, n in found.items()))
