"""Issue 3: asynchronous handling on an in-memory channel: throughput, memory per queued message.

Throughput: send N small commands to an asynchronous handler, then consume them all; the clock
runs from the first send to the last message handled, so every row pays for producing, queueing,
serializing, consuming and handling. The payload is the same small dataclass everywhere
(``Work(n: int, name: str)``), built in the loop; every row round-trips it through JSON.

* Conveyor: ``@asynchronous("work") @command_handler``, ``QueueChannel("work")``, N x ``send`` then
  ``run("work")`` - once on a ``VirtualClock`` (``finish_when_empty`` is the default there; the
  journal is unbounded, as in tests) and once on a ``SystemClock`` with
  ``run("work", finish_when_empty=True)`` (uuid v7 ids, journal bounded at 10,000: production).
* limit: a ``collections.deque`` append + popleft and a direct call, with the same JSON round trip
  (``json.dumps(asdict(work))`` / ``Work(**json.loads(...))``): what any queue must at least do.
* dramatiq: ``StubBroker`` + ``Worker`` started before the sends, waited for with
  ``broker.join`` then ``worker.join``; default middleware; 1 and 8 (its default) worker threads.
* Celery: ``broker_url="memory://"`` with an embedded solo worker thread
  (``celery.contrib.testing.worker.start_worker``), results ignored, kombu polling at 10 ms.
* taskiq: ``InMemoryBroker`` and an ``async def`` task, waited for with ``broker.wait_all()``.

Memory: send N commands without consuming them, under tracemalloc; bytes still held divided by N.
Once with ``journal=Journal(max_records=1000)`` (the channel and kernel alone) and once with the
default journal of a ``VirtualClock`` Messaging (unbounded: two records per send, each keeping
the payload object), so the difference is what the journal costs.

Run alone: ``.venv/bin/python bench/bench_async.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    fmt_bytes,
    fmt_int,
    fmt_ratio,
    print_table,
    summarize,
    title,
    traced,
    traced_tail,
)

from conveyor import (
    Journal,
    Messaging,
    QueueChannel,
    SystemClock,
    VirtualClock,
    asynchronous,
    command_handler,
)

TARGET_VS_PEER = 5.0  # Conveyor at least 5x the fastest peer's throughput
TARGET_VS_LIMIT = 15.0  # and within 15x of the raw deque limit


@dataclass(frozen=True, slots=True)
class Work:
    n: int
    name: str


class Seen:
    total = 0
    count = 0


@asynchronous("work")
@command_handler
def handle(cmd: Work) -> None:
    Seen.total += cmd.n


def _expect(n: int, what: str) -> None:
    expected = n * (n - 1) // 2
    if Seen.total != expected:
        raise AssertionError(f"{what}: handled total {Seen.total}, expected {expected}")


# ---------------------------------------------------------------------------------- Conveyor


def conveyor_run(n: int, clock: str) -> tuple[float, float]:
    """Seconds to send n and to consume n (a fresh Messaging, built outside the clock)."""
    if clock == "virtual":
        messaging = Messaging(
            handlers=[handle], channels=[QueueChannel("work")], clock=VirtualClock()
        )
    else:
        messaging = Messaging(
            handlers=[handle], channels=[QueueChannel("work")], clock=SystemClock()
        )
    send, run = messaging.send, messaging.run
    Seen.total = 0
    start = time.perf_counter()
    for i in range(n):
        send(Work(i, "item"))
    sent = time.perf_counter()
    # A VirtualClock finishes when empty by default; a SystemClock is told to.
    result = run("work") if clock == "virtual" else run("work", finish_when_empty=True)
    done = time.perf_counter()
    assert result.processed == n, result
    _expect(n, f"Conveyor ({clock})")
    return sent - start, done - sent


def limit_run(n: int) -> float:
    """The raw limit: deque + JSON round trip + direct call."""
    queue: deque[bytes] = deque()
    append, popleft = queue.append, queue.popleft
    dumps, loads = json.dumps, json.loads
    work = handle  # the decorators only mark the function
    Seen.total = 0
    start = time.perf_counter()
    for i in range(n):
        append(dumps(asdict(Work(i, "item"))).encode())
    while queue:
        work(Work(**loads(popleft())))
    elapsed = time.perf_counter() - start
    _expect(n, "limit")
    return elapsed


# ---------------------------------------------------------------------------------- peers


class _Dramatiq:
    def __init__(self) -> None:
        import dramatiq  # noqa: F401  (fail here, not mid-run, when it is missing)

    def run(self, n: int, threads: int) -> float:
        import dramatiq
        from dramatiq import Worker
        from dramatiq.brokers.stub import StubBroker

        # A fresh broker per run: a Worker adds its middleware to the broker it serves.
        self.broker = StubBroker()
        self.broker.emit_after("process_boot")
        dramatiq.set_broker(self.broker)

        @dramatiq.actor(queue_name="work", max_retries=0, broker=self.broker)
        def handle_work(n: int, name: str) -> None:
            Seen.total += Work(n, name).n

        worker = Worker(self.broker, worker_timeout=100, worker_threads=threads)
        worker.start()
        send = handle_work.send
        Seen.total = 0
        try:
            start = time.perf_counter()
            for i in range(n):
                send(i, "item")
            self.broker.join("work")
            worker.join()
            elapsed = time.perf_counter() - start
        finally:
            worker.stop()
        _expect(n, f"dramatiq ({threads} threads)")
        return elapsed


class _Celery:
    def __init__(self) -> None:
        from celery import Celery

        for name in ("kombu", "celery"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self.app = Celery("bench", broker="memory://")
        self.app.conf.update(
            task_ignore_result=True,
            worker_hijack_root_logger=False,
            broker_connection_retry_on_startup=True,
            broker_transport_options={"polling_interval": 0.01},
        )
        self.done = threading.Event()
        self.target = 0

        @self.app.task(name="handle_work")
        def handle_work(n: int, name: str) -> None:
            Seen.total += Work(n, name).n
            Seen.count += 1
            if Seen.count >= self.target:
                self.done.set()

        self.task = handle_work

    def run_repeats(self, n: int, repeats: int) -> list[float]:
        """Start the embedded worker once (startup and shutdown take seconds), run repeats."""
        from celery.contrib.testing.worker import start_worker

        elapsed = []
        with start_worker(
            self.app,
            pool="solo",
            concurrency=1,
            perform_ping_check=False,
            loglevel="ERROR",
            shutdown_timeout=30,
        ):
            delay = self.task.delay
            for _ in range(repeats):
                Seen.total = Seen.count = 0
                self.target = n
                self.done.clear()
                start = time.perf_counter()
                for i in range(n):
                    delay(i, "item")
                if not self.done.wait(timeout=600):
                    raise TimeoutError(f"Celery handled {Seen.count} of {n} messages in 600 s")
                elapsed.append(time.perf_counter() - start)
                _expect(n, "Celery")
        return elapsed


class _Taskiq:
    def __init__(self) -> None:
        from taskiq import InMemoryBroker

        self.broker = InMemoryBroker()

        @self.broker.task(task_name="handle_work")
        async def handle_work(n: int, name: str) -> None:
            Seen.total += Work(n, name).n

        self.task = handle_work

    def run(self, n: int) -> float:
        async def scenario() -> float:
            await self.broker.startup()
            kiq = self.task.kiq
            try:
                start = time.perf_counter()
                for i in range(n):
                    await kiq(i, "item")
                await self.broker.wait_all()
                return time.perf_counter() - start
            finally:
                await self.broker.shutdown()

        Seen.total = 0
        elapsed = asyncio.run(scenario())
        _expect(n, "taskiq")
        return elapsed


class _Huey:
    """huey's ``MemoryHuey``: N task calls, then its worker's own loop (dequeue, execute).

    A huey consumer's worker thread runs exactly ``huey.dequeue()`` then ``huey.execute(task)``
    per message; running them here in the calling thread times the same work without a thread
    hand-off, the fairest figure for huey.
    """

    def __init__(self) -> None:
        from huey import MemoryHuey

        logging.getLogger("huey").setLevel(logging.ERROR)
        self.huey = MemoryHuey("bench", results=False)

        @self.huey.task(name="handle_work")
        def handle_work(n: int, name: str) -> None:
            Seen.total += Work(n, name).n

        self.task = handle_work

    def run(self, n: int) -> float:
        Seen.total = 0
        call, dequeue, execute = self.task, self.huey.dequeue, self.huey.execute
        start = time.perf_counter()
        for i in range(n):
            call(i, "item")
        while (task := dequeue()) is not None:
            execute(task)
        elapsed = time.perf_counter() - start
        _expect(n, "huey")
        return elapsed


def _peer(build: Callable[[], object], name: str, missing: list[str]) -> object | None:
    try:
        return build()
    except ImportError as error:
        missing.append(f"{name}: {error} (bash scripts/setup --bench)")
        return None


# ---------------------------------------------------------------------------------- memory


def queued_memory(n: int, journal: Journal | None, traced_last: int) -> dict[str, float]:
    """Bytes per queued (sent, not consumed) message once ``n`` are queued.

    The first ``n - traced_last`` sends run untraced, the last ``traced_last`` under tracemalloc
    (see ``traced_tail``); a bounded journal's records are measured whole and spread over all n.
    """
    messaging = Messaging(
        handlers=[handle], channels=[QueueChannel("work")], clock=VirtualClock(), journal=journal
    )
    messaging.send(Work(-1, "warm"))
    messaging.run("work")
    send = messaging.send

    def prefill() -> None:
        for i in range(n - traced_last):
            send(Work(i, "item"))

    def tail() -> None:
        for i in range(n - traced_last, n):
            send(Work(i, "item"))

    bounded = messaging.journal.clear if journal is not None else None
    memory = traced_tail(prefill, tail, total=n, traced=traced_last, reset_bounded=bounded)
    records = len(messaging.journal)
    if bounded is not None:  # emptied by the reset: it held max_records when measured
        records = min(2 * traced_last, _journal_bound(messaging.journal))
    messaging.close()
    return {
        "current": memory.per_message,
        "peak": memory.peak_per_message,
        "records": records / n,
        "large": memory.large_blocks,
        "journal": memory.bounded,
    }


def _journal_bound(journal: Journal) -> int:
    for name in ("_entries", "_records"):
        maxlen = getattr(getattr(journal, name, None), "maxlen", None)
        if isinstance(maxlen, int):
            return maxlen
    return 0


def deque_memory(n: int) -> float:
    """The limit's bytes per queued message: a deque of JSON bodies."""
    queue: deque[bytes] = deque()

    def fill() -> None:
        for i in range(n):
            queue.append(json.dumps(asdict(Work(i, "item"))).encode())

    current, _, _ = traced(fill)
    return current / n


