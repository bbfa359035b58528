"""Issue 4: a million delayed messages over 30 days of virtual time.

N commands (1,000,000; 100,000 with ``--quick``) are sent to an asynchronous handler on a
``QueueChannel`` with random delays (fixed seed, millisecond resolution) spread over 30 days, on a
``VirtualClock``; then ``messaging.advance(timedelta(days=30), max_steps=None)`` delivers them all,
each at its due instant.

* throughput: messages per second of the ``advance`` (every message delivered, decoded, handled,
  acknowledged);
* memory: tracemalloc bytes still held once all N are pending, per message (and at the peak
  while sending). tracemalloc makes a send about six times slower, so the first 80% of the sends
  run untraced (they give the send rate) and the last 20% traced (``_harness.traced_tail``
  explains why that is exact, with the timer heap's array charged to all N); the advance runs
  untraced. Memory only falls during the advance (pending messages are consumed, the journal is
  bounded), so the peak is reached while sending.

The Messaging uses ``journal=Journal(max_records=10_000)``: tests keep the full journal, but a
long virtual run would keep millions of records (two per send, two per delivery).

The limit is a bare ``heapq`` of ``(due, seq, body)`` tuples: push N (the due datetime computed from
the clock, the body the same JSON as the codec's), then pop all in due order, decoding each body
and calling the handler. Its memory is measured the same way.

Run alone: ``.venv/bin/python bench/bench_timers.py [--quick] [-n N]``.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
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
    VirtualClock,
    asynchronous,
    command_handler,
)

SEED = 20260101
SPAN = timedelta(days=30)
TARGET_VS_LIMIT = 10.0
TARGET_BYTES_BEYOND_PAYLOAD = 1024
TARGET_VS_HUEY = 0.5  # issue 21: at least twice as fast as huey


@dataclass(frozen=True, slots=True)
class Work:
    n: int


class Seen:
    count = 0
    last = -1


@asynchronous("work")
@command_handler
def handle(cmd: Work) -> None:
    Seen.count += 1


def delays(n: int) -> list[int]:
    """Delays in milliseconds over the span, from a fixed seed."""
    rng = random.Random(SEED)
    span_ms = int(SPAN.total_seconds() * 1000)
    return [rng.randrange(span_ms) for _ in range(n)]


def conveyor(delays_ms: list[int], traced_last: int) -> dict[str, float]:
    n = len(delays_ms)
    # max_steps=None here too: advance(max_steps=None) falls back to the Messaging's
    # max_steps (100,000 by default), which a million due instants exceed.
    messaging = Messaging(
        handlers=[handle],
        channels=[QueueChannel("work")],
        clock=VirtualClock(),
        journal=Journal(max_records=10_000),
        max_steps=None,
    )
    messaging.send(Work(-1))
    messaging.run("work")  # warm the codec's plans
    send = messaging.send
    ms = timedelta(milliseconds=1)
    untraced = n - traced_last

    def prefill() -> None:
        for i, delay in enumerate(delays_ms[:untraced]):
            send(Work(i), delay=delay * ms)

    def tail() -> None:
        for i, delay in enumerate(delays_ms[untraced:], start=untraced):
            send(Work(i), delay=delay * ms)

    memory = traced_tail(
        prefill, tail, total=n, traced=traced_last, reset_bounded=messaging.journal.clear
    )
    Seen.count = 0
    gc.collect()
    start = time.perf_counter()
    steps = messaging.advance(SPAN, max_steps=None)
    advance_s = time.perf_counter() - start
    if Seen.count != n:
        raise AssertionError(f"advance handled {Seen.count} of {n} delayed messages")
    messaging.close()
    return {
        "current": memory.per_message,
        "peak": memory.peak_per_message,
        "large": memory.large_blocks,
        "journal": memory.bounded,
        "advance": advance_s,
        "steps": steps,
        "send": memory.prefill_seconds / max(untraced, 1),
    }


def limit(delays_ms: list[int], start_at: datetime, repeats: int) -> dict[str, float]:
    """Push and pop the same (due, seq, body) tuples; time both, then their memory.

    The memory is traced on the first fifth of the delays: a heap of tuples has no fixed cost
    to amortize, so its bytes per entry do not depend on N.
    """
    n = len(delays_ms)
    ms = timedelta(milliseconds=1)
    dumps, loads = json.dumps, json.loads

    def push(heap: list[tuple[datetime, int, bytes]], count: int = n) -> None:
        heappush = heapq.heappush
        for i, delay in enumerate(delays_ms[:count]):
            heappush(heap, (start_at + delay * ms, i, dumps(asdict(Work(i))).encode()))

    def pop(heap: list[tuple[datetime, int, bytes]]) -> None:
        heappop = heapq.heappop
        while heap:
            handle(Work(**loads(heappop(heap)[2])))

    timings = []
    for _ in range(repeats):
        heap: list[tuple[datetime, int, bytes]] = []
        Seen.count = 0
        gc.collect()
        start = time.perf_counter()
        push(heap)
        pushed = time.perf_counter()
        pop(heap)
        done = time.perf_counter()
        assert Seen.count == n
        timings.append((pushed - start, done - pushed))
    push_s, pop_s = min(timings, key=sum)
    sample = max(n // 5, 1)
    kept: list[list[tuple[datetime, int, bytes]]] = [[]]
    current, peak, _ = traced(lambda: push(kept[0], sample))
    return {"push": push_s, "pop": pop_s, "current": current / sample, "peak": peak / sample}


def huey_run(delays_ms: list[int]) -> float | None:
    """huey's path for the same delayed tasks: seconds per message, or None without huey.

    ``MemoryHuey``, a ``@huey.task()`` and ``task.schedule(eta=...)``; then what its consumer
    does, on a timestamp passed in (huey's own virtual time): the worker dequeues each task,
    finds it not due and adds it to the schedule; at the end of the span the scheduler reads
    every due task (in due order) and enqueues it, and the worker dequeues and runs it.
    """
    try:
        from huey import MemoryHuey
    except ImportError:
        return None
    huey = MemoryHuey("timers", results=False, utc=True)

    @huey.task(name="handle_work")
    def handle_work(n: int) -> None:
        handle(Work(n))

    start_at = datetime(2026, 1, 1)  # huey with utc=True works in naive UTC datetimes
    end_at = start_at + SPAN
    ms = timedelta(milliseconds=1)
    schedule, dequeue, execute = handle_work.schedule, huey.dequeue, huey.execute
    Seen.count = 0
    gc.collect()
    started = time.perf_counter()
    for i, delay in enumerate(delays_ms):
        schedule(args=(i,), eta=start_at + delay * ms)
    while (task := dequeue()) is not None:
        execute(task, timestamp=start_at)  # not due yet: huey adds it to its schedule
    for task in huey.read_schedule(end_at):
        huey.enqueue(task)
    while (task := dequeue()) is not None:
        execute(task, timestamp=end_at)
    elapsed = time.perf_counter() - started
    if Seen.count != len(delays_ms):
        raise AssertionError(f"huey ran {Seen.count} of {len(delays_ms)} delayed tasks")
    return elapsed / len(delays_ms)


def main(quick: bool = False, n: int | None = None) -> None:
    n = n or (100_000 if quick else 1_000_000)
    delays_ms = delays(n)
    traced_last = n // 5
    conv = conveyor(delays_ms, traced_last)
    base = limit(delays_ms, VirtualClock().now(), 1 if quick else 2)
    huey = huey_run(delays_ms)
    body = len(json.dumps(asdict(Work(n // 2))).encode())
    payload = sys.getsizeof(json.dumps(asdict(Work(n // 2))).encode())

    title(f"Issue 4 - {n:,} delayed messages over 30 days of virtual time")
    print(
        "Conveyor: QueueChannel + VirtualClock + journal=Journal(max_records=10_000); "
        f"delays uniform in [0, 30 days) at 1 ms, seed {SEED}"
    )
    print(f"payload: Work(n: int) -> a {body}-byte JSON body ({payload} B as a bytes object)")
    print()
    limit_total = base["push"] + base["pop"]
    conv_rate = n / conv["advance"]
    rows = [
        [
            "limit: heapq push + pop (due, seq, body)",
            fmt_int(n / limit_total),
            f"{limit_total / n * 1e6:.2f}",
            "1.00x",
            fmt_bytes(base["current"]),
            fmt_bytes(base["peak"]),
            fmt_bytes(base["current"] - payload),
        ],
        [
            "  of which pop + decode + call",
            fmt_int(n / base["pop"]),
            f"{base['pop'] / n * 1e6:.2f}",
            "-",
            "-",
            "-",
            "-",
        ],
        [
            "Conveyor advance(30 days)",
            fmt_int(conv_rate),
            f"{conv['advance'] / n * 1e6:.2f}",
            fmt_ratio(conv["advance"] / limit_total),
            fmt_bytes(conv["current"]),
            fmt_bytes(conv["peak"]),
            fmt_bytes(conv["current"] - payload),
        ],
    ]
    print_table(
        [
            "",
            "msgs/s",
            "us/msg",
            "time vs limit",
            "B/pending",
            "peak B/pending",
            "B beyond payload",
        ],
        rows,
    )
    print()
    ratio = conv["advance"] / limit_total
    beyond = conv["peak"] - payload
    print(
        f"advance took {conv['steps']:,} steps. Sending cost {conv['send'] * 1e6:.1f} us/msg "
        f"({1 / conv['send']:,.0f} msgs/s, the first {n - traced_last:,} sends, untraced); "
        f"memory traced on the last {traced_last:,} sends, the timer heap's array "
        f"({conv['large'] / 2**20:.1f} MiB) and the bounded journal's 10,000 records "
        f"({conv['journal'] / 2**20:.1f} MiB) charged to all {n:,}."
    )
    print(
        f"target 'within {TARGET_VS_LIMIT:.0f}x of the limit': {ratio:.1f}x -> "
        f"{'MET' if ratio <= TARGET_VS_LIMIT else 'MISSED'}"
        + (f" by {ratio / TARGET_VS_LIMIT:.1f}x" if ratio > TARGET_VS_LIMIT else "")
    )
    print(
        f"target 'under 1 KiB per pending message beyond its payload': peak {beyond:,.0f} B "
        f"-> {'MET' if beyond < TARGET_BYTES_BEYOND_PAYLOAD else 'MISSED'}"
    )
    conveyor_per_message = conv["send"] + conv["advance"] / n  # send and delivery
    if huey is None:
        print("(huey: not installed, bash scripts/setup --bench)")
        return
    vs_huey = conveyor_per_message / huey
    print(
        f"send + delivery per message: Conveyor {conveyor_per_message * 1e6:.1f} us, huey "
        f"(MemoryHuey, schedule, then its worker and scheduler on huey's virtual timestamps) "
        f"{huey * 1e6:.1f} us: {vs_huey:.2f}x huey's time; target (issue 21) at most 0.5x -> "
        f"{'MET' if vs_huey <= TARGET_VS_HUEY else 'MISSED'}"
    )
    summarize("W4 delayed messages, 30 days", vs_huey, against="huey MemoryHuey", target=0.5)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 messages")
    parser.add_argument("-n", type=int, default=None, help="number of delayed messages")
    args = parser.parse_args()
    main(quick=args.quick, n=args.n)
