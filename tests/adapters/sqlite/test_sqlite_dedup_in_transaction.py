"""Deduplication inside the handler's transaction, on one SQLite file.

With ``SqliteDeduplication(path, connection=conn)`` and ``Messaging(transaction=
sqlite_transaction(conn))`` the key is written on ``conn``, after the handler and before the
commit, so a process that dies after the commit leaves the key with the effect and the
redelivery is acknowledged as a duplicate. Without ``connection=`` the key is written after the
commit, and a death in between runs the effect twice: the window the README documents.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conveyor import (
    Deduplication,
    Messaging,
    RecordKind,
    RetryPolicy,
    VirtualClock,
    around,
    asynchronous,
    command_handler,
)
from conveyor.core.ids import SequentialIds
from conveyor.drivers.stack import StackOrder
from conveyor_sqlite import SqliteChannel, SqliteDeduplication, sqlite_transaction


@dataclass(frozen=True)
class Ship:
    order_id: str


class DiedAfterCommit(Exception):
    """Stands for a process killed between the handler's commit and the key's own write."""


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(db_path, isolation_level=None)
    connection.execute("CREATE TABLE IF NOT EXISTS shipped (order_id TEXT NOT NULL)")
    yield connection
    connection.close()


def build(db_path: Path, conn: sqlite3.Connection, *, in_transaction: bool) -> Messaging:
    @asynchronous("orders", retry=RetryPolicy(delays=[timedelta(seconds=1)], attempts=3))
    @command_handler(endpoint_id="ship")
    def ship(command: Ship) -> None:
        conn.execute("INSERT INTO shipped VALUES (?)", (command.order_id,))

    died: list[str] = []

    # Between deduplication (outside) and the transaction (inside): runs after the commit.
    @around(order=StackOrder.TRANSACTION - 1)
    def die_once_after_commit(proceed: Callable[[], object], message: object) -> object:
        result = proceed()
        if not died:
            died.append("once")
            raise DiedAfterCommit("killed after the commit")
        return result

    keys = SqliteDeduplication(db_path, connection=conn if in_transaction else None)
    return Messaging(
        handlers=[ship],
        channels=[SqliteChannel("orders", path=db_path, connection=conn)],
        clock=VirtualClock(),
        ids=SequentialIds(),
        transaction=sqlite_transaction(conn),
        deduplication=Deduplication(store=keys),
        interceptors=[die_once_after_commit],
    )


def shipped(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT order_id FROM shipped")]


def test_the_key_commits_with_the_effect_so_a_redelivery_is_a_duplicate(
    db_path: Path, conn: sqlite3.Connection
) -> None:
    messaging = build(db_path, conn, in_transaction=True)
    messaging.send(Ship("o-1"))

    messaging.run_until_idle(advance_time=True)

    assert shipped(conn) == ["o-1"]
    assert [r.message_id for r in messaging.journal.of_kind(RecordKind.DUPLICATE)] == ["msg-1"]
    messaging.close()


def test_a_store_with_its_own_transactions_leaves_a_window_after_the_commit(
    db_path: Path, conn: sqlite3.Connection
) -> None:
    messaging = build(db_path, conn, in_transaction=False)
    messaging.send(Ship("o-1"))

    messaging.run_until_idle(advance_time=True)

    assert shipped(conn) == ["o-1", "o-1"]  # the documented duplicate
    messaging.close()


def test_a_rolled_back_handler_leaves_no_key(db_path: Path, conn: sqlite3.Connection) -> None:
    attempts: list[int] = []

    @asynchronous("orders", retry=RetryPolicy(delays=[timedelta(seconds=1)], attempts=2))
    @command_handler(endpoint_id="ship")
    def ship(command: Ship) -> None:
        conn.execute("INSERT INTO shipped VALUES (?)", (command.order_id,))
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("rolled back")

    keys = SqliteDeduplication(db_path, connection=conn)
    messaging = Messaging(
        handlers=[ship],
        channels=[SqliteChannel("orders", path=db_path, connection=conn)],
        clock=VirtualClock(),
        transaction=sqlite_transaction(conn),
        deduplication=Deduplication(store=keys),
    )
    messaging.send(Ship("o-1"))

    messaging.run_until_idle(advance_time=True)

    assert len(attempts) == 2
    assert shipped(conn) == ["o-1"]
    messaging.close()


def test_a_key_committed_by_another_consumer_meanwhile_is_found_inside_the_transaction(
    db_path: Path, conn: sqlite3.Connection
) -> None:
    ran: list[str] = []

    @asynchronous("orders")
    @command_handler(endpoint_id="ship")
    def ship(command: Ship) -> None:
        ran.append(command.order_id)

    # After the check before the stack, another consumer (its lease ran out on this one)
    # commits the same message: its key is in the file when this transaction begins.
    @around(order=StackOrder.TRANSACTION - 1)
    def another_consumer_commits(proceed: Callable[[], object], message: object) -> object:
        other = SqliteDeduplication(db_path)
        other.add("ship", "msg-1", expires_at=datetime(2100, 1, 1, tzinfo=UTC))
        other.close()
        return proceed()

    messaging = Messaging(
        handlers=[ship],
        channels=[SqliteChannel("orders", path=db_path, connection=conn)],
        clock=VirtualClock(),
        ids=SequentialIds(),
        transaction=sqlite_transaction(conn),
        deduplication=Deduplication(store=SqliteDeduplication(db_path, connection=conn)),
        interceptors=[another_consumer_commits],
    )
    messaging.send(Ship("o-1"))

    messaging.run_until_idle()

    assert ran == []
    [duplicate] = messaging.journal.of_kind(RecordKind.DUPLICATE)
    assert duplicate.detail == "found inside the transaction"
    messaging.close()