# ---------------------------------------------------------------------------------- main


def main(quick: bool = False, n: int | None = None, memory_n: int | None = None) -> None:
    n = n or (2_000 if quick else 20_000)
    memory_n = memory_n or (200_000 if quick else 1_000_000)
    repeats = 3 if quick else 5
    missing: list[str] = []
    dramatiq = _peer(_Dramatiq, "dramatiq", missing)
    celery = _peer(_Celery, "celery", missing)
    taskiq = _peer(_Taskiq, "taskiq", missing)
    huey = _peer(_Huey, "huey", missing)

    # (name, n, run) with run returning elapsed seconds; interleaved over repeats.
    conveyor_split: dict[str, list[tuple[float, float]]] = {"virtual": [], "system": []}

    def conveyor(clock: str) -> Callable[[], float]:
        def run() -> float:
            send_s, consume_s = conveyor_run(n, clock)
            conveyor_split[clock].append((send_s, consume_s))
            return send_s + consume_s

        return run

    rows_spec: list[tuple[str, int, Callable[[], float]]] = [
        ("limit: deque + JSON + call", n, lambda: limit_run(n)),
        ("Conveyor, VirtualClock", n, conveyor("virtual")),
        ("Conveyor, SystemClock (production)", n, conveyor("system")),
    ]
    if isinstance(dramatiq, _Dramatiq):
        rows_spec.append(("dramatiq StubBroker, 1 thread", n, lambda: dramatiq.run(n, 1)))
        rows_spec.append(("dramatiq StubBroker, 8 threads", n, lambda: dramatiq.run(n, 8)))
    celery_n = max(n // 4, 500)  # ~10x slower than the rest: fewer messages, same per-message rate
    if isinstance(celery, _Celery):
        rows_spec.append(("Celery memory://, solo worker", celery_n, lambda: 0.0))
    if isinstance(taskiq, _Taskiq):
        rows_spec.append(("taskiq InMemoryBroker", n, lambda: taskiq.run(n)))
    if isinstance(huey, _Huey):
        rows_spec.append(("huey MemoryHuey, worker loop", n, lambda: huey.run(n)))

    times: dict[str, list[float]] = {name: [] for name, _, _ in rows_spec}
    for _ in range(repeats):
        for name, _, run in rows_spec:
            if not name.startswith("Celery"):
                times[name].append(run())
    if isinstance(celery, _Celery):  # its own block: one embedded worker for every repeat
        times["Celery memory://, solo worker"] = celery.run_repeats(celery_n, repeats)

    rate = {name: count / min(times[name]) for name, count, _ in rows_spec}
    limit = rate["limit: deque + JSON + call"]
    conveyor_rate = rate["Conveyor, VirtualClock"]
    peers = {name: r for name, r in rate.items() if not name.startswith(("limit", "Conveyor"))}
    fastest_peer = max(peers, key=peers.__getitem__) if peers else None

    title("Issue 3 - asynchronous handling on an in-memory channel: throughput")
    print(
        f"send N, then consume all; best of {repeats} interleaved repeats (Celery's in "
        f"one block, one worker); payload Work(n: int, name: str) through JSON"
    )
    print()
    rows = []
    for name, count, _ in rows_spec:
        r = rate[name]
        rows.append(
            [
                name,
                fmt_int(count),
                fmt_int(r),
                f"{1e6 / r:.1f}",
                fmt_ratio(limit / r),
                fmt_ratio(r / peers[fastest_peer]) if fastest_peer else "-",
            ]
        )
    print_table(["", "N", "msgs/s", "us/msg", "limit / row", "row / fastest peer"], rows)
    for reason in missing:
        print(f"(skipped: {reason})")
    print()
    for clock, label in (("virtual", "VirtualClock"), ("system", "SystemClock")):
        send_s, consume_s = min(conveyor_split[clock], key=sum)
        print(
            f"Conveyor {label}: send {send_s / n * 1e6:.1f} us/msg, consume "
            f"{consume_s / n * 1e6:.1f} us/msg"
        )
    print()
    if fastest_peer:
        vs_peer = conveyor_rate / peers[fastest_peer]
        print(
            f"target 'Conveyor >= {TARGET_VS_PEER:.0f}x the fastest peer': Conveyor "
            f"(VirtualClock) is {vs_peer:.2f}x {fastest_peer} -> "
            f"{'MET' if vs_peer >= TARGET_VS_PEER else 'MISSED'}"
            + (
                f" (needs {TARGET_VS_PEER / vs_peer:.1f}x faster; even the limit is only "
                f"{limit / peers[fastest_peer]:.1f}x that peer)"
                if vs_peer < TARGET_VS_PEER
                else ""
            )
        )
    if isinstance(huey, _Huey):  # issue 21: at least 2x faster than huey, medians
        production = statistics.median(times["Conveyor, SystemClock (production)"])
        summarize(
            "W2 async round trip, in-memory",
            production / statistics.median(times["huey MemoryHuey, worker loop"]),
            against="huey MemoryHuey",
            target=0.5,
        )
    vs_limit = limit / conveyor_rate
    print(
        f"target 'within {TARGET_VS_LIMIT:.0f}x of the limit': limit / Conveyor = "
        f"{vs_limit:.1f}x -> {'MET' if vs_limit <= TARGET_VS_LIMIT else 'MISSED'}"
    )

    title(f"Issue 3 - memory per queued message ({memory_n:,} sent, none consumed)")
    traced_last = memory_n // 4 if quick else memory_n // 10
    bounded = queued_memory(memory_n, Journal(max_records=1000), traced_last)
    unbounded_n = memory_n // 20 if quick else memory_n // 10
    unbounded = queued_memory(unbounded_n, None, unbounded_n)
    bare_n = memory_n // 10
    bare = deque_memory(bare_n)
    body = len(json.dumps(asdict(Work(123_456, "item"))).encode())
    rows = [
        ["limit: deque of JSON bodies", fmt_int(bare_n), "all", fmt_bytes(bare), "-", "-"],
        [
            "Conveyor, journal=Journal(max_records=1000)",
            fmt_int(memory_n),
            f"last {traced_last:,}",
            fmt_bytes(bounded["current"]),
            fmt_bytes(bounded["peak"]),
            f"{bounded['records']:.3f}",
        ],
        [
            "Conveyor, default journal (VirtualClock: unbounded)",
            fmt_int(unbounded_n),
            "all",
            fmt_bytes(unbounded["current"]),
            fmt_bytes(unbounded["peak"]),
            f"{unbounded['records']:.3f}",
        ],
    ]
    print_table(["", "queued", "traced sends", "B/msg", "peak B/msg", "records/msg"], rows)
    journal_cost = unbounded["current"] - bounded["current"]
    print()
    print(
        f"(first row: the last {traced_last:,} sends traced; the bounded journal's 1,000 records "
        f"hold {bounded['journal'] / 1e6:.2f} MB in all, spread over the {memory_n:,} messages)"
    )
    print(
        f"the JSON body is {body} bytes ({sys.getsizeof(b'x' * body)} B as a bytes object). "
        f"The channel and kernel hold {bounded['current']:,.0f} B per queued message, "
        f"{bounded['current'] / bare:.1f}x the bare deque; the unbounded journal adds "
        f"{journal_cost:,.0f} B more ({unbounded['records']:.0f} records per send, each "
        f"keeping the payload object alive)."
    )
    summarize(
        "memory per queued in-memory message",
        bounded["current"],
        against="bytes, bounded journal",
        target=300,
        unit="B",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=2,000 and 200,000 queued")
    parser.add_argument("-n", type=int, default=None, help="messages per throughput run")
    parser.add_argument("--memory-n", type=int, default=None, help="messages queued for memory")
    args = parser.parse_args()
    main(quick=args.quick, n=args.n, memory_n=args.memory_n)
