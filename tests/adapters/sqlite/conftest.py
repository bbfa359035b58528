"""Fixtures for the SQLite adapter's tests: a real database file under tmp_path, virtual time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.core.clock import VirtualClock
from conveyor.core.ids import SequentialIds
from conveyor_sqlite import SqliteTransport


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "conveyor.db"


@pytest.fixture
def transport(db_path: Path, clock: VirtualClock) -> Iterator[SqliteTransport]:
    opened = SqliteTransport(db_path, clock=clock, ids=SequentialIds("lease-"))
    yield opened
    opened.close()
