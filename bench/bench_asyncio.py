"""Issue 12: the asyncio driver against taskiq's InMemoryBroker and FastStream's test broker.

Two measurements, each peer in the same process and run (ratios, not absolute figures, travel):

* Round trip per message: N small messages sent, consumed and handled by an ``async def``
  handler. Conveyor: ``AsyncMessaging`` on ``QueueChannel`` (JSON on the wire, a journal record
  per step) on a ``SystemClock``, a worker task ``run("work", limit=N)`` consuming while N x
  ``await send`` produce.
  taskiq: ``InMemoryBroker`` and a task, N x ``await task.kiq`` then ``await broker.wait_all()``.
  FastStream: ``TestRedisBroker`` (its in-memory test broker: publish calls the subscriber), N x
  ``await broker.publish``.
* Throughput with 10 in flight over handlers that each await 1 ms (``asyncio.sleep(0.001)``,
  standing for a database call): Conveyor ``run("work", concurrency=10)``; taskiq
  ``InMemoryBroker(max_async_tasks=10)``; FastStream publishes gathered 10 at a time (its test
  broker handles each publish inline, so concurrency is the caller's). Every handler counts how
  many are in flight, and the table prints the peak: taskiq's ``InMemoryBroker`` does not honour
  ``max_async_tasks`` (every message sent is in flight at once), so it is measured twice, as it
  is and held to 10 by a semaphore in its task, the same bound the others keep.

* SQLite: the same round trip and the same ten-in-flight throughput on a ``SqliteChannel``
  (``synchronous="NORMAL"``, a temporary file), ``AsyncMessaging`` (``AsyncSqliteTransport``:
  the sync transport's calls on one worker thread) against ``Messaging`` (``SqliteTransport``;
  ``run("work")`` handles one message at a time, so its handler's 1 ms is a blocking wait).

Each figure is the best of three runs, interleaved (``_harness``: on a shared machine noise only
adds time).

Run alone: ``.venv/bin/python bench/bench_asyncio.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import fmt_int, fmt_ratio, print_table, title

from conveyor import (
    AsyncMessaging,
    Messaging,
    QueueChannel,
    SystemClock,
    asynchronous,
    command_handler,
)


@dataclass(frozen=True, slots=True)
class Work:
    n: int
    name: str


class Gauge:
    """How many handlers are in flight, and the most there were at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    async def pause(self, seconds: float) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)
        await asyncio.sleep(seconds)
        self.now -= 1


GAUGE = Gauge()


async def conveyor_run(count: int, pause: float, concurrency: int) -> None:
    @asynchronous("work")
    @command_handler
    async def handle(work: Work) -> None:
        if pause:
            await GAUGE.pause(pause)

    messaging = AsyncMessaging([handle], [QueueChannel("work")], clock=SystemClock())
    async with messaging:  # a worker consuming while the producer sends, as the peers do
        worker = asyncio.ensure_future(
            messaging.run("work", concurrency=concurrency, limit=count, finish_when_empty=False)
        )
        for n in range(count):
            await messaging.send(Work(n, "job"))
        result = await worker
    assert result.processed == count


async def taskiq_run(count: int, pause: float, concurrency: int) -> None:
    from taskiq import InMemoryBroker

    broker = InMemoryBroker(max_async_tasks=concurrency)

    @broker.task
    async def handle(n: int, name: str) -> None:
        if pause:
            await GAUGE.pause(pause)

    await broker.startup()
    for n in range(count):
        await handle.kiq(n, "job")
    await broker.wait_all()
    await broker.shutdown()


async def faststream_run(count: int, pause: float, concurrency: int) -> None:
    from faststream.redis import RedisBroker, TestRedisBroker

    broker = RedisBroker()
    handled = 0

    @broker.subscriber("work")
    async def handle(work: dict[str, object]) -> None:
        nonlocal handled
        handled += 1
        if pause:
            await GAUGE.pause(pause)

    async with TestRedisBroker(broker) as test_broker:
        for start in range(0, count, concurrency):
            batch = range(start, min(start + concurrency, count))
            await asyncio.gather(
                *(test_broker.publish({"n": n, "name": "job"}, "work") for n in batch)
            )
    assert handled == count


async def taskiq_bounded_run(count: int, pause: float, concurrency: int) -> None:
    """taskiq held to ``concurrency`` handlers at once by a semaphore in the task itself."""
    from taskiq import InMemoryBroker

    broker = InMemoryBroker(max_async_tasks=concurrency)
    bound = asyncio.Semaphore(concurrency)

    @broker.task
    async def handle(n: int, name: str) -> None:
        async with bound:
            if pause:
                await GAUGE.pause(pause)

    await broker.startup()
    for n in range(count):
        await handle.kiq(n, "job")
    await broker.wait_all()
    await broker.shutdown()


Runner = Callable[[int, float, int], Awaitable[None]]


