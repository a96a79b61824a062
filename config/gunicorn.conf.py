"""Gunicorn settings for production and for the benchmark (`gunicorn -c config/gunicorn.conf.py app:app`).

Threaded workers (gthread): a worker is a process with its own database pool; its threads serve requests
while others wait on PostgreSQL or a clinical system, so a slow practice link does not take a whole worker.
Every value can be set through the environment, so one file serves a laptop, a benchmark and an area's nodes.
"""

from __future__ import annotations

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


# Where to listen: behind the load balancer, on each node's private interface (default: this machine only).
bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
# One worker per core: the work is CPU-bound Python (templates, sessions) between short database calls.
workers = _int("GUNICORN_WORKERS", multiprocessing.cpu_count())
worker_class = "gthread"
# Threads per worker: enough to keep a core busy while some requests wait on the database or a clinical
# system, and enough that a practice whose link has slowed leaves most of them to the other practices. A slow
# practice holds at most ADAPTER_MAX_CALLS_PER_PRACTICE threads in calls (6: under a third of 20) plus the
# few waiting up to ADAPTER_PLACE_WAIT_SECONDS (0.5 s) for a place once its calls are slow (a quick practice's
# waits are short, as its places free every fraction of a second); keep that limit a small share of the
# threads when changing either. A thread waiting on a clinical system costs little (it holds no database
# connection during the call), but a thread may hold one of its worker's database connections, so threads <=
# the pool (10 + 10 overflow per worker), and workers x 20 within PostgreSQL's max_connections (100 by default).
threads = _int("GUNICORN_THREADS", 20)
# Waiting connections per worker before the kernel refuses new ones.
backlog = _int("GUNICORN_BACKLOG", 2048)
# A request is cut off after this long; a clinical-system call times out well before (ADAPTER_READ_TIMEOUT).
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Keep connections from the load balancer open between requests.
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Replace each worker after this many requests (jittered, so they do not all restart at once): a guard
# against slow memory growth. 0 switches it off (the benchmark does, to read each worker's peak memory).
max_requests = _int("GUNICORN_MAX_REQUESTS", 10000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 1000)
# Load the app once in the master and fork: workers share its memory and start faster. Nothing connects
# to a database at import time, so every worker opens its own connections after the fork.
preload_app = True
# Honour X-Forwarded-* only from the load balancer in front (comma-separated addresses).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# Temporary files in memory, not on a possibly slow disk (heartbeat files of the workers).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 (gunicorn's own heartbeat files)
