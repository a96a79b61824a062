"""Benchmark rows for a practice on GP Connect (the local provider simulator) beside one on the demo system.

    python -m bench.gpconnect [--seconds 15] [--clients 16]

On the small scale's data, the second practice is pointed at the simulator for the run (and put back after):
its benchmark patients are added to the simulator under their NHS numbers and ids, its online slot types
become the simulator's. Then, with 300 ms added to every provider answer: slot search, record overview and
booking for 16 patients of that practice (with the provider round trips per slots page), the same for 16
patients of the demo practice, and the signed-in floor page and the mixed visit. Then each journey
run by both practices' patients at once, first with the link at 300 ms and then with 5 s added, in rounds
(three by default) pooled: the demo practice's figures in the two show whether a slow practice slows the others.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from . import load
from .generate import BENCH_PASSWORD, SCALES, accounts, database_url, gateway_env, generate, practice_ods
from .run import REDIS_URL, flush_redis, free_port, gunicorn

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUDGET = 8.0
ROUNDS = 3  # rounds of both practices at once, pooled


@dataclass
class GpcRow:
    practice: str  # "GP Connect" or "demo"
    delay: str  # provider delay
    name: str
    stats: load.Stats
    round_trips: float | None = None  # provider requests per page view (slots)


def _flask(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(  # noqa: S603 (our own interpreter and arguments)
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def _patients(url: str, ods: str) -> list[tuple[str, str]]:
    """(clinical id, NHS number) of the practice's linked patients."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT p.clinical_id, p.nhs_number FROM patient p JOIN practice pr ON pr.id = p.practice_id "
            "WHERE pr.ods_code = %s",
            (ods,),
        ).fetchall()
    return [(str(a), str(b)) for a, b in rows]


def _practice_row(url: str, ods: str) -> tuple[Any, ...]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT adapter_name, adapter_options::text, online_slot_types::text, max_future_appointments "
            "FROM practice WHERE ods_code = %s",
            (ods,),
        ).fetchone()
    assert row is not None, f"no practice {ods}"
    return tuple(row)


def _set_practice(url: str, ods: str, row: Sequence[Any]) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE practice SET adapter_name = %s, adapter_options = %s::json, online_slot_types = %s::json, "
            "max_future_appointments = %s WHERE ods_code = %s",
            (*row, ods),
        )


def _slot_types(url: str, ods: str, types: list[str]) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE practice SET online_slot_types = %s::json, max_future_appointments = 1000 WHERE ods_code = %s",
            (json.dumps(types), ods),
        )


def _add_to_simulator(state: Any, patients: Sequence[tuple[str, str]]) -> None:
    """The practice's patients, each a copy of the simulator's first patient under their own id and number."""
    from tools.gpconnect_simulator import data

    template = data.PATIENTS[0]
    with state.lock:
        for clinical_id, nhs in patients:
            patient = dataclasses.replace(template, id=clinical_id, nhs_number=nhs, medicines=())
            state.patients[nhs] = patient
            state.patients_by_id[clinical_id] = patient


async def _measure(
    users: Sequence[load.User], keys: Sequence[str], args: argparse.Namespace, practice: str, delay: str
) -> list[GpcRow]:
    rows = []
    for key in keys:
        name, journey = load.JOURNEYS[key]
        stats = await load.run_journey(users, journey, args.seconds, args.warm_up)
        rows.append(GpcRow(practice, delay, name, stats))
        _print(rows[-1])
    return rows


async def _side_by_side(
    gpc_users: Sequence[load.User],
    demo_users: Sequence[load.User],
    args: argparse.Namespace,
    delay: str,
    beside: str,
) -> list[GpcRow]:
    """Each journey run by both practices' patients at the same time."""
    rows = []
    for key in ("slots", "record", "book"):
        name, journey = load.JOURNEYS[key]
        theirs, ours = await asyncio.gather(
            load.run_journey(gpc_users, journey, args.seconds, args.warm_up),
            load.run_journey(demo_users, journey, args.seconds, args.warm_up),
        )
        rows += [
            GpcRow("GP Connect", delay, f"{name} (beside the demo practice)", theirs),
            GpcRow("demo", delay, f"{name} ({beside})", ours),
        ]
        _print(rows[-2])
        _print(rows[-1])
    return rows


def _pooled(rounds: Sequence[Sequence[GpcRow]]) -> list[GpcRow]:
    """Each row's windows from every round as one row."""
    return [
        dataclasses.replace(first, stats=load.Stats.pooled([each[i].stats for each in rounds]))
        for i, first in enumerate(rounds[0])
    ]


def _close_breakers() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    found = list(client.scan_iter(match="po:breaker:*", count=500))
    if found:
        client.delete(*found)


