"""Issue 7: send and consume N messages through a durable SQLite channel, one consumer process.

Every row sends N small messages (10,000; 2,000 with ``--quick``) into a fresh SQLite file in a
temporary directory from this process, then consumes them all in ONE separate consumer process.
The consumer process imports, opens the file and builds its objects before it starts its clock,
and reports the seconds from its first receive to its last message handled, so interpreter start
is not counted. Send and consume are timed separately; total is their sum (the phases do not
overlap). The payload is the same small dataclass everywhere, ``Work(n: int, name: str)``.

* raw sqlite3 (the limit): the statements ``SqliteTransport`` runs, written out by hand on one
  connection with the same pragmas (WAL, the same ``synchronous``, busy_timeout 5 s) and the
  adapter's own schema: one autocommit ``INSERT`` per send; per message, in autocommit, the
  ``UPDATE`` that marks ready the delayed messages come due, the ``UPDATE ... RETURNING`` that
  leases the first due message and reads it, then the handler (JSON decode, a call) and the
  ``DELETE`` of the ack: three statements. Like the adapter, with ``synchronous=FULL`` it syncs
  the sends and not the leases and deletes (see ``conveyor_sqlite.database``).
* Conveyor: ``@asynchronous("work") @command_handler`` on ``SqliteChannel("work", path=...,
  synchronous=...)``, production defaults (``SystemClock``, uuid v7 ids, bounded journal);
  N x ``messaging.send``, then ``messaging.run("work", finish_when_empty=True)`` in the consumer.
* huey (the peer): ``SqliteHuey`` (``results=False``: nothing is stored per task, as in the
  others) and a ``@huey.task()``; N calls, then one worker, the one ``huey_consumer -w 1``
  builds (``Consumer(huey, workers=1)._create_worker()``), looping in the consumer process's
  main thread until all N ran. huey sets no ``synchronous`` by default, so SQLite's FULL
  applies; for NORMAL its storage class is subclassed to set the pragma on its connection.

Both ``synchronous=FULL`` (Conveyor's default; survives power loss) and ``NORMAL`` (survives a
process crash) are measured. Targets (issue 7): Conveyor at least huey's throughput, and within
2x of the raw statements.

Run alone: ``.venv/bin/python bench/bench_sqlite.py [--quick] [--profile]``; ``--profile`` adds
where Conveyor's time goes (cProfile, in one process, by package).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import fmt_int, fmt_ratio, print_table, summarize, title

from conveyor import Messaging, SystemClock, asynchronous, command_handler
from conveyor_sqlite import SqliteChannel, ensure_schema

TARGET_VS_RAW = 2.0  # Conveyor within 2x of the raw statements
LEVELS = ("FULL", "NORMAL")
SUBJECTS = ("raw", "conveyor", "huey")
LABELS = {
    "raw": "raw sqlite3, same statements (limit)",
    "conveyor": "Conveyor SqliteChannel",
    "huey": "huey SqliteHuey, 1 worker (peer)",
}


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
    Seen.count += 1


def _expected(n: int) -> int:
    return n * (n - 1) // 2


# ---------------------------------------------------------------------------------- raw sqlite3

# The adapter's statements (conveyor_sqlite.messages), written out so the limit runs no adapter
# code at all; only the schema comes from the adapter, so the rows and indexes are the same.
_INSERT = """
    INSERT INTO conveyor_messages
        (channel, body, headers, priority, available_at, expires_at, delivery_count,
         enqueued_seq, ready)
    VALUES (?, ?, ?, ?, ?, ?, 0, (SELECT IFNULL(MAX(id), 0) + 1 FROM conveyor_messages), 1)
"""
_PROMOTE = """
    UPDATE conveyor_messages SET ready = 1 WHERE channel = ? AND ready = 0 AND available_at <= ?
