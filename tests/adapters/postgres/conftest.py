"""Fixtures for the PostgreSQL adapter's tests: the server from DATABASE_URL, unique names."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from postgres_support import database_url, fresh_schema


@pytest.fixture
def dsn() -> str:
    """The test server's URL; skips (or fails under CI=true) without a reachable server."""
    return database_url()


@pytest.fixture
def schema(dsn: str) -> Iterator[str]:
    """A PostgreSQL schema of this test's own, dropped afterwards."""
    yield from fresh_schema(dsn)