def _print(row: GpcRow) -> None:
    s = row.stats
    trips = f"  provider round trips/page {row.round_trips:.2f}" if row.round_trips is not None else ""
    print(
        f"  {row.practice:10} +{row.delay:6} {row.name:44} {s.rps:6.1f} req/s  p50 {s.percentile(50):7.1f}  "
        f"p95 {s.percentile(95):7.1f} ms  errors {s.errors}{trips}"
        + (f" (last: {s.last_error})" if s.last_error else ""),
        flush=True,
    )


class Simulator:
    """The provider simulator in a process of its own (so its work does not share the load generator's CPU
    time), driven through its control endpoint."""

    def __init__(self, patients: Sequence[tuple[str, str]], folder: Path) -> None:
        listing = folder / "bench-simulator-patients.json"
        listing.write_text(json.dumps(list(patients)))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            [sys.executable, "-m", "bench.gpconnect", "--serve-simulator", str(self.port), str(listing)],
            cwd=PROJECT_ROOT,
        )
        for _ in range(100):
            try:
                self.control()
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise SystemExit("the provider simulator did not start")

    def control(self, **settings: Any) -> dict[str, Any]:
        reply = httpx.post(f"{self.url}/_control", json=settings, timeout=10)
        reply.raise_for_status()
        found: dict[str, Any] = reply.json()
        return found

    def requests(self) -> int:
        return int(self.control()["requests"])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def serve_simulator(port: int, listing: Path) -> None:
    """Run the simulator with the benchmark practice's patients added, until stopped."""
    from tools.gpconnect_simulator import SimulatorServer

    server = SimulatorServer(("127.0.0.1", port))
    _add_to_simulator(server.state, json.loads(listing.read_text()))
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    server.serve_forever()


async def _drive(base: str, simulator: Simulator, args: argparse.Namespace) -> list[GpcRow]:
    scale = SCALES["small"]
    chosen = list(accounts(scale))
    half = scale.bench_per_practice
    demo_users = [load.User(base, e, BENCH_PASSWORD, s) for e, s in chosen[: args.clients]]
    gpc_users = [load.User(base, e, BENCH_PASSWORD, s) for e, s in chosen[half : half + args.clients]]
    rows: list[GpcRow] = []
    try:
        await load.sign_in_all([*demo_users, *gpc_users])
        simulator.control(delay=0.3)
        for key in ("slots", "record", "book"):
            name, journey = load.JOURNEYS[key]
            seen = simulator.requests()
            stats = await load.run_journey(gpc_users, journey, args.seconds, args.warm_up)
            row = GpcRow("GP Connect", "300 ms", name, stats)
            if key == "slots" and stats.requests:
                # every provider request made during warm-up and window, over every slots page in both
                trips = simulator.requests() - seen
                row.round_trips = trips / max(1, stats.requests * (args.seconds + args.warm_up) / args.seconds)
            rows.append(row)
            _print(row)
        rows += await _measure(gpc_users, ("floor", "mixed"), args, "GP Connect", "300 ms")
        rows += await _measure(demo_users, ("slots", "record", "book", "floor", "mixed"), args, "demo", "-")

        # Both practices' patients at once: first with the GP Connect link healthy, then slow. The demo
        # practice's figures are compared between the two, so only the link's speed differs (the load
        # generator and the server carry the same patients in both).
        # Rounds of healthy then slow, pooled: one window of each varies more than the 10% to be judged.
        healthy, slow = [], []
        for round_ in range(1, args.rounds + 1):
            print(f"  round {round_} of {args.rounds}, both practices at once", flush=True)
            simulator.control(delay=0.3)
            healthy.append(await _side_by_side(gpc_users, demo_users, args, "300 ms", "beside the practice at 300 ms"))
            simulator.control(delay=5)
            slow.append(await _side_by_side(gpc_users, demo_users, args, "5 s", "beside the slow practice"))
            simulator.control(delay=0)
            await asyncio.sleep(6)  # calls still waiting on the slow provider end
            _close_breakers()  # the next round's healthy link starts with its breaker closed, as it would be
        rows += _pooled(healthy) + _pooled(slow)
    finally:
        simulator.control(delay=0)
        for user in [*demo_users, *gpc_users]:
            await user.close()
    return rows