"""
_CLAIM = """
    UPDATE conveyor_messages
    SET lease_until = ?, lease_token = ?,
        delivery_count = MIN(MAX(IFNULL(CAST(delivery_count AS INTEGER), 0), 0),
                             4611686018427387904) + 1
    WHERE id = (
        SELECT id FROM conveyor_messages
        WHERE channel = ? AND ready = 1 AND available_at <= ?
          AND (lease_until IS NULL OR lease_until <= ?
               OR typeof(lease_until) NOT IN ('integer', 'real'))
        ORDER BY priority DESC, id ASC LIMIT 1
    )
    RETURNING id, CAST(body AS BLOB), CAST(headers AS BLOB), delivery_count
"""
_DELETE = "DELETE FROM conveyor_messages WHERE id = ? AND lease_token = ?"


def _raw_connect(path: str, synchronous: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, timeout=5)
    connection.execute("PRAGMA busy_timeout = 5000")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(f"PRAGMA synchronous = {synchronous}")
    connection.execute("BEGIN IMMEDIATE")
    ensure_schema(connection)
    connection.execute("COMMIT")
    return connection


def raw_send(path: str, n: int, synchronous: str) -> float:
    connection = _raw_connect(path, synchronous)
    execute, dumps = connection.execute, json.dumps
    start = time.perf_counter()
    for i in range(n):
        now_ms = int(time.time() * 1000)
        body = dumps({"n": i, "name": "item"}).encode()
        execute(_INSERT, ("work", body, dumps({"id": str(i)}), 0, now_ms, None))
    elapsed = time.perf_counter() - start
    connection.close()
    return elapsed


def raw_consume(path: str, n: int, synchronous: str) -> float:
    # Leases and deletes are not synced, as in the adapter (a power cut only redelivers).
    connection = _raw_connect(path, "NORMAL" if synchronous == "FULL" else synchronous)
    execute, loads = connection.execute, json.loads
    start = time.perf_counter()
    lease = 0
    while True:
        now_ms = int(time.time() * 1000)
        execute(_PROMOTE, ("work", now_ms))
        lease += 1
        token = f"lease-{lease}"
        rows = execute(_CLAIM, (now_ms + 30_000, token, "work", now_ms, now_ms)).fetchall()
        if not rows:
            break
        row = rows[0]
        loads(row[2])
        handle(Work(**loads(row[1])))
        execute(_DELETE, (row[0], token))
    elapsed = time.perf_counter() - start
    connection.close()
    return elapsed


# ---------------------------------------------------------------------------------- Conveyor


def _conveyor(path: str, synchronous: str) -> Messaging:
    channel = SqliteChannel("work", path=path, synchronous=synchronous)  # type: ignore[arg-type]
    return Messaging(handlers=[handle], channels=[channel], clock=SystemClock())


def conveyor_send(path: str, n: int, synchronous: str) -> float:
    messaging = _conveyor(path, synchronous)
    send = messaging.send
    start = time.perf_counter()
    for i in range(n):
        send(Work(i, "item"))
    elapsed = time.perf_counter() - start
    messaging.close()
    return elapsed


def conveyor_consume(path: str, n: int, synchronous: str) -> float:
    messaging = _conveyor(path, synchronous)
    start = time.perf_counter()
    result = messaging.run("work", finish_when_empty=True)
    elapsed = time.perf_counter() - start
    messaging.close()
    if result.processed != n:
        raise AssertionError(f"Conveyor consumer processed {result.processed} of {n}: {result}")
    return elapsed


# ---------------------------------------------------------------------------------- huey


def _huey(path: str, synchronous: str) -> tuple[object, Callable[..., object]]:
    from huey import SqliteHuey
    from huey.storage import SqliteStorage

    class Storage(SqliteStorage):  # type: ignore[misc]
        """huey's SQLite storage with the row's ``synchronous`` level on its connection."""

        def _create_connection(self) -> sqlite3.Connection:
            connection = super()._create_connection()
            connection.execute(f"PRAGMA synchronous = {synchronous}")
            return connection  # type: ignore[no-any-return]

    huey = SqliteHuey("bench", filename=path, results=False, storage_class=Storage)

    @huey.task()  # type: ignore[misc]
    def handle_work(n: int, name: str) -> None:
        handle(Work(n, name))

    return huey, handle_work


def huey_send(path: str, n: int, synchronous: str) -> float:
    huey, task = _huey(path, synchronous)
    start = time.perf_counter()
    for i in range(n):
        task(i, "item")
    elapsed = time.perf_counter() - start
    huey.storage.close()  # type: ignore[attr-defined]
    return elapsed


def huey_consume(path: str, n: int, synchronous: str) -> float:
    import logging

    from huey.consumer import Consumer

    logging.getLogger("huey").setLevel(logging.ERROR)
    huey, _ = _huey(path, synchronous)
    worker = Consumer(huey, workers=1, worker_type="thread")._create_worker()
    worker.initialize()
    loop = worker.loop
    start = time.perf_counter()
    while Seen.count < n:
        loop()
    elapsed = time.perf_counter() - start
    huey.storage.close()  # type: ignore[attr-defined]
    return elapsed


SENDERS: dict[str, Callable[[str, int, str], float]] = {
    "raw": raw_send,
    "conveyor": conveyor_send,
    "huey": huey_send,
}
CONSUMERS: dict[str, Callable[[str, int, str], float]] = {
    "raw": raw_consume,
    "conveyor": conveyor_consume,
    "huey": huey_consume,
}


# ---------------------------------------------------------------------------------- one run


def consumer_process(subject: str, path: str, n: int, synchronous: str) -> float:
    """Run the consumer of ``subject`` in a new interpreter; return the seconds it measured."""
    command = [
        sys.executable,
        __file__,
        "--consumer",
        subject,
        "--path",
        path,
        "-n",
        str(n),
        "--synchronous",
        synchronous,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{subject} consumer failed:\n{done.stdout}\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["total"] != _expected(n):
        raise AssertionError(f"{subject} consumer handled total {report['total']}: {report}")
    return float(report["seconds"])


def one_run(subject: str, n: int, synchronous: str) -> tuple[float, float]:
    """Send n into a fresh file here, consume them in one consumer process: (send, consume)."""
    directory = tempfile.mkdtemp(prefix=f"bench-sqlite-{subject}-")
    try:
        path = os.path.join(directory, "queue.db")
        send = SENDERS[subject](path, n, synchronous)
        consume = consumer_process(subject, path, n, synchronous)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return send, consume


def _consumer_main(subject: str, path: str, n: int, synchronous: str) -> None:
    Seen.total = Seen.count = 0
    seconds = CONSUMERS[subject](path, n, synchronous)
    print(json.dumps({"seconds": seconds, "total": Seen.total, "count": Seen.count}))


# ---------------------------------------------------------------------------------- profile


def profile(n: int, synchronous: str) -> None:
    """Where Conveyor's time goes, send and consume in this process, by package."""
    import cProfile
    import pstats

    directory = tempfile.mkdtemp(prefix="bench-sqlite-profile-")
    path = os.path.join(directory, "queue.db")
    try:
        for phase in ("send", "consume"):
            profiler = cProfile.Profile()
            messaging = _conveyor(path, synchronous)
            if phase == "send":
                send = messaging.send
                profiler.enable()
                for i in range(n):
                    send(Work(i, "item"))
                profiler.disable()
            else:
                profiler.enable()
                messaging.run("work", finish_when_empty=True)
                profiler.disable()
            messaging.close()
            stats = pstats.Stats(profiler)
            by_area: dict[str, float] = {}
            total = 0.0
            for (filename, _, function), row in stats.stats.items():  # type: ignore[attr-defined]
                own = row[2]
                total += own
                by_area[_area(filename, function)] = by_area.get(_area(filename, function), 0) + own
            title(f"Profile: Conveyor {phase}, {n:,} messages, synchronous={synchronous}")
            print("own time per message by area (cProfile inflates Python calls)")
            print()
            rows = [
                [area, f"{seconds / n * 1e6:.1f}", f"{seconds / total:.0%}"]
                for area, seconds in sorted(by_area.items(), key=lambda kv: -kv[1])
            ]
            print_table(["area", "us/msg", "share"], rows)
            print()
            stats.sort_stats("tottime").print_stats(15)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _area(filename: str, function: str) -> str:
    if "conveyor_sqlite" in filename:
        return "adapter (conveyor_sqlite)"
    if "/conveyor/" in filename:
        return "kernel (conveyor)"
    if "sqlite3" in function or "Connection" in function or "Cursor" in function:
        return "SQLite (statements, commits)"
    if "json" in filename:
        return "json"
    return "other (stdlib, builtins)"


