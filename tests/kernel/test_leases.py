"""Leases kept alive while a long handler runs; a warning where the transport cannot renew.

A handler that takes five leases' worth of real time, with a second worker thread polling the
channel all along: with renewal the message is handled once. The handler's work is a wait on
an event nobody sets, which stands for a slow call; nothing in the test waits for work.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from conveyor import (
    AsyncMessaging,
    Channel,
    Clock,
    Messaging,
    QueueChannel,
    RecordKind,
    SystemClock,
    asynchronous,
    command_handler,
)
from conveyor.transports.memory import MemoryTransport
from conveyor.transports.seam import Transport
from conveyor_sqlite import SqliteChannel

LEASE = timedelta(milliseconds=150)
WORK = 0.75  # seconds: five leases


@dataclass(frozen=True)
class Slow:
    n: int


@dataclass(frozen=True)
class Quick:
    n: int


def slow_app(channel: Channel, handled: list[int]) -> Messaging:
    @asynchronous("jobs")
    @command_handler
    def work(job: Slow) -> None:
        handled.append(job.n)
        threading.Event().wait(WORK)  # a slow call

    return Messaging([work], [channel], clock=SystemClock())


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_long_handler_keeps_its_lease_and_is_handled_once(tmp_path: Path, kind: str) -> None:
    channel: Channel = (
        QueueChannel("jobs", lease=LEASE)
        if kind == "memory"
        else SqliteChannel("jobs", path=tmp_path / "app.db", lease=LEASE, synchronous="NORMAL")
    )
    handled: list[int] = []
    with slow_app(channel, handled) as messaging:
        messaging.send(Slow(1))
        result = messaging.serve(
            ["jobs"], concurrency=2, finish_when_empty=True, time_limit=timedelta(seconds=20)
        )  # without renewal it would be handled again and again until the time limit
        assert result.processed == 1
        assert handled == [1]  # the other thread polled all along, and never got it
        assert len(messaging.journal.of_kind(RecordKind.HANDLED)) == 1


def test_a_lease_shorter_than_any_held_before_is_renewed_in_time() -> None:
    """The keeper sleeps up to the shortest first look it has seen; a shorter lease wakes it."""
    handled: list[str] = []
    started = threading.Event()

    @asynchronous("long")
    @command_handler
    def first(job: Slow) -> None:
        handled.append("long")
        started.set()
        threading.Event().wait(WORK)

    @asynchronous("short")
    @command_handler
    def second(job: Quick) -> None:
        assert started.wait(WORK)  # the long lease is held first
        handled.append("short")
        threading.Event().wait(WORK)

    channels = [
        QueueChannel("long", lease=timedelta(minutes=5)),
        QueueChannel("short", lease=LEASE),
    ]
    with Messaging([first, second], channels, clock=SystemClock()) as messaging:
        messaging.send(Slow(1))
        messaging.send(Quick(1))
        result = messaging.serve(
            ["long", "short"],
            concurrency=3,
            finish_when_empty=True,
            time_limit=timedelta(seconds=20),
        )
        assert result.processed == 2
    assert sorted(handled) == ["long", "short"]


class Unrenewable(MemoryTransport):
    """The in-memory transport without ``renew``: what a broker without renewal looks like."""

    renew = None  # type: ignore[assignment]


@dataclass(frozen=True, kw_only=True)
class UnrenewableChannel(Channel):
    def open(self, clock: Clock) -> Transport:
        return Unrenewable(clock)


def test_a_handler_that_outlives_a_lease_it_cannot_renew_is_named_in_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handled: list[int] = []
    with slow_app(UnrenewableChannel("jobs", lease=LEASE), handled) as messaging:
        assert messaging.runtimes["jobs"].renewable is None
        messaging.send(Slow(1))
        with caplog.at_level(logging.WARNING, logger="conveyor"):
            messaging.serve(["jobs"], limit=1)
    (warning,) = [r.getMessage() for r in caplog.records if "lease" in r.getMessage()]
    assert warning.startswith("endpoint ")
    assert " on channel jobs for " in warning
    assert "longer than the channel's lease (0:00:00.150000), and Unrenewable cannot renew" in (
        warning
    )
    assert "Give the channel a longer lease" in warning


def test_an_asyncio_handler_keeps_its_lease_and_is_handled_once() -> None:
    handled: list[int] = []

    @asynchronous("jobs")
    @command_handler
    async def work(job: Slow) -> None:
        handled.append(job.n)
        await asyncio.sleep(WORK)  # a slow call

    async def scenario() -> None:
        messaging = AsyncMessaging([work], [QueueChannel("jobs", lease=LEASE)], clock=SystemClock())
        async with messaging:
            await messaging.send(Slow(1))
            result = await messaging.run("jobs", concurrency=2, finish_when_empty=True)
            assert result.processed == 1

    asyncio.run(scenario())
    assert handled == [1]


LOOP_CLOSES = """
import asyncio
from dataclasses import dataclass
from conveyor import AsyncContext, AsyncMessaging, QueueChannel, SystemClock
from conveyor import asynchronous, command_handler, event_handler

@dataclass(frozen=True)
class Ship:
    n: int

@dataclass(frozen=True)
class Shipped:
    n: int

@asynchronous("shipping")
@command_handler
async def ship(command: Ship, ctx: AsyncContext) -> None:
    await asyncio.sleep(0)  # the handler yields while its lease is kept
    await ctx.publish(Shipped(command.n))

@asynchronous("tracking")
@event_handler
async def track(event: Shipped) -> None: ...

async def main() -> None:
    channels = [QueueChannel("shipping"), QueueChannel("tracking")]
    messaging = AsyncMessaging([ship, track], channels, clock=SystemClock())
    await messaging.send(Ship(1))
    await messaging.run_until_idle()
    print("idle")

asyncio.run(main())
print("loop closed")
"""


def test_an_idle_asyncio_lease_keeper_leaves_no_task_to_hang_the_loop_closing() -> None:
    """Once nothing is held the keeper's task ends, so ``asyncio.run`` can close its loop (it
    used to wait for the keeper, cancelled in the middle of its wait, forever)."""
    done = subprocess.run(
        [sys.executable, "-c", LOOP_CLOSES], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "loop closed"
