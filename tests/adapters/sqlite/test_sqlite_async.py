"""AsyncSqliteTransport: the conformance suite through the async runner, and AsyncMessaging on it.

The twin runs ``SqliteTransport``'s own methods on a worker thread, so it must keep every promise
the sync transport keeps, on virtual time and on the system clock (where the long poll polls the
file and a send through the transport wakes it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conveyor import (
    AsyncContext,
    AsyncMessaging,
    ConfigurationError,
    VirtualClock,
    asynchronous,
    command_handler,
    delayed,
    event_handler,
)
from conveyor.core.clock import Clock, SystemClock
from conveyor.transports.seam import AsyncInspectableTransport, ChannelOptions, WireMessage
from conveyor_sqlite import AsyncSqliteTransport, SqliteChannel
from pytest_conveyor.conformance import AsyncTransportConformance, AsyncTransportHarness


class TestAsyncSqliteConformance(AsyncTransportConformance):
    """Virtual time, no size limit."""

    size_limit: int | None = None

    def make_clock(self) -> Clock:
        return VirtualClock()

    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[AsyncTransportHarness]:
        clock, path = self.make_clock(), tmp_path / "conformance.db"

        def open_transport() -> AsyncSqliteTransport:  # a restarted process opens the same file
            return AsyncSqliteTransport(path, clock=clock, max_size=self.size_limit)

        with AsyncTransportHarness(open_transport(), clock, reopen=open_transport) as harness:
            yield harness

    def test_is_renewable_and_inspectable(self, harness: AsyncTransportHarness) -> None:
        assert (harness.renewable, harness.inspectable) == (True, True)


class TestAsyncSqliteConformanceWithMaxSize(TestAsyncSqliteConformance):
    size_limit = 64 * 1024


class TestAsyncSqliteConformanceOnRealTime(TestAsyncSqliteConformance):
    """The system clock: leases run out for real and the long poll polls the file."""

    def make_clock(self) -> Clock:
        return SystemClock()


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


def test_async_messaging_runs_a_delayed_flow_on_a_sqlite_file(tmp_path: Path) -> None:
    reminded: list[str] = []

    @command_handler
    async def place(command: PlaceOrder, ctx: AsyncContext) -> None:
        await ctx.publish(OrderPlaced(command.order_id))

    @asynchronous("reminders")
    @delayed(timedelta(days=1))
    @event_handler
    async def remind(event: OrderPlaced) -> None:
        reminded.append(event.order_id)

    clock = VirtualClock(datetime(2026, 1, 1, tzinfo=UTC))
    channel = SqliteChannel("reminders", path=tmp_path / "shop.db")

    async def main() -> None:
        async with AsyncMessaging([place, remind], [channel], clock=clock) as messaging:
            assert isinstance(messaging.channels["reminders"].transport, AsyncSqliteTransport)
            await messaging.send(PlaceOrder("o-1"))
            assert await messaging.run_until_idle() == 0  # a day to go
            await messaging.run_until_idle(advance_time=True)

    asyncio.run(main())

    assert reminded == ["o-1"]
    assert clock.now() == datetime(2026, 1, 2, tzinfo=UTC)


def test_a_send_wakes_a_long_poll_waiting_on_the_channel(tmp_path: Path) -> None:
    transport = AsyncSqliteTransport(tmp_path / "q.db", clock=SystemClock())
    assert isinstance(transport, AsyncInspectableTransport)

    async def main() -> int:
        await transport.declare(ChannelOptions("orders"))
        waiting = asyncio.ensure_future(
            transport.receive("orders", lease=timedelta(seconds=30), wait=timedelta(seconds=30))
        )
        await asyncio.sleep(0)  # let the receive find the channel empty and wait
        await transport.send("orders", WireMessage(b"{}", {"cv-type": "x"}))
        found = await asyncio.wait_for(waiting, 10)  # a bound on a failure, not a wait for work
        await transport.close()
        return len(found)

    assert asyncio.run(main()) == 1


def test_an_outbox_channel_has_no_asyncio_twin(tmp_path: Path) -> None:
    import sqlite3

    connection = sqlite3.connect(tmp_path / "app.db")
    channel = SqliteChannel("outbox", path=tmp_path / "app.db", connection=connection)
    try:
        with pytest.raises(ConfigurationError, match="outbox on the application's connection"):
            channel.open_async(SystemClock())
    finally:
        connection.close()
