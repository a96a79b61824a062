"""A slow practice link must not slow anyone else: with one practice's GP Connect provider answering in
5 seconds, pages of patients at the other practice keep their normal response times."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import httpx
import pytest

from tools.gpconnect_simulator import start_simulator

from .servers import gateway_env, gunicorn, prepare_database, signed_in_client, use_gpconnect

pytestmark = pytest.mark.slow


def timed_get(client: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    response = client.get(url)
    assert response.status_code < 500 or url.startswith("/record"), response.status_code
    return time.perf_counter() - started


def test_a_slow_practice_does_not_slow_the_others(tmp_path: Path) -> None:
    env = gateway_env(f"sqlite:///{tmp_path / 'slow.sqlite3'}", PATIENT_ONLINE_ADAPTER_READ_TIMEOUT="8")
    prepare_database(env)
    simulator_url, simulator = start_simulator()
    try:
        use_gpconnect(env, "Y02002", simulator_url, "read_timeout=8")
        with gunicorn(env, workers=2, threads=8) as base:
            fast = signed_in_client(base, "patient.y02001@example.com")
            slow = signed_in_client(base, "patient.y02002@example.com")
            page = "/readyz"  # warm up both workers
            for _ in range(4):
                fast.get(page)
            baseline = [timed_get(fast, "/account/activity") for _ in range(10)]
            baseline += [timed_get(fast, "/home") for _ in range(10)]

            simulator.state.configure(delay=5)
            stuck: list[float] = []

            def hit_slow_practice() -> None:
                with httpx.Client(base_url=base, cookies=slow.cookies, timeout=30) as c:
                    started = time.perf_counter()
                    c.get("/readyz")  # asks every practice's link state without calling it
                    c.get("/home")
                    c.get("/appointments/slots")
                    stuck.append(time.perf_counter() - started)

            threads = [threading.Thread(target=hit_slow_practice) for _ in range(6)]
            for t in threads:
                t.start()
            time.sleep(0.5)  # the slow requests are now waiting on the provider
            during = [timed_get(fast, "/account/activity") for _ in range(10)]
            during += [timed_get(fast, "/home") for _ in range(10)]
            for t in threads:
                t.join(timeout=60)
            fast.close()
            slow.close()
    finally:
        simulator.stop()

    normal = statistics.median(baseline)
    worst = max(during)
    print(
        f"fast practice: median {normal * 1000:.0f} ms before, median {statistics.median(during) * 1000:.0f} ms "
        f"and worst {worst * 1000:.0f} ms while the other practice's link took 5 s; slow journeys {stuck}"
    )
    assert min(stuck) >= 4.5, "the slow practice was not actually slow"
    assert statistics.median(during) < normal * 3 + 0.05
    assert worst < 1.0
