"""A receive reaches the first due message directly, however many delayed ones are stored.

The statements a receive runs are captured as SQLite executes them (values bound) and planned
with ``EXPLAIN QUERY PLAN`` on the same file: each must search an index (never scan the table
or sort), so a receive is O(log n) in the messages stored. ``bench/bench_sqlite_scale.py``
measures the time.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from conveyor.core.clock import VirtualClock
from conveyor.transports.seam import WireMessage
from conveyor_sqlite import SqliteTransport
from pytest_conveyor.conformance import receive_one

LEASE = timedelta(seconds=30)


def receive_statements(transport: SqliteTransport, channel: str) -> list[str]:
    """The SQL of one receive, with its values bound, as SQLite ran it."""
    statements: list[str] = []
    connection = transport._db._connection
    connection.set_trace_callback(lambda sql: statements.append(" ".join(sql.split())))
    try:
        assert receive_one(transport, channel, lease=LEASE) is not None
    finally:
        connection.set_trace_callback(None)
    return [s for s in statements if s.split()[0] in ("SELECT", "UPDATE")]


def plan(path: Path, statement: str) -> str:
    with sqlite3.connect(path) as connection:
        rows = connection.execute(f"EXPLAIN QUERY PLAN {statement}").fetchall()
    return " | ".join(str(row[-1]) for row in rows)


def test_every_statement_of_a_receive_searches_an_index_with_delayed_messages_ahead(
    db_path: Path, clock: VirtualClock
) -> None:
    transport = SqliteTransport(db_path, clock=clock)
    later = clock.now() + timedelta(hours=1)
    for n in range(200):
        transport.send("orders", WireMessage(b"later-%d" % n), available_at=later)
    transport.send("orders", WireMessage(b"due"), priority=3)
    with sqlite3.connect(db_path) as connection:
        connection.execute("ANALYZE")  # the planner sees how many rows are delayed

    promote, claim = receive_statements(transport, "orders")

    assert promote.startswith("UPDATE conveyor_messages SET ready = 1")
    assert plan(db_path, promote) == (
        "SEARCH conveyor_messages USING INDEX conveyor_messages_delayed "
        "(channel=? AND available_at<?)"
    )
    assert "RETURNING" in claim  # leases the first due message and reads it, in one statement
    assert plan(db_path, claim) == (
        "SEARCH conveyor_messages USING INTEGER PRIMARY KEY (rowid=?) | SCALAR SUBQUERY 1 | "
        "SEARCH conveyor_messages USING INDEX conveyor_messages_ready (channel=?)"
    )
    transport.close()


def test_delayed_messages_come_due_in_receive_order_among_the_ready_ones(
    db_path: Path, clock: VirtualClock
) -> None:
    transport = SqliteTransport(db_path, clock=clock)
    start = clock.now()
    transport.send("orders", WireMessage(b"delayed-low"), available_at=start + timedelta(seconds=2))
    transport.send("orders", WireMessage(b"now-low"))
    transport.send(
        "orders",
        WireMessage(b"delayed-high"),
        available_at=start + timedelta(seconds=1),
        priority=5,
    )
    transport.send("orders", WireMessage(b"now-high"), priority=5)

    first = receive_one(transport, "orders", lease=LEASE)
    clock.advance(timedelta(seconds=2))
    rest = [receive_one(transport, "orders", lease=LEASE) for _ in range(4)]

    assert first is not None
    assert first.message.body == b"now-high"
    assert [d.message.body for d in rest if d] == [b"delayed-high", b"delayed-low", b"now-low"]
    transport.close()


def test_a_released_message_waits_for_its_new_time_and_keeps_its_place(
    db_path: Path, clock: VirtualClock
) -> None:
    transport = SqliteTransport(db_path, clock=clock)
    transport.send("orders", WireMessage(b"first"))
    transport.send("orders", WireMessage(b"second"))
    delivery = receive_one(transport, "orders", lease=LEASE)
    assert delivery is not None
    transport.release(delivery, available_at=clock.now() + timedelta(seconds=1))

    before = receive_one(transport, "orders", lease=LEASE)
    assert before is not None
    transport.release(before)  # back at once
    clock.advance(timedelta(seconds=1))
    after = [receive_one(transport, "orders", lease=LEASE) for _ in range(3)]

    assert before.message.body == b"second"
    assert [d.message.body for d in after if d] == [b"first", b"second"]
    assert transport.next_due("orders") == clock.now() + LEASE
    transport.close()


def test_next_due_is_the_earliest_delayed_or_leased_time(
    db_path: Path, clock: VirtualClock
) -> None:
    transport = SqliteTransport(db_path, clock=clock)
    start = clock.now()
    assert transport.next_due("orders") is None
    transport.send("orders", WireMessage(b"a"), available_at=start + timedelta(seconds=9))
    transport.send("orders", WireMessage(b"b"), available_at=start + timedelta(seconds=4))
    assert transport.next_due("orders") == start + timedelta(seconds=4)
    transport.send("orders", WireMessage(b"c"))
    assert transport.next_due("orders") == start
    assert receive_one(transport, "orders", lease=timedelta(seconds=2)) is not None
    assert transport.next_due("orders") == start + timedelta(seconds=2)
    transport.close()
