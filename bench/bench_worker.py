"""The production worker: messages per second at ``--concurrency`` 1, 4 and 8, against peers.

What it measures: N messages are queued, then one worker process's consumers (threads) handle
them all; the time from starting the worker to the last message handled gives messages per
second. Each handler waits 1 ms (a stand-in for an I/O call, which is what threads overlap), so
concurrency matters as it does in production. Rows, at each concurrency:

* conveyor: ``Messaging.serve(["work"], concurrency=c, finish_when_empty=True)`` on an SQLite
  channel (``synchronous="NORMAL"``) and on the in-memory transport;
* huey: ``SqliteHuey`` / ``MemoryHuey`` with ``Consumer(workers=c, worker_type="thread")``;
* dramatiq: ``StubBroker`` (in memory) with ``Worker(worker_threads=c)``; dramatiq has no SQLite
  broker, so that row is in memory only.

Run: ``.venv/bin/python bench/bench_worker.py [N]`` (install the peers with
``scripts/setup --bench``). Ratios are conveyor's messages/s over the peer's, measured in one
run; on a shared machine the absolute figures are noisy, the ratios less so.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conveyor import Messaging, QueueChannel, SystemClock, asynchronous, command_handler

WORK_SECONDS = 0.001
CONCURRENCY = (1, 4, 8)


class Seen:
    """Messages handled so far, counted under a lock (threads handle them)."""

    lock = threading.Lock()
    count = 0

    @classmethod
    def reset(cls) -> None:
        cls.count = 0

    @classmethod
    def add(cls) -> None:
        with cls.lock:
            cls.count += 1


def work() -> None:
    threading.Event().wait(WORK_SECONDS)  # an I/O call
    Seen.add()


@dataclass(frozen=True)
class Job:
    n: int


@asynchronous("work")
@command_handler
def handle(job: Job) -> None:
    work()


def conveyor(kind: str, n: int, concurrency: int, directory: Path) -> float:
    if kind == "sqlite":
        from conveyor_sqlite import SqliteChannel

        path = directory / f"conveyor-{concurrency}.db"
        channel: object = SqliteChannel("work", path=path, synchronous="NORMAL")
    else:
        channel = QueueChannel("work")
    with Messaging([handle], [channel], clock=SystemClock()) as messaging:  # type: ignore[list-item]
        for i in range(n):
            messaging.send(Job(i))
        Seen.reset()
        start = time.perf_counter()
        result = messaging.serve(["work"], concurrency=concurrency, finish_when_empty=True)
        elapsed = time.perf_counter() - start
    assert result.processed == n == Seen.count, (result, Seen.count)
    return elapsed


def huey(kind: str, n: int, concurrency: int, directory: Path) -> float:
    from huey import MemoryHuey, SqliteHuey
    from huey.consumer import Consumer

    logging.getLogger("huey").setLevel(logging.ERROR)
    if kind == "sqlite":
        queue = SqliteHuey(
            "bench", filename=str(directory / f"huey-{concurrency}.db"), results=False
        )
    else:
        queue = MemoryHuey("bench", results=False)

    @queue.task()
    def task(i: int) -> None:
        work()

    for i in range(n):
        task(i)
    Seen.reset()
    consumer = Consumer(queue, workers=concurrency, worker_type="thread", periodic=False)
    start = time.perf_counter()
    consumer.start()
    while Seen.count < n:
        time.sleep(0.001)
    elapsed = time.perf_counter() - start
    consumer.stop(graceful=True)
    return elapsed


def dramatiq(kind: str, n: int, concurrency: int, directory: Path) -> float:
    if kind == "sqlite":
        raise LookupError("dramatiq has no SQLite broker")
    import dramatiq as dq
    from dramatiq.brokers.stub import StubBroker

    logging.getLogger("dramatiq").setLevel(logging.ERROR)
    broker = StubBroker()
    broker.emit_after("process_boot")
    dq.set_broker(broker)

    @dq.actor(broker=broker, max_retries=0)
    def task(i: int) -> None:
        work()

    for i in range(n):
        task.send(i)
    Seen.reset()
    worker = dq.Worker(broker, worker_threads=concurrency, worker_timeout=10)
    start = time.perf_counter()
    worker.start()
    broker.join(task.queue_name)
    worker.join()
    elapsed = time.perf_counter() - start
    worker.stop()
    assert Seen.count == n
    return elapsed


ROWS: dict[str, Callable[[str, int, int, Path], float]] = {
    "conveyor": conveyor,
    "huey": huey,
    "dramatiq": dramatiq,
}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    print(f"worker throughput: {n} messages, each handler waits {WORK_SECONDS * 1000:g} ms")
    print(f"{'transport':<9} {'c':>2} {'conveyor msg/s':>15} {'huey msg/s':>11} "
          f"{'vs huey':>8} {'dramatiq msg/s':>15} {'vs dramatiq':>12}")  # fmt: skip
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        for kind in ("sqlite", "memory"):
            for concurrency in CONCURRENCY:
                rates: dict[str, float | None] = {}
                for name, run in ROWS.items():
                    try:
                        rates[name] = n / run(kind, n, concurrency, directory)
                    except Exception as error:  # a peer that cannot run here is reported
                        rates[name] = None
                        if name == "conveyor":
                            raise
                        print(f"  ({name} on {kind}: {type(error).__name__}: {error})")
                ours = rates["conveyor"]
                assert ours is not None
                cells = [f"{ours:>15,.0f}"]
                for peer in ("huey", "dramatiq"):
                    theirs = rates[peer]
                    width = 11 if peer == "huey" else 15
                    cells.append(f"{theirs:>{width},.0f}" if theirs else f"{'n/a':>{width}}")
                    ratio = f"{ours / theirs:.2f}x" if theirs else "n/a"
                    cells.append(f"{ratio:>{8 if peer == 'huey' else 12}}")
                print(f"{kind:<9} {concurrency:>2} {' '.join(cells)}")


if __name__ == "__main__":
    main()
