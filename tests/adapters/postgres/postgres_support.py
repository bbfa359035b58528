"""Helpers for the PostgreSQL adapter's tests (imported by them; not collected by pytest).

The server is found through ``DATABASE_URL`` (``scripts/test`` starts one with
``.ci/brokers.sh``). Locally a missing or unreachable server skips the tests; under ``CI=true``
it fails them, since a skipped adapter test proves nothing.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from conveyor.core.clock import Clock

__all__ = ["database_url", "unique", "fresh_schema", "RealTime", "Deadline"]

_checked: dict[str, str | None] = {}


def database_url() -> str:
    """The server's URL, after one check that it answers; skips or fails when it does not."""
    url = os.environ.get("DATABASE_URL", "")
    problem = _checked.get(url, "unchecked")
    if problem == "unchecked":
        problem = _probe(url)
        _checked[url] = problem
    if problem is None:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI=true: {problem}", pytrace=False)
    pytest.skip(f"PostgreSQL tests need a server: {problem}")
    raise AssertionError("unreachable")


def _probe(url: str) -> str | None:
    if not url:
        return (
            "DATABASE_URL is not set (run `bash scripts/test`, or source .ci/brokers.sh and "
            "run start_postgres)"
        )
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        return f"cannot connect to DATABASE_URL: {' '.join(str(error).split())}"
    return None


def unique(prefix: str) -> str:
    """A channel (or schema) name no other test, worker or run uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


class RealTime:
    """``advance`` for a harness on the system clock: wait until the clock has moved that far.

    The harness *is* the clock here, so this is the one place a test waits on real time: a
    tight poll until the deadline, never a bare sleep.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def __call__(self, duration: timedelta) -> None:
        deadline = self._clock.now() + duration
        while (left := deadline - self._clock.now()) > timedelta(0):
            self._clock.sleep(min(left.total_seconds(), 0.005))


class Deadline:
    """One wall-clock budget shared by every wait in a test."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self.end = self.started + seconds

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            pytest.fail(f"the test did not finish within {self.seconds} s of wall time")
        return left

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def fresh_schema(dsn: str) -> Iterator[str]:
    """A PostgreSQL schema for one test alone (fixed channel names never meet), dropped after."""
    import psycopg

    name = unique("cv_test")
    yield name
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
