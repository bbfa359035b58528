"""Issue 11: costs that must not grow with what is stored.

* Dead-lettering: poison messages run through a ``Messaging`` into a dead-letter store that
  holds nothing, against one that already holds 20,000 letters; in memory and in SQLite. Adding
  a letter reads no other letter (``DeadLetterStore.add`` probes only its own id), so the ratio
  should be about 1.
* Receiving: due messages received and acked with nothing delayed ahead of them, against 50,000
  delayed messages ahead (not yet due); on the in-memory transport and on SQLite (schema 3's
  partial indexes reach the first due row directly).

Each pair is measured in one process, the two cases interleaved over repeats, best of the
repeats; the target is each ratio within 1.5x. SQLite files live in a temporary directory with
``synchronous="NORMAL"`` (the cost compared is the work per message, not the disk's fsync).

Run alone: ``.venv/bin/python bench/bench_scale.py [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import fmt_int, fmt_ns, fmt_ratio, print_table, title

from conveyor import (
    DeadLetter,
    DeadLetterStore,
    InMemoryDeadLetterStore,
    Messaging,
    QueueChannel,
    VirtualClock,
    asynchronous,
    command_handler,
)
from conveyor.transports.memory import MemoryTransport
from conveyor.transports.seam import ChannelOptions, Transport, WireMessage
from conveyor_sqlite import SqliteChannel, SqliteDeadLetterStore, SqliteTransport

LETTERS = 20_000
DELAYED = 50_000
TARGET = 1.5
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Poison:
    n: int


@asynchronous("orders")
@command_handler(endpoint_id="poison")
def poison(command: Poison) -> None:
    raise ValueError("always fails")


def letter(n: int) -> DeadLetter:
    return DeadLetter(
        id=f"old-{n}@poison",
        message_id=f"old-{n}",
        channel="orders",
        endpoint_id="poison",
        message_type="Poison",
        body=b'{"n": 0}',
        headers={"cv-id": f"old-{n}"},
        reason="failed",
    )


def dead_lettering(kind: str, folder: Path, batch: int, repeats: int) -> tuple[float, float]:
    """Seconds per dead letter with an empty store and with LETTERS stored (best of repeats)."""

    def build(name: str, stored: int) -> Messaging:
        store: DeadLetterStore
        if kind == "memory":
            store, channel = InMemoryDeadLetterStore(), QueueChannel("orders")
        else:
            path = folder / f"letters-{name}.db"
            store = SqliteDeadLetterStore(path, synchronous="NORMAL")
            channel = SqliteChannel("orders", path=path, synchronous="NORMAL")
        for n in range(stored):
            store.add(letter(n))
        return Messaging(
            handlers=[poison],
            channels=[channel],
            dead_letters=store,
            clock=VirtualClock(START),
            log_failures=False,
        )

    cases = {"empty": build("empty", 0), "full": build("full", LETTERS)}
    best = {name: float("inf") for name in cases}
    for _ in range(repeats):
        for name, messaging in cases.items():
            for n in range(batch):
                messaging.send(Poison(n))
            started = time.perf_counter()
            messaging.run("orders", limit=batch)
            best[name] = min(best[name], (time.perf_counter() - started) / batch)
    for messaging in cases.values():
        messaging.close()
    return best["empty"], best["full"]


def receiving(kind: str, folder: Path, batch: int, repeats: int) -> tuple[float, float]:
    """Seconds per receive and ack of a due message, with nothing and DELAYED delayed ahead."""
    clock = VirtualClock(START)

    def open_transport(name: str) -> Transport:
        if kind == "memory":
            return MemoryTransport(clock)
        return SqliteTransport(folder / f"receive-{name}.db", clock=clock, synchronous="NORMAL")

    cases = {"none": open_transport("none"), "delayed": open_transport("delayed")}
    for transport in cases.values():
        transport.declare(_options())
    later = START + timedelta(days=365)
    for n in range(DELAYED):
        cases["delayed"].send("orders", WireMessage(b"later %d" % n), available_at=later)
    best = {name: float("inf") for name in cases}
    lease = timedelta(minutes=1)
    for _ in range(repeats):
        for name, transport in cases.items():
            for n in range(batch):
                transport.send("orders", WireMessage(b"now %d" % n))
            started = time.perf_counter()
            for _ in range(batch):
                [delivery] = transport.receive("orders", lease=lease, max_messages=1)
                transport.ack(delivery)
            best[name] = min(best[name], (time.perf_counter() - started) / batch)
    for transport in cases.values():
        transport.close()
    return best["none"], best["delayed"]


def _options() -> ChannelOptions:
    return ChannelOptions("orders", lease=timedelta(minutes=1))


def row(what: str, kind: str, measure: Callable[[], tuple[float, float]]) -> list[str]:
    base, scaled = measure()
    ratio = scaled / base
    verdict = "met" if ratio <= TARGET else f"missed by {ratio / TARGET:.2f}x"
    return [what, kind, fmt_ns(base), fmt_ns(scaled), fmt_ratio(ratio), verdict]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    batch, repeats = (100, 3) if args.quick else (300, 5)
    title(
        f"Issue 11: dead-lettering with {fmt_int(LETTERS)} letters stored, receiving with "
        f"{fmt_int(DELAYED)} delayed ahead (target: within {TARGET}x of the empty case)"
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-scale-") as folder:
        for kind in ("memory", "sqlite"):
            rows.append(
                row(
                    "dead-letter one more",
                    kind,
                    lambda kind=kind: dead_lettering(kind, Path(folder), batch, repeats),
                )
            )
        for kind in ("memory", "sqlite"):
            rows.append(
                row(
                    "receive + ack one due",
                    kind,
                    lambda kind=kind: receiving(kind, Path(folder), batch, repeats),
                )
            )
    print_table(
        ["operation", "store", "empty (ns)", "scaled (ns)", "ratio", f"target {TARGET}x"],
        rows,
        left=2,
        note=f"per message, best of {repeats} repeats of {batch}; the two cases interleaved",
    )


if __name__ == "__main__":
    main()
