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

Run: ``.venv/bin/python bench/bench_worker.py [--quick] [N]``, or as the "worker" section of
``bench/run.py`` (install the peers with ``scripts/setup --bench``). Ratios are conveyor's
messages/s over the peer's, measured in one run; on a shared machine the absolute figures are
noisy, the ratios less so. Each case runs twice, interleaved with its peers, and keeps its
best. The summary rows of ``run.py`` ("W7 worker ...") are conveyor's time over the peer's at
concurrency 8 (lower is better; the target, 1, is "at least as fast").
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import fmt_int, fmt_ratio, print_table, summarize, title

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
    arguments = [a for a in sys.argv[1:] if a != "--quick"]
    quick = "--quick" in sys.argv[1:]
    n = int(arguments[0]) if arguments else (300 if quick else 1000)
    title(
        f"Worker throughput (issue 17): {n} messages, each handler waits {WORK_SECONDS * 1e3:g} ms"
    )
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        for kind in ("sqlite", "memory"):
            for concurrency in CONCURRENCY:
                rates = measure(kind, n, concurrency, directory)
                ours = rates["conveyor"]
                assert ours is not None
                cells = [kind, str(concurrency), fmt_int(ours)]
                for peer in ("huey", "dramatiq"):
                    theirs = rates[peer]
                    cells.append(fmt_int(theirs) if theirs else "n/a")
                    cells.append(fmt_ratio(ours / theirs) if theirs else "n/a")
                rows.append(cells)
                if concurrency == max(CONCURRENCY):
                    summarize_row(kind, concurrency, rates)
    headers = ["transport", "c", "conveyor msg/s", "huey msg/s", "vs huey"]
    print_table([*headers, "dramatiq msg/s", "vs dramatiq"], rows, left=1)
    print("(vs: conveyor's messages per second over the peer's; above 1x conveyor is faster)")


_REPORTED: set[tuple[str, str]] = set()  # a peer that cannot run a kind is said once


def measure(kind: str, n: int, concurrency: int, directory: Path) -> dict[str, float | None]:
    """Messages per second of each row at one setting: the best of two runs, interleaved."""
    best: dict[str, float | None] = {}
    for _ in range(2):
        for name, run in ROWS.items():
            try:
                rate = n / run(kind, n, concurrency, directory)
            except Exception as error:  # a peer that cannot run here is reported
                if name == "conveyor":
                    raise
                if (name, kind) not in _REPORTED:
                    _REPORTED.add((name, kind))
                    print(f"  ({name} on {kind}: {type(error).__name__}: {error})")
                best[name] = None
                continue
            previous = best.get(name)
            best[name] = rate if previous is None else max(previous, rate)
    return best


def summarize_row(kind: str, concurrency: int, rates: dict[str, float | None]) -> None:
    """One summary row per transport: conveyor's time over its closest peer's (lower is better)."""
    ours = rates["conveyor"]
    peer = "huey" if kind == "sqlite" else "dramatiq"
    theirs = rates[peer]
    if ours is None or theirs is None:
        return
    against = (
        f"{peer} ({'SqliteHuey' if kind == 'sqlite' else 'StubBroker'}), {concurrency} threads"
    )
    summarize(f"W7 worker c={concurrency} {kind}", theirs / ours, against=against, target=1.0)


if __name__ == "__main__":
    main()
