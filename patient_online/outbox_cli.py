"""`flask --app app outbox run`: the worker that delivers queued writes to clinical systems, exactly once."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from types import FrameType

import click
from flask import Flask
from flask.cli import AppGroup

from .extensions import db
from .wiring import uow_factory

log = logging.getLogger("patient_online.outbox")
outbox_cli = AppGroup("outbox", help="The durable outbox of writes for clinical systems.")


def init_app(app: Flask) -> None:
    app.cli.add_command(outbox_cli)


def _default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@outbox_cli.command("run")
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@click.option("--interval", type=float, default=5.0, show_default=True, help="Seconds between looks for due messages.")
@click.option("--worker-id", default=None, help="A name unique to this worker (default: host:pid).")
@click.option("--lease", type=float, default=60.0, show_default=True, help="Seconds a claimed message stays ours.")
def outbox_run(once: bool, interval: float, worker_id: str | None, lease: float) -> None:
    """Deliver due messages with retries and backoff; stops cleanly on SIGTERM or Ctrl-C."""
    from .services import appointments, outbox, prescriptions  # noqa: F401  (they register their handlers)

    make_uow = uow_factory()
    worker = worker_id or _default_worker_id()
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo(f"outbox worker {worker} started")
    while not stop.is_set():
        try:
            report = outbox.run_once(make_uow, db.session, worker, lease_seconds=lease, should_stop=stop.is_set)
        except Exception as exc:  # the database hiccuped: our leases keep the messages safe, try again later
            log.exception("outbox worker error", extra={"fields": {"worker": worker, "error_type": type(exc).__name__}})
            click.echo(f"outbox worker {worker}: error {type(exc).__name__}, trying again", err=True)
        else:
            if report.outcomes:
                click.echo(f"outbox worker {worker}: {report}")
        finally:
            db.scoped.remove()
        if once:
            break
        stop.wait(interval)
    click.echo(f"outbox worker {worker} stopped")


@outbox_cli.command("status")
def outbox_status() -> None:
    """How many messages are pending, delivered and failed."""
    from .services import outbox

    found = outbox.counts(uow_factory()(db.session))
    click.echo(", ".join(f"{status.value} {n}" for status, n in found.items()))
