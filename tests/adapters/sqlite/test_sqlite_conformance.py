"""SqliteTransport passes the shared transport conformance suite, on a real file.

It declares every optional promise but native TTL (delay, priority, FIFO, a size limit when given
one, durability) and is inspectable, so every check applies but native TTL's side of expiry.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.core.clock import Clock, SystemClock, VirtualClock
from conveyor_sqlite import SqliteTransport
from pytest_conveyor.conformance import TransportConformance, TransportHarness


class TestSqliteConformance(TransportConformance):
    """Virtual time, no size limit: a 1 MiB message must round-trip."""

    size_limit: int | None = None

    def make_clock(self) -> Clock:
        return VirtualClock()

    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[TransportHarness]:
        clock, path = self.make_clock(), tmp_path / "conformance.db"

        def open_transport() -> SqliteTransport:  # a restarted process opens the same file
            return SqliteTransport(path, clock=clock, max_size=self.size_limit)

        with TransportHarness(open_transport(), clock, reopen=open_transport) as harness:
            yield harness


class TestSqliteConformanceWithMaxSize(TestSqliteConformance):
    """A size limit, so the limit's own checks apply too."""

    size_limit = 64 * 1024


class TestSqliteConformanceOnRealTime(TestSqliteConformance):
    """The system clock, as in production: the long poll (50 ms polls of the file) included."""

    def make_clock(self) -> Clock:
        return SystemClock()
