"""`make bench`: generate the data, serve the gateway with gunicorn as in production, drive the journeys,
print one table and write docs/benchmarks.md.

    python -m bench.run [--scales small,large] [--seconds 20] [--clients 32] [--fresh]

For each scale: the data is generated (or reused when it is there and current), gunicorn starts with
config/gunicorn.conf.py (2 workers x 20 threads, its default, max-requests off so each worker's peak memory can be
read), benchmark patients sign in through the real forms (measured apart: password hashing is slow on
purpose), then every journey runs for a fixed time at 32 concurrent clients after a short warm-up, the
minimal endpoint (/healthz) first as the stack's ceiling. SQL statements per request come from the app's
X-Query-Count header (PATIENT_ONLINE_QUERY_COUNT_HEADER=true); peak memory is each worker's VmHWM from
/proc, reset before each journey.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from . import load
from .generate import BENCH_PASSWORD, SCALES, Scale, accounts, database_url, gateway_env, generate

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DOCS = PROJECT_ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
PATIENT_PAGES = ("home", "slots", "book", "template", "order", "record", "section")
FAST_PAGES = ("slots", "template", "record", "section")  # target 5
PACED = "@half"  # the key suffix of a page measured again at half the rate it was served at 32 busy clients


@dataclass
class Row:
    scale: str
    key: str
    name: str
    stats: load.Stats
    peak_mb: float
    cpu: ServerCpu | None = None


@dataclass
class ScaleResult:
    scale: Scale
    rows: list[Row] = field(default_factory=list)
    generated_seconds: str = ""
    load_average: float = 0.0  # of the machine (1 minute) when the scale's journeys ended
    database_mb: float = 0.0
    table_rows: str = ""


# Gunicorn and its workers ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gunicorn(env: dict[str, str], workers: int, threads: int) -> Iterator[tuple[str, int]]:
    """Serve the app as production does (config/gunicorn.conf.py); yields the base URL and master pid."""
    port = free_port()
    run_env = {
        **env,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": str(threads),
        "GUNICORN_MAX_REQUESTS": "0",
        "GUNICORN_LOGLEVEL": "warning",
    }
    # The server's log goes to a file: a pipe nobody reads fills up and then stops every worker thread that logs.
    log_file = tempfile.NamedTemporaryFile(prefix="po-bench-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "app:app"],
        cwd=PROJECT_ROOT,
        env=run_env,
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if (
                    httpx.get(f"{base}/healthz", timeout=1).status_code == 200
                    and len(worker_pids(process.pid)) >= workers
                ):
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not start:\n{Path(log_file.name).read_text()[-5000:]}")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log_file.close()
        errors = Path(log_file.name).read_text(errors="replace")
        if errors.strip():
            print(f"  (the server logged {len(errors.splitlines())} lines: {log_file.name})", flush=True)
        else:
            Path(log_file.name).unlink()


def worker_pids(master: int) -> list[int]:
    try:
        text = Path(f"/proc/{master}/task/{master}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@dataclass
class ServerCpu:
    """CPU seconds the gateway's workers and PostgreSQL's processes spent during a journey's window."""

    workers: float = 0.0
    database: float = 0.0

    def per_request(self, stats: load.Stats) -> str:
        if not stats.requests:
            return "-"
        return f"{self.workers / stats.requests * 1000:.1f} + {self.database / stats.requests * 1000:.1f}"


def cpu_seconds(pids: Sequence[int]) -> ServerCpu:
    """CPU time so far of the workers, and of every PostgreSQL process on the machine (its backends serve them)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = ServerCpu()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        if int(entry.name) in pids:
            found.workers += seconds
        elif name.startswith("postgres"):
            found.database += seconds
    return found


class CpuWindow:
    """Reads the server's CPU when the load generator's recorded window opens and closes."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = pids
        self.used = ServerCpu()
        self._start = ServerCpu()

    def __call__(self, opening: bool) -> None:
        now = cpu_seconds(self.pids)
        if opening:
            self._start = now
        else:
            self.used = ServerCpu(now.workers - self._start.workers, now.database - self._start.database)


def reset_peaks(pids: Sequence[int]) -> None:
    """Start each worker's peak resident memory (VmHWM) again from its current size (Linux clear_refs 5)."""
    for pid in pids:
        # Where this is not allowed the peak covers the worker's whole life, which is still an upper bound.
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_mb(pids: Sequence[int]) -> float:
    """The largest peak resident memory of the workers, in MB."""
    peaks = [0.0]
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        found = re.search(r"VmHWM:\s+(\d+) kB", status)
        if found:
            peaks.append(int(found.group(1)) / 1024)
    return max(peaks)


