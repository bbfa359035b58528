"""Fixtures for the Redis adapter's tests: the server from ``REDIS_URL``, a key prefix per test.

``scripts/test`` starts Redis (``.ci/brokers.sh``) and exports ``REDIS_URL``. Without it, or
when it does not answer, these tests skip locally; under ``CI=true`` they fail instead, because
a CI run that skipped the broker tests would prove nothing. Each test gets its own key prefix
(and deletes its keys afterwards), so tests running in parallel never meet.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from private_server import PrivateRedis

_names = itertools.count()


def _server_url() -> str:
    url = os.environ.get("REDIS_URL")
    problem = None
    if not url:
        problem = "REDIS_URL is not set (scripts/test starts Redis and sets it)"
    else:
        import redis

        try:
            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        except redis.RedisError as error:
            problem = f"Redis at REDIS_URL does not answer: {error}"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem}; under CI=true a missing broker is a failure, not a skip.")
        pytest.skip(problem)
    assert url is not None
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _server_url()


@pytest.fixture
def prefix(redis_url: str, worker_id: str) -> Iterator[str]:
    """A key prefix no other test (or xdist worker) uses; its keys are deleted afterwards."""
    import redis

    name = f"cvtest-{worker_id}-{os.getpid()}-{next(_names)}"
    yield name
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{name}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of this test's own, with AOF on and fsync at every write."""
    server = PrivateRedis(tmp_path, "--appendonly", "yes", "--appendfsync", "always")
    server.start()
    yield server
    server.stop()
