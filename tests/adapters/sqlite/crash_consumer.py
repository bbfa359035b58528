"""A consumer process for the crash test (run by test_sqlite_crash.py, not collected by pytest).

Usage: python crash_consumer.py QUEUE_DB EFFECTS_DB NAME [STALL_AT STALL_POINT]

It drains the "jobs" channel of QUEUE_DB with a short lease on the system clock. For each
message it records, in one transaction on EFFECTS_DB, that it handled the message and (unless
the deduplication key says it was done already) the effect itself with its deduplication key;
only then does it ack. Unless it is to stall, it prints "READY" after its first message. It
exits when the channel holds nothing, leased or not.

With STALL_AT=n it stops mid-handler on its n-th message, at STALL_POINT "before-effect" or
"after-effect": it prints "MID <message id>" and blocks reading stdin, waiting to be killed.
"""

from __future__ import annotations

import sqlite3
import sys
from datetime import timedelta

from conveyor.core.clock import SystemClock
from conveyor.core.errors import TransportError
from conveyor_sqlite import SqliteTransport, add_key, contains_key, ensure_schema, to_unix_ms
from pytest_conveyor.conformance import receive_one

CHANNEL = "jobs"
ENDPOINT = "crash-test.effect"
LEASE = timedelta(milliseconds=300)
KEEP_KEYS = timedelta(days=1)
LONGEST_IDLE = 0.05  # seconds between polls while another consumer holds the last leases

EFFECTS_TABLES = (
    """
    CREATE TABLE IF NOT EXISTS handled (
        seq INTEGER PRIMARY KEY, consumer TEXT NOT NULL, message_id TEXT NOT NULL,
        delivery_count INTEGER NOT NULL, applied INTEGER NOT NULL
    )
    """,
    "CREATE TABLE IF NOT EXISTS effects (message_id TEXT PRIMARY KEY, consumer TEXT NOT NULL)",
)


def open_effects(path: str) -> sqlite3.Connection:
    """The application's own database: its tables plus Conveyor's deduplication table."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("BEGIN IMMEDIATE")
    ensure_schema(connection)
    for statement in EFFECTS_TABLES:
        connection.execute(statement)
    connection.execute("COMMIT")
    return connection


def handle(
    effects: sqlite3.Connection, name: str, message_id: str, count: int, now_ms: int
) -> None:
    """The effect and its deduplication key commit together, or not at all."""
    effects.execute("BEGIN IMMEDIATE")
    try:
        applied = not contains_key(effects, ENDPOINT, message_id, now_ms=now_ms)
        if applied:
            effects.execute("INSERT INTO effects VALUES (?, ?)", (message_id, name))
            add_key(
                effects,
                ENDPOINT,
                message_id,
                expires_at_ms=now_ms + KEEP_KEYS // timedelta(milliseconds=1),
            )
        effects.execute(
            "INSERT INTO handled (consumer, message_id, delivery_count, applied) "
            "VALUES (?, ?, ?, ?)",
            (name, message_id, count, int(applied)),
        )
    except BaseException:
        effects.execute("ROLLBACK")
        raise
    effects.execute("COMMIT")


def stall(message_id: str) -> None:
    print(f"MID {message_id}", flush=True)
    sys.stdin.read()  # blocks until the test kills us
    raise SystemExit("stdin closed while stalled: the test should have killed this process")


def main(queue: str, effects_path: str, name: str, stall_at: int = 0, point: str = "") -> None:
    clock = SystemClock()
    transport = SqliteTransport(queue, clock=clock, busy_timeout=timedelta(seconds=30))
    effects = open_effects(effects_path)
    handled = 0
    while True:
        delivery = receive_one(transport, CHANNEL, lease=LEASE)
        if delivery is None:
            if transport.pending(CHANNEL) == 0:
                break
            due = transport.next_due(CHANNEL)
            wait = 0.0 if due is None else (due - clock.now()).total_seconds()
            clock.sleep(min(max(wait, 0.001), LONGEST_IDLE))
            continue
        handled += 1
        message_id = delivery.message.headers["id"]
        if handled == stall_at and point == "before-effect":
            stall(message_id)
        handle(effects, name, message_id, delivery.delivery_count, to_unix_ms(clock.now()))
        if handled == stall_at and point == "after-effect":
            stall(message_id)
        try:
            transport.ack(delivery)
        except TransportError:
            print(f"STALE {message_id}", flush=True)  # our lease ran out; the next holder acks
        if handled == 1 and not stall_at:
            print("READY", flush=True)
    print(f"DONE {handled}", flush=True)
    transport.close()
    effects.close()


if __name__ == "__main__":
    queue_db, effects_db, consumer = sys.argv[1:4]
    extra = sys.argv[4:]
    main(queue_db, effects_db, consumer, int(extra[0]) if extra else 0, extra[1] if extra else "")