def timed(runner: Runner, count: int, pause: float, concurrency: int) -> tuple[float, int]:
    """Seconds one run took, and the most handlers it had in flight at once."""
    GAUGE.peak = GAUGE.now = 0
    started = time.perf_counter()
    asyncio.run(runner(count, pause, concurrency))
    return time.perf_counter() - started, GAUGE.peak


def sqlite_async_run(count: int, pause: float, concurrency: int) -> float:
    """Seconds for ``AsyncMessaging`` on a SQLite file: produce while a worker consumes."""
    from conveyor_sqlite import SqliteChannel

    @asynchronous("work")
    @command_handler
    async def handle(work: Work) -> None:
        if pause:
            await GAUGE.pause(pause)

    async def main() -> None:
        with tempfile.TemporaryDirectory() as folder:
            channel = SqliteChannel("work", path=Path(folder) / "q.db", synchronous="NORMAL")
            messaging = AsyncMessaging([handle], [channel], clock=SystemClock())
            async with messaging:
                worker = asyncio.ensure_future(
                    messaging.run(
                        "work", concurrency=concurrency, limit=count, finish_when_empty=False
                    )
                )
                for n in range(count):
                    await messaging.send(Work(n, "job"))
                assert (await worker).processed == count

    started = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - started


def sqlite_sync_run(count: int, pause: float, concurrency: int) -> float:
    """Seconds for ``Messaging`` on a SQLite file: send everything, then one consumer run."""
    from conveyor_sqlite import SqliteChannel

    @asynchronous("work")
    @command_handler
    def handle(work: Work) -> None:
        if pause:
            SystemClock().sleep(pause)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        channel = SqliteChannel("work", path=Path(folder) / "q.db", synchronous="NORMAL")
        messaging = Messaging([handle], [channel], clock=SystemClock())
        try:
            for n in range(count):
                messaging.send(Work(n, "job"))
            assert messaging.run("work", limit=count).processed == count
        finally:
            messaging.close()
    return time.perf_counter() - started


def best_of(
    peers: dict[str, Runner], count: int, pause: float, concurrency: int, repeats: int = 3
) -> dict[str, tuple[float, int]]:
    """Each peer's fastest of ``repeats`` runs, the peers interleaved round by round."""
    best: dict[str, tuple[float, int]] = {}
    for _ in range(repeats):
        for name, run in peers.items():
            seconds, peak = timed(run, count, pause, concurrency)
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, peak)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    logging.getLogger("taskiq").setLevel(logging.ERROR)
    peers: dict[str, Runner] = {
        "Conveyor AsyncMessaging": conveyor_run,
        "taskiq InMemoryBroker": taskiq_run,
        "FastStream TestRedisBroker": faststream_run,
    }
    count = 2_000 if quick else 10_000
    title(f"asyncio round trip: {count} messages sent, consumed, handled (one process)")
    rounds = best_of(peers, count, 0.0, 1)
    best = rounds["Conveyor AsyncMessaging"][0]
    print_table(
        ["", "messages/s", "µs per message", "Conveyor vs this"],
        [
            [name, fmt_int(count / s), f"{s / count * 1e6:.1f}", fmt_ratio(s / best)]
            for name, (s, _) in rounds.items()
        ],
    )
    io_count = 500 if quick else 2_000
    title(f"concurrency=10, handlers awaiting 1 ms: {io_count} messages")
    io_peers = {**peers, "taskiq, 10 at once (semaphore)": taskiq_bounded_run}
    ios = best_of(io_peers, io_count, 0.001, 10)
    best = ios["Conveyor AsyncMessaging"][0]
    print_table(
        ["", "messages/s", "peak in flight", "Conveyor vs this"],
        [
            [name, fmt_int(io_count / s), str(peak), fmt_ratio(s / best)]
            for name, (s, peak) in ios.items()
        ],
        note="the limit is 10 / 1 ms = 10,000 messages/s, less the loop's timer granularity "
        "(epoll waits whole milliseconds)",
    )
    sqlite_count = 500 if quick else 2_000
    title(f"SQLite file: AsyncSqliteTransport vs SqliteTransport, {sqlite_count} messages")
    rows = []
    for label, pause, concurrency in (("round trip", 0.0, 1), ("1 ms handlers", 0.001, 10)):
        sync_s = min(sqlite_sync_run(sqlite_count, pause, 1) for _ in range(3))
        async_s = min(sqlite_async_run(sqlite_count, pause, concurrency) for _ in range(3))
        rows.append(
            [
                label,
                fmt_int(sqlite_count / sync_s),
                f"{fmt_int(sqlite_count / async_s)} (concurrency={concurrency})",
                fmt_ratio(sync_s / async_s),
            ]
        )
    print_table(
        ["", "Messaging msgs/s", "AsyncMessaging msgs/s", "async vs sync"],
        rows,
        note="each AsyncSqliteTransport call hops to its worker thread and back; the sync "
        "consumer handles one message at a time",
    )


if __name__ == "__main__":
    main()
