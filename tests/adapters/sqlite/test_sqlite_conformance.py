"""SqliteTransport passes the shared transport conformance suite, on a real file."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.clock import VirtualClock
from conveyor_sqlite import SqliteTransport
from pytest_conveyor.conformance import TransportConformance, TransportHarness

MAX_SIZE = 64 * 1024


class TestSqliteConformance(TransportConformance):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[TransportHarness]:
        clock = VirtualClock()
        path = tmp_path / "conformance.db"
        # A size limit, so the suite's size tests run too; its messages are far smaller.
        transport = SqliteTransport(path, clock=clock, max_size=MAX_SIZE)
        names = itertools.count()
        yield TransportHarness(
            transport=transport,
            clock=clock,
            advance=clock.advance,
            make_channel=lambda: f"conformance-{next(names)}",
            # A second transport on the same file: what a restarted process would open.
            reopen=lambda: SqliteTransport(path, clock=clock, max_size=MAX_SIZE),
        )
        transport.close()
