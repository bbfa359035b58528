"""SqliteTransport passes the shared transport conformance suite, on a real file.

It declares every optional promise but native TTL (delay, priority, FIFO, a size limit when given
one, durability) and is inspectable, so it runs every mixin of the suite.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.core.clock import VirtualClock
from conveyor_sqlite import SqliteTransport
from pytest_conveyor.conformance import (
    DelayTransportConformance,
    DurableTransportConformance,
    FifoTransportConformance,
    InspectableTransportConformance,
    MaxSizeTransportConformance,
    PriorityTransportConformance,
    TransportHarness,
)


class _SqliteConformance(
    DurableTransportConformance,
    InspectableTransportConformance,
    DelayTransportConformance,
    PriorityTransportConformance,
    FifoTransportConformance,
):
    """The suites for what SqliteTransport declares, on a transport built with ``size_limit``."""

    size_limit: int | None = None

    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[TransportHarness]:
        clock = VirtualClock()
        path = tmp_path / "conformance.db"
        transport = SqliteTransport(path, clock=clock, max_size=self.size_limit)
        names = itertools.count()
        yield TransportHarness(
            transport=transport,
            clock=clock,
            advance=clock.advance,
            make_channel=lambda: f"conformance-{next(names)}",
            # A second transport on the same file: what a restarted process would open.
            reopen=lambda: SqliteTransport(path, clock=clock, max_size=self.size_limit),
        )
        transport.close()


class TestSqliteConformance(_SqliteConformance):
    """The default, no size limit: a 1 MiB message must round-trip."""


class TestSqliteConformanceWithMaxSize(MaxSizeTransportConformance, _SqliteConformance):
    """A size limit, so the limit's own tests run too; the other messages are far smaller."""

    size_limit = 64 * 1024
