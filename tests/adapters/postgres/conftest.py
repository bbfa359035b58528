"""Fixtures for the PostgreSQL adapter's tests: the server from DATABASE_URL, unique channels."""

from __future__ import annotations

import pytest
from postgres_support import database_url


@pytest.fixture
def dsn() -> str:
    """The test server's URL; skips (or fails under CI=true) without a reachable server."""
    return database_url()
