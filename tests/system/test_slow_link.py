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
    env = gateway_env(
        f"sqlite:///{tmp_path / 'slow.sqlite3'}",
        PATIENT_ONLINE_ADAPTER_READ_TIMEOUT="8",
        PATIENT_ONLINE_ADAPTER_MAX_CALLS_PER_PRACTICE="8",  # every slow journey reaches the provider
    )
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


def test_a_hanging_provider_never_holds_a_patient_past_the_page_budget(tmp_path: Path) -> None:
    """The provider stops answering: every page of its patients answers within the page budget (plus a second),
    with the honest "slow or unavailable" page, and the circuit breaker opens for both workers at once (shared
    through Redis), after which the pages answer at once."""
    import redis

    from tests.conftest import REDIS_URL

    try:
        store = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        store.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is needed at {REDIS_URL} ({type(exc).__name__}): start redis-server.", pytrace=False)
    for key in store.scan_iter(match="po:breaker:*"):
        store.delete(key)
    budget = 3.0
    env = gateway_env(
        f"sqlite:///{tmp_path / 'hanging.sqlite3'}",
        PATIENT_ONLINE_REDIS_URL=REDIS_URL,
        PATIENT_ONLINE_CLINICAL_PAGE_BUDGET_SECONDS=str(budget),
        # eight failing pages reach six only when counted together: each worker alone would stay closed
        PATIENT_ONLINE_ADAPTER_BREAKER_FAILURES="6",
        PATIENT_ONLINE_ADAPTER_BREAKER_COOL_DOWN="120",
        PATIENT_ONLINE_ADAPTER_MAX_CALLS_PER_PRACTICE="8",  # every page reaches the provider (no bulkhead refusals)
    )
    prepare_database(env)
    simulator_url, simulator = start_simulator()
    try:
        use_gpconnect(env, "Y02002", simulator_url, "read_timeout=20")
        with gunicorn(env, workers=2, threads=8) as base:
            slow = signed_in_client(base, "patient.y02002@example.com")
            for _ in range(4):
                httpx.get(f"{base}/readyz", timeout=10)  # both workers up; no breaker open yet
            assert not list(store.scan_iter(match="po:breaker:Y02002"))
            simulator.state.configure(delay=30)
            answers: list[tuple[int, float, str]] = []

            def hit_slow_practice() -> None:
                with httpx.Client(base_url=base, cookies=slow.cookies, timeout=60) as c:
                    started = time.perf_counter()
                    reply = c.get("/appointments/slots")
                    answers.append((reply.status_code, time.perf_counter() - started, reply.text))

            threads = [threading.Thread(target=hit_slow_practice) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            shared_state = store.hget("po:breaker:Y02002", "state")
            states = []
            for _ in range(12):  # fresh connections, answered by either worker
                with httpx.Client(base_url=base, timeout=10) as c:
                    states.append(c.get("/readyz").json()["practices"]["Y02002"]["detail"])
            after: list[tuple[int, float]] = []
            for _ in range(6):
                with httpx.Client(base_url=base, cookies=slow.cookies, timeout=60) as c:
                    started = time.perf_counter()
                    status = c.get("/appointments/slots").status_code
                    after.append((status, time.perf_counter() - started))
            slow.close()
    finally:
        simulator.state.configure(delay=0)
        simulator.stop()

    took = sorted(round(seconds, 2) for _status, seconds, _text in answers)
    print(f"hanging provider, budget {budget} s: pages took {took}; then {after}; breaker {set(states)}")
    assert len(answers) == 8
    for status, seconds, text in answers:
        assert status == 503, status
        assert "slow or unavailable" in text.lower() or "not available" in text.lower()
        assert "Nothing has been changed" in text
        assert seconds < budget + 1, f"a page took {seconds:.1f} s with a budget of {budget} s"
    assert all(detail.startswith("circuit open") for detail in states), states
    assert shared_state == b"open"
    assert all(status == 503 and seconds < 1 for status, seconds in after), after
