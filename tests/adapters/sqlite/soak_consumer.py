"""A consumer process for the SIGKILL soak (run by test_sqlite_soak.py, not collected by pytest).

Usage: python soak_consumer.py DB NAME DEDUP

It consumes the "jobs" channel of DB through a ``Messaging`` on the system clock, with the
application's transaction (``sqlite_transaction``) on the same file. The handler writes its
effect (a row in ``effects``) through the application's connection. With DEDUP=1 the
deduplication store joins that transaction, so the effect and its key commit together. It
prints one line per handled message (the soak paces its kills by them) and "DONE" once the
channel holds nothing, leased or not.
"""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import dataclass
from datetime import timedelta

from conveyor import Deduplication, Messaging, SystemClock, asynchronous, command_handler
from conveyor_sqlite import SqliteChannel, SqliteDeduplication, sqlite_transaction

LEASE = timedelta(seconds=2)
SYNCHRONOUS = "NORMAL"  # WAL with NORMAL loses nothing when a process dies (only on power loss)


@dataclass(frozen=True)
class Job:
    n: int


def connect(path: str) -> sqlite3.Connection:
    """The application's connection, with its table for the effects."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute(
        "CREATE TABLE IF NOT EXISTS effects (n INTEGER NOT NULL, consumer TEXT NOT NULL)"
    )
    return connection


def build(
    path: str, name: str, *, dedup: bool, connection: sqlite3.Connection | None = None
) -> Messaging:
    """The consumer's Messaging; ``connection`` is the application's (one is opened if None)."""
    connection = connection if connection is not None else connect(path)

    @asynchronous("jobs")
    @command_handler(endpoint_id="soak.effect")
    def effect(job: Job) -> None:
        connection.execute("INSERT INTO effects (n, consumer) VALUES (?, ?)", (job.n, name))
        print(job.n, flush=True)

    deduplication = (
        Deduplication(
            SqliteDeduplication(
                path,
                connection=connection,
                synchronous=SYNCHRONOUS,
                busy_timeout=timedelta(seconds=30),
            )
        )
        if dedup
        else None
    )
    return Messaging(
        handlers=[effect],
        channels=[
            SqliteChannel(
                "jobs",
                path=path,
                connection=connection,
                lease=LEASE,
                synchronous=SYNCHRONOUS,
                busy_timeout=timedelta(seconds=30),
            )
        ],
        clock=SystemClock(),
        transaction=sqlite_transaction(connection),
        deduplication=deduplication,
    )


def main(path: str, name: str, dedup: bool) -> None:
    messaging = build(path, name, dedup=dedup)
    inspect = messaging.runtimes["jobs"].inspectable
    assert inspect is not None
    while inspect.pending("jobs"):
        messaging.run("jobs", time_limit=timedelta(milliseconds=500))
    print("DONE", flush=True)
    messaging.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] == "1")