def table(rows: Sequence[GpcRow]) -> str:
    lines = [
        "| practice's system | provider delay | journey | req/s | p50 ms | p95 ms | provider round trips per page "
        "| errors |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        s = row.stats
        trips = f"{row.round_trips:.2f}" if row.round_trips is not None else "-"
        errors = str(s.errors) + (f" ({s.conflicts} conflicts)" if s.conflicts else "")
        lines.append(
            f"| {row.practice} | {row.delay} | {row.name} | {s.rps:.1f} | {s.percentile(50):.0f} | "
            f"{s.percentile(95):.0f} | {trips} | {errors} |"
        )
    return "\n".join(lines)


def targets(rows: Sequence[GpcRow], clients: int) -> list[str]:
    def find(practice: str, delay: str, name: str) -> GpcRow | None:
        return next((r for r in rows if r.practice == practice and r.delay == delay and r.name.startswith(name)), None)

    out = []
    slots = find("GP Connect", "300 ms", "slot search")
    if slots:
        trips = slots.round_trips or 0.0
        p95 = slots.stats.percentile(95)
        met = trips <= 1.0 and p95 < 1500
        out.append(
            f"- With 300 ms: at most one provider round trip per slots page on average and p95 under 1.5 s at "
            f"{clients} clients: {'**met**' if met else '**not met**'} ({trips:.2f} round trips, p95 {p95:.0f} ms)"
        )
    slow = [r for r in rows if r.practice == "GP Connect" and r.delay == "5 s"]
    if slow:
        worst = max(r.stats.percentile(95) for r in slow)
        met = worst <= (BUDGET + 1) * 1000
        out.append(
            f"- With 5 s: p95 within the page budget + 1 s ({BUDGET + 1:.0f} s): {'**met**' if met else '**not met**'} "
            f"(worst p95 {worst:.0f} ms)"
        )
    healthy = _ratios(find, "300 ms")
    if healthy:
        met = all(r <= 1.10 for _n, r in healthy)
        out.append(
            "- With 5 s: the demo practice's p95 unchanged within 10% of the same traffic with the link healthy "
            f"(300 ms): {'**met**' if met else '**not met**'} ({_figures(healthy)})"
        )
    alone = _ratios(find, "-")
    if alone:
        out.append(
            "- For comparison, against the demo practice's patients alone (the other practice's idle, so the "
            f"server and the load generator carry half the patients): {_figures(alone)}"
        )
    return out


def _ratios(find: Any, baseline: str) -> list[tuple[str, float]]:
    """The demo practice's p95 beside the slow practice over its p95 in the ``baseline`` rows, per journey."""
    ratios = []
    for name in ("slot search", "record overview", "book then cancel"):
        base, beside = find("demo", baseline, name), find("demo", "5 s", name)
        if base and beside and base.stats.percentile(95):
            ratios.append((name, beside.stats.percentile(95) / base.stats.percentile(95)))
    return ratios


def _figures(ratios: Sequence[tuple[str, float]]) -> str:
    return ", ".join(f"{n} {r:.2f}x" for n, r in ratios)


def run(args: argparse.Namespace) -> str:
    """Run the GP Connect rows; return the report's section (markdown)."""
    from tools.gpconnect_simulator import PROVIDER_ASID, PROVIDER_ODS, data

    scale = SCALES["small"]
    generate(scale)
    url = database_url(scale, "postgresql")
    ods = practice_ods(1)
    saved = _practice_row(url, ods)
    flush_redis()
    env = gateway_env(
        scale,
        PATIENT_ONLINE_REDIS_URL=REDIS_URL,
        PATIENT_ONLINE_LOG_LEVEL="WARNING",
        PATIENT_ONLINE_CLINICAL_PAGE_BUDGET_SECONDS=str(BUDGET),
    )
    simulator = Simulator(_patients(url, ods), Path(tempfile.mkdtemp(prefix="po-bench-")))
    try:
        options = [
            f"base_url={simulator.url}",
            f"provider_asid={PROVIDER_ASID}",
            "consumer_asid=200000000359",
            f"provider_ods={PROVIDER_ODS}",
            "read_timeout=10",
        ]
        _flask(env, "practice", "set-adapter", ods, "gpconnect", *[a for o in options for a in ("--option", o)])
        _slot_types(url, ods, sorted({s.service_type for s in data.SCHEDULES}))
        with gunicorn(env, args.workers, args.threads) as (base, _master):
            rows = load.run(_drive(base, simulator, args))
    finally:
        _set_practice(url, ods, saved)
        simulator.stop()
    lines = [
        f"GP Connect rows: practice {ods} on the provider simulator (in a process of its own), "
        f"practice {practice_ods(0)} on the demo system; {args.clients} clients each, {args.seconds:.0f} s per row "
        f"after {args.warm_up:.0f} s of warm-up ({args.rounds} rounds pooled where both run at once); "
        f"page budget {BUDGET:.0f} s; load average "
        f"{os.getloadavg()[0]:.1f} at the end.",
        "",
        table(rows),
        "",
        *targets(rows, args.clients),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warm-up", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds of both practices at once, pooled")
    parser.add_argument("--serve-simulator", nargs=2, metavar=("PORT", "PATIENTS_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_simulator:
        serve_simulator(int(args.serve_simulator[0]), Path(args.serve_simulator[1]))
        return
    # Stopped (SIGTERM): unwind normally, so the practice is put back and the servers this run started stop.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    print(run(args))


if __name__ == "__main__":
    main()