# One scale ---------------------------------------------------------------------------------------------------
def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def run_scale(scale: Scale, args: argparse.Namespace) -> ScaleResult:
    print(f"\n== {scale.name}: {scale.practices} practices, {scale.patients:,} patients", flush=True)
    meta = generate(scale, fresh=args.fresh)
    result = ScaleResult(scale, generated_seconds=meta["seconds"], table_rows=meta.get("rows", ""))
    with psycopg.connect(database_url(scale, "postgresql")) as conn:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        result.database_mb = (size[0] if size else 0) / 1024 / 1024
    flush_redis()
    env = gateway_env(
        scale,
        PATIENT_ONLINE_QUERY_COUNT_HEADER="true",
        PATIENT_ONLINE_REDIS_URL=REDIS_URL,
        PATIENT_ONLINE_LOG_LEVEL="WARNING",
    )
    with gunicorn(env, args.workers, args.threads) as (base, master):
        pids = worker_pids(master)
        result.rows = load.run(_drive(scale, base, pids, args))
        result.load_average = os.getloadavg()[0]
    return result


async def _drive(scale: Scale, base: str, pids: list[int], args: argparse.Namespace) -> list[Row]:
    chosen = list(accounts(scale))
    # Spread the clients over the practices: at the large scale each one is at a different practice.
    step = max(1, len(chosen) // args.clients)
    users = [load.User(base, email, BENCH_PASSWORD, secret) for email, secret in chosen[::step][: args.clients]]
    rows: list[Row] = []
    try:
        reset_peaks(pids)
        signed = await load.sign_in_all(users)
        rows.append(Row(scale.name, "sign_in", "sign-in (password, then code)", signed, peak_mb(pids)))
        _print_row(rows[-1])
        for key in args.journeys:
            name, journey = load.JOURNEYS[key]
            reset_peaks(pids)
            window = CpuWindow(pids)
            stats = await load.run_journey(users, journey, args.seconds, args.warm_up, window)
            rows.append(Row(scale.name, key, name, stats, peak_mb(pids), window.used))
            _print_row(rows[-1])
        # The same pages again with the clients pausing between them, at half the rate each page was served
        # above: how long a page takes when the node is busy but not flat out (the latency people see).
        for key in [k for k in FAST_PAGES if k in args.journeys]:
            saturated = next(r for r in rows if r.key == key)
            name, journey = load.JOURNEYS[key]
            reset_peaks(pids)
            window = CpuWindow(pids)
            rate = saturated.stats.rps / 2
            stats = await load.run_journey(users, journey, args.seconds, args.warm_up, window, pace=rate)
            label = f"{name}, paced at {rate:.0f}/s"
            rows.append(Row(scale.name, key + PACED, label, stats, peak_mb(pids), window.used))
            _print_row(rows[-1])
    finally:
        for user in users:
            await user.close()
    return rows


def _print_row(row: Row) -> None:
    s = row.stats
    extra = f", {s.conflicts} slot conflicts" if s.conflicts else ""
    error = f" (last: {s.last_error})" if s.last_error else ""
    print(
        f"  {row.name:32} {s.rps:7.1f} req/s  p50 {s.percentile(50):6.1f}  p95 {s.percentile(95):6.1f}  "
        f"p99 {s.percentile(99):6.1f} ms  SQL {_queries(s)}  CPU {row.cpu.per_request(s) if row.cpu else '-'} ms  "
        f"peak {row.peak_mb:5.0f} MB  "
        f"errors {s.errors}{error}{extra}",
        flush=True,
    )


def _queries(stats: load.Stats) -> str:
    mean, most = stats.queries_mean, stats.queries_max
    if mean is None or most is None:
        return "-"
    return f"{mean:.1f}" if abs(mean - most) < 0.05 else f"{mean:.1f} (max {most})"


# Reporting ---------------------------------------------------------------------------------------------------
def table(results: Sequence[ScaleResult]) -> str:
    lines = [
        "| scale | journey | req/s | p50 ms | p95 ms | p99 ms | vs ceiling | SQL/request | CPU ms/request "
        "(app + db) | peak MB/worker | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        ceiling = next((r.stats.rps for r in result.rows if r.key == "ceiling"), 0.0)
        for row in result.rows:
            s = row.stats
            ratio = f"{s.rps / ceiling:.0%}" if ceiling and row.key != "sign_in" else "-"
            errors = str(s.errors) + (f" ({s.conflicts} conflicts)" if s.conflicts else "")
            lines.append(
                f"| {row.scale} | {row.name} | {s.rps:.1f} | {s.percentile(50):.1f} | {s.percentile(95):.1f} | "
                f"{s.percentile(99):.1f} | {ratio} | {_queries(s)} | {row.cpu.per_request(s) if row.cpu else '-'} | "
                f"{row.peak_mb:.0f} | {errors} |"
            )
    return "\n".join(lines)


def _row(results: Sequence[ScaleResult], scale: str, key: str) -> Row | None:
    for result in results:
        for row in result.rows:
            if row.scale == scale and row.key == key:
                return row
    return None


def targets(results: Sequence[ScaleResult]) -> list[tuple[str, bool | None, str]]:
    """(target, met?, the figures) for targets 4-8 of the issue; None when this run cannot tell."""
    scales = [r.scale.name for r in results]
    out: list[tuple[str, bool | None, str]] = []

    # 4. SQL queries per request constant in data size and at most 10 for every patient page (GET); form
    # posts (booking, cancelling, ordering) are actions and are reported beside it.
    worst = 0
    constant = True
    figures = []
    posts = []
    for key in PATIENT_PAGES:
        rows = [row for s in scales if (row := _row(results, s, key)) is not None]
        pages = [q for row in rows if (q := row.stats.queries_max_of("GET")) is not None]
        actions = [q for row in rows if (q := row.stats.queries_max_of("POST")) is not None]
        if pages:
            worst = max(worst, *pages)
            figures.append(f"{key} {'/'.join(str(q) for q in pages)}")
            if len(set(pages)) > 1:
                constant = False
        if actions:
            posts.append(f"{key} {'/'.join(str(q) for q in actions)}")
    met4 = bool(figures) and worst <= 10 and constant
    detail = "most per page, " + " / ".join(scales) + ": " + "; ".join(figures)
    if posts:
        detail += "; form posts: " + "; ".join(posts)
    out.append(("4. SQL per request constant in data size, at most 10 per patient page", met4, detail))

    # 5. p95 under 100 ms for slot search, repeat template and record pages at 32 clients.
    figures = []
    met5 = True
    for s in scales:
        for key in FAST_PAGES:
            row = _row(results, s, key)
            if row is None:
                continue
            p95 = row.stats.percentile(95)
            met5 = met5 and p95 < 100
            figures.append(f"{s} {key} {p95:.0f} ms")
    paced = [
        f"{s} {key} {row.stats.percentile(95):.0f} ms"
        for s in scales
        for key in FAST_PAGES
        if (row := _row(results, s, key + PACED)) is not None
    ]
    detail = "; ".join(figures)
    if paced:
        detail += "; at half those rates, clients pausing between pages: " + "; ".join(paced)
    # With 32 clients that never pause a page's latency is set by throughput (Little's law): the stack's own
    # minimal endpoint shows how far off any page is.
    floors = [
        f"{s} {row.stats.percentile(95):.0f} ms at {row.stats.rps:.0f}/s"
        for s in scales
        if (row := _row(results, s, "ceiling")) is not None
    ]
    if floors:
        detail += "; the minimal endpoint itself, no database, no page: " + "; ".join(floors)
    out.append(("5. p95 under 100 ms for slot search, repeat template, record pages", met5, detail))

    # 6. Slot search throughput at least 30% of the minimal endpoint's.
    figures = []
    met6 = True
    for s in scales:
        slots, ceiling = _row(results, s, "slots"), _row(results, s, "ceiling")
        if slots and ceiling and ceiling.stats.rps:
            share = slots.stats.rps / ceiling.stats.rps
            met6 = met6 and share >= 0.30
            figures.append(f"{s} {share:.0%}")
            # What a request costs, as a multiple of the minimal endpoint's: 30% needs at most 3.3x.
            costs = [
                f"{key} {ceiling.stats.rps / row.stats.rps:.1f}x"
                for key in ("home", "slots")
                if (row := _row(results, s, key)) is not None and row.stats.rps
            ]
            if costs:
                figures[-1] += f" (cost per request vs the minimal endpoint's: {', '.join(costs)}; 30% needs 3.3x)"
    out.append(
        (
            "6. Slot search throughput at least 30% of the minimal endpoint's",
            met6 if figures else None,
            "; ".join(figures),
        )
    )

    # 7. Large scale p95 within 1.25x of small scale for every journey.
    if "small" in scales and "large" in scales:
        figures = []
        met7 = True
        for key in PATIENT_PAGES:
            small, large = _row(results, "small", key), _row(results, "large", key)
            if small and large and small.stats.percentile(95):
                ratio = large.stats.percentile(95) / small.stats.percentile(95)
                met7 = met7 and ratio <= 1.25
                figures.append(f"{key} {ratio:.2f}x")
        out.append(("7. Large-scale p95 within 1.25x of small scale, every journey", met7, "; ".join(figures)))
    else:
        out.append(("7. Large-scale p95 within 1.25x of small scale, every journey", None, "needs both scales"))

    # 8. Under 200 MB resident memory per worker at the large scale.
    large_rows = [r for res in results if res.scale.name == "large" for r in res.rows]
    if large_rows:
        peak = max(r.peak_mb for r in large_rows)
        out.append(("8. Under 200 MB resident memory per worker at the large scale", peak < 200, f"peak {peak:.0f} MB"))
    else:
        out.append(("8. Under 200 MB resident memory per worker at the large scale", None, "large scale not run"))
    return out


def machine() -> str:
    cpu = ""
    try:
        found = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = found.group(1).strip() if found else ""
    except OSError:
        pass
    memory = ""
    try:
        found = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        memory = f"{int(found.group(1)) / 1024 / 1024:.0f} GiB" if found else ""
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {memory} memory, {platform.system()} {platform.release()}"


def versions() -> str:
    try:
        with psycopg.connect(database_url(SCALES["small"], "postgresql").rsplit("/", 1)[0] + "/test") as conn:
            row = conn.execute("SHOW server_version").fetchone()
            postgres = str(row[0]) if row else "?"
    except psycopg.Error:
        postgres = "?"
    return f"Python {platform.python_version()}, PostgreSQL {postgres.split()[0]}"


def report(results: Sequence[ScaleResult], args: argparse.Namespace, started: dt.datetime) -> str:
    lines = [
        f"Run on {started:%Y-%m-%d %H:%M} UTC, {machine()}; {versions()}.",
        f"Gunicorn (config/gunicorn.conf.py): {args.workers} gthread workers x {args.threads} threads, "
        f"max-requests off; Redis for rate limits; {args.clients} concurrent clients, each journey "
        f"{args.seconds:.0f} s after {args.warm_up:.0f} s of warm-up; load generator: bench/load.py ({load.CLIENT}) "
        "on the same machine.",
        "",
    ]
    for result in results:
        lines.append(
            f"- {result.scale.name}: {result.scale.practices} practices, {result.scale.patients:,} patients; "
            f"database {result.database_mb:,.0f} MB, generated in {result.generated_seconds} s; machine load "
            f"average {result.load_average:.1f} at the end (above about 3 on 2 cores: other work shared them)."
        )
    lines += ["", table(results), "", "Targets:", ""]
    for name, met, figures in targets(results):
        verdict = "not measured" if met is None else ("**met**" if met else "**not met**")
        lines.append(f"- {name}: {verdict} ({figures})")
    cpu = [
        (r.scale, r.name, r.stats.client_cpu / r.stats.seconds) for res in results for r in res.rows if r.stats.seconds
    ]
    if cpu:
        busiest = max(cpu, key=lambda c: c[2])
        lines += [
            "",
            f"Load generator CPU: at most {busiest[2]:.0%} of one core ({busiest[0]}, {busiest[1]}).",
        ]
    return "\n".join(lines)


def write_docs(text: str) -> None:
    current = DOCS.read_text() if DOCS.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in current or END not in current:
        current += f"\n{START}\n{END}\n"
    head, rest = current.split(START, 1)
    _old, tail = rest.split(END, 1)
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="small,large")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 20)))
    parser.add_argument("--warm-up", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--journeys", default=",".join(load.JOURNEYS))
    parser.add_argument("--fresh", action="store_true", help="generate the data again")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument(
        "--gpconnect-clients",
        type=int,
        default=16,
        help="clients per practice in the GP Connect rows (bench/gpconnect.py; 0 leaves them out)",
    )
    args = parser.parse_args(argv)
    args.journeys = [j for j in args.journeys.split(",") if j]
    unknown = [j for j in args.journeys if j not in load.JOURNEYS]
    if unknown:
        parser.error(f"unknown journeys: {', '.join(unknown)}")
    # Stopped (SIGTERM): unwind normally, so the gunicorn this run started is stopped too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    started = dt.datetime.now(dt.UTC)
    results = [run_scale(SCALES[name], args) for name in args.scales.split(",") if name]
    text = report(results, args, started)
    if args.gpconnect_clients:
        from . import gpconnect

        gpc_args = argparse.Namespace(**{**vars(args), "clients": args.gpconnect_clients, "rounds": gpconnect.ROUNDS})
        text += "\n\n" + gpconnect.run(gpc_args)
    print("\n" + text)
    if not args.no_docs:
        write_docs(text)
        print(f"\nWritten to {DOCS.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