# ---------------------------------------------------------------------------------- main


def main(quick: bool, n: int | None, do_profile: bool) -> None:
    n = n or (2_000 if quick else 10_000)
    repeats = 2 if quick else 3
    try:
        import huey  # noqa: F401
    except ImportError as error:
        subjects: tuple[str, ...] = ("raw", "conveyor")
        missing = f"huey: {error} (bash scripts/setup --bench)"
    else:
        subjects, missing = SUBJECTS, ""

    for synchronous in LEVELS:
        runs: dict[str, list[tuple[float, float]]] = {s: [] for s in subjects}
        for _ in range(repeats):
            for subject in subjects:  # interleaved, so a burst of load hits every row
                runs[subject].append(one_run(subject, n, synchronous))

        title(f"Issue 7 - durable SQLite channel, synchronous={synchronous}")
        print(
            f"send {n:,} messages, then consume them in one consumer process; best of "
            f"{repeats} interleaved repeats; msgs/s"
        )
        print()
        best = {s: min(sum(r) for r in runs[s]) for s in subjects}
        rows = []
        for subject in subjects:
            send = min(r[0] for r in runs[subject])
            consume = min(r[1] for r in runs[subject])
            rows.append(
                [
                    LABELS[subject],
                    fmt_int(n / send),
                    fmt_int(n / consume),
                    fmt_int(n / best[subject]),
                    f"{best[subject] / n * 1e6:.0f}",
                    fmt_ratio(best[subject] / best["raw"]),
                    fmt_ratio(best["huey"] / best[subject]) if "huey" in best else "-",
                ]
            )
        print_table(["", "send", "consume", "total", "us/msg", "row / raw", "row vs huey"], rows)
        if missing:
            print(f"(skipped: {missing})")
        print("(row vs huey: how many times huey's time per message is the row's; >1 is faster)")
        print()
        vs_raw = best["conveyor"] / best["raw"]
        print(
            f"target 'within {TARGET_VS_RAW:.0f}x of raw': Conveyor / raw = {vs_raw:.2f}x -> "
            f"{'MET' if vs_raw <= TARGET_VS_RAW else 'MISSED'}"
        )
        if synchronous == "NORMAL":
            medians = {s: statistics.median(sum(r) for r in runs[s]) for s in subjects}
            summarize(
                "W5 SQLite queue, NORMAL (median)",
                medians["conveyor"] / medians["raw"],
                against="raw sqlite3",
                target=1.5,
            )
        if "huey" in best:
            vs_peer = best["huey"] / best["conveyor"]
            print(
                f"target 'at least huey's throughput': Conveyor is {vs_peer:.2f}x huey -> "
                f"{'MET' if vs_peer >= 1 else 'MISSED'}"
            )
        sys.stdout.flush()

    if do_profile:
        profile(n, "NORMAL")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=2,000 and 2 repeats")
    parser.add_argument("-n", type=int, default=None, help="messages per run")
    parser.add_argument("--profile", action="store_true", help="add a cProfile of Conveyor")
    parser.add_argument("--consumer", choices=SUBJECTS, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--synchronous", choices=LEVELS, default="FULL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consumer:
        _consumer_main(args.consumer, args.path, args.n, args.synchronous)
    else:
        main(args.quick, args.n, args.profile)
