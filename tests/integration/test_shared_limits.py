"""With PATIENT_ONLINE_REDIS_URL set, rate limits are counted in Redis, so every node shares them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis

from patient_online import create_app
from tests.conftest import TEST_SETTINGS
from tests.helpers import FormClient

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_url(redis_url: str) -> str:
    redis.Redis.from_url(redis_url).flushdb()  # the test database index only: no counts left from earlier runs
    return redis_url


def test_sign_in_limits_are_counted_in_redis(connection: Any, seeded_engine: Any, redis_url: str) -> None:
    email = f"limit-{uuid.uuid4().hex[:8]}@example.com"
    settings = {**TEST_SETTINGS, "DATABASE_ENGINE": seeded_engine, "REDIS_URL": redis_url}
    node_a, node_b = (FormClient(create_app(settings).test_client()) for _ in range(2))
    for n in range(10):
        node = node_a if n % 2 else node_b
        node.raw.environ_base["REMOTE_ADDR"] = f"127.0.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
        node.submit("/login", {"email": email, "password": "wrong-password-123"})
    # Ten failures counted across both nodes guard the account on each: the password step no longer answers.
    for node in (node_a, node_b):
        node.raw.environ_base["REMOTE_ADDR"] = f"127.0.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
        guarded = node.submit("/login", {"email": email, "password": "x"})
        assert guarded.status_code == 302 and guarded.headers["Location"].endswith("/login/code")
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter("*sign-in-guard*"))
    assert keys, "limits were not stored in Redis"
    assert not list(client.scan_iter(f"*{email}*"))  # the storage holds no email address
    client.delete(*keys)
