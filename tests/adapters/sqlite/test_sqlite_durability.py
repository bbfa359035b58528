"""What is synced, how the schema moves from version 1, and what a default lease token is.

With ``synchronous="FULL"`` only commits that store a message are synced: a lease or an ack lost
to a power cut makes the message come back (at least once), never lose it. These tests watch
the statements the transport runs on its own connection.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from conveyor.core.clock import VirtualClock
from conveyor.transports.seam import WireMessage
from conveyor_sqlite import SCHEMA_VERSION, SqliteTransport
from conveyor_sqlite.database import Database, Synchronous
from pytest_conveyor.conformance import receive_one

LEASE = timedelta(seconds=30)


def traced(transport: SqliteTransport) -> list[str]:
    """The statements the transport runs from now on, as SQLite reports them."""
    statements: list[str] = []
    transport._db._connection.set_trace_callback(
        lambda sql: statements.append(" ".join(sql.split()))
    )
    return statements


def synchronous_levels(statements: list[str]) -> list[str]:
    return [s.removeprefix("PRAGMA synchronous = ") for s in statements if "synchronous" in s]


@pytest.fixture
def full(db_path: Path, clock: VirtualClock) -> Iterator[SqliteTransport]:
    opened = SqliteTransport(db_path, clock=clock, synchronous="FULL")
    yield opened
    opened.close()


def test_under_full_a_send_is_synced_and_a_receive_and_ack_are_not(
    full: SqliteTransport,
) -> None:
    statements = traced(full)

    full.send("orders", WireMessage(b"1"))  # the connection is at FULL already
    delivery = receive_one(full, "orders", lease=LEASE)
    assert delivery is not None
    full.ack(delivery)
    full.send("orders", WireMessage(b"2"))

    assert synchronous_levels(statements) == ["NORMAL", "FULL"]
    claim = next(n for n, statement in enumerate(statements) if "RETURNING" in statement)
    assert statements.index("PRAGMA synchronous = NORMAL") < claim  # the lease is not synced


def test_a_consumer_switches_once_and_a_producer_never(full: SqliteTransport) -> None:
    statements = traced(full)
    for n in range(3):
        full.send("orders", WireMessage(b"%d" % n))
    sends = synchronous_levels(statements)

    while (delivery := receive_one(full, "orders", lease=LEASE)) is not None:
        full.ack(delivery)

    assert sends == []
    assert synchronous_levels(statements) == ["NORMAL"]


def test_release_is_synced_so_a_message_never_comes_back_before_its_delay(
    full: SqliteTransport, clock: VirtualClock
) -> None:
    full.send("orders", WireMessage(b"1"))
    delivery = receive_one(full, "orders", lease=LEASE)
    assert delivery is not None
    statements = traced(full)

    full.release(delivery, available_at=clock.now() + timedelta(minutes=5))

    assert synchronous_levels(statements) == ["FULL"]


@pytest.mark.parametrize("level", ["FULL", "NORMAL"])
def test_the_connection_reports_the_level_each_kind_of_write_needs(
    db_path: Path, level: Synchronous
) -> None:
    db = Database(db_path, owner="test", busy_timeout=timedelta(seconds=1), synchronous=level)

    def current(durable: bool) -> int:
        with db.transaction("reading the level", durable=durable) as connection:
            return int(connection.execute("PRAGMA synchronous").fetchone()[0])

    assert (current(durable=True), current(durable=False)) == (
        (2, 1) if level == "FULL" else (1, 1)
    )
    db.close()


def test_under_normal_nothing_is_switched(db_path: Path, clock: VirtualClock) -> None:
    transport = SqliteTransport(db_path, clock=clock, synchronous="NORMAL")
    statements = traced(transport)

    transport.send("orders", WireMessage(b"1"))
    delivery = receive_one(transport, "orders", lease=LEASE)
    assert delivery is not None
    transport.ack(delivery)

    assert synchronous_levels(statements) == []
    transport.close()


def test_a_send_and_an_ack_are_single_statements_and_a_receive_two(
    full: SqliteTransport,
) -> None:
    full.send("orders", WireMessage(b"1"))
    statements = traced(full)

    delivery = receive_one(full, "orders", lease=LEASE)
    assert delivery is not None
    full.ack(delivery)

    verbs = [s.split()[0] for s in statements if not s.startswith("PRAGMA")]
    # the first UPDATE marks ready the delayed messages that came due (none here), the second
    # leases the first due message and returns it; each is atomic on its own (autocommit)
    assert verbs == ["UPDATE", "UPDATE", "DELETE"]
    assert "RETURNING" in [s for s in statements if s.startswith("UPDATE")][1]


# --- older schema versions ---------------------------------------------------------------------


def index_columns(path: Path, index: str) -> list[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute(f"PRAGMA index_info({index})").fetchall()
    return [str(row[2]) for row in rows]


def make_version(path: Path, version: int) -> None:
    """Turn a current file into one as release ``version`` left it (1 or 2)."""
    claim_columns = "channel, priority DESC, id, available_at" + (
        ", lease_until" if version == 1 else ""
    )
    with sqlite3.connect(path) as old:
        old.execute("DROP INDEX conveyor_messages_ready")
        old.execute("DROP INDEX conveyor_messages_delayed")
        old.execute("DROP TABLE conveyor_quarantine")
        old.execute("ALTER TABLE conveyor_messages DROP COLUMN ready")
        old.execute(f"CREATE INDEX conveyor_messages_claim ON conveyor_messages ({claim_columns})")
        old.execute(f"PRAGMA user_version = {version}")


@pytest.mark.parametrize("version", [1, 2])
def test_a_file_of_an_older_version_is_migrated_and_keeps_its_messages_in_order(
    db_path: Path, clock: VirtualClock, version: int
) -> None:
    first = SqliteTransport(db_path, clock=clock)
    first.send("orders", WireMessage(b"later"), available_at=clock.now() + timedelta(seconds=5))
    first.send("orders", WireMessage(b"kept-1"))
    first.send("orders", WireMessage(b"kept-2"))
    first.close()
    make_version(db_path, version)
    assert "conveyor_messages_claim" in str(
        rows_of(db_path, "PRAGMA index_list(conveyor_messages)")
    )

    reopened = SqliteTransport(db_path, clock=clock)

    assert rows_of(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)] == [(4,)]
    indexes = {row[1] for row in rows_of(db_path, "PRAGMA index_list(conveyor_messages)")}
    assert "conveyor_messages_claim" not in indexes
    assert index_columns(db_path, "conveyor_messages_ready") == [
        "channel",
        "priority",
        "id",
        "available_at",
    ]
    assert index_columns(db_path, "conveyor_messages_delayed") == ["channel", "available_at"]
    received = [receive_one(reopened, "orders", lease=LEASE) for _ in range(3)]
    assert [d.message.body for d in received if d] == [b"kept-1", b"kept-2"]
    clock.advance(timedelta(seconds=5))
    late = receive_one(reopened, "orders", lease=LEASE)
    assert late is not None
    assert late.message.body == b"later"
    reopened.close()


def rows_of(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as connection:
        return connection.execute(sql).fetchall()


def test_leased_rows_at_the_head_are_skipped_without_the_lease_in_the_index(
    db_path: Path, clock: VirtualClock
) -> None:
    transport = SqliteTransport(db_path, clock=clock)
    for n in range(5):
        transport.send("orders", WireMessage(b"%d" % n))

    held = [receive_one(transport, "orders", lease=LEASE) for _ in range(3)]
    fourth = receive_one(transport, "orders", lease=LEASE)

    assert [d.message.body for d in held if d] == [b"0", b"1", b"2"]
    assert fourth is not None
    assert fourth.message.body == b"3"
    transport.close()


# --- lease tokens -------------------------------------------------------------------------------


def test_default_lease_tokens_are_one_id_per_transport_numbered_per_lease(
    db_path: Path, clock: VirtualClock
) -> None:
    a = SqliteTransport(db_path, clock=clock)
    b = SqliteTransport(db_path, clock=clock)
    for n in range(3):
        a.send("orders", WireMessage(b"%d" % n))

    receipts = [
        d.receipt
        for d in (receive_one(a, "orders", lease=LEASE) for _ in range(2))
        if d is not None
    ]
    other = receive_one(b, "orders", lease=LEASE)
    assert other is not None
    receipts.append(other.receipt)

    tokens = [receipt.split(":", 1)[1] for receipt in receipts]
    pattern = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}\.\d+")
    assert all(pattern.fullmatch(token) for token in tokens), tokens
    assert [token.rsplit(".", 1)[1] for token in tokens] == ["1", "2", "1"]
    assert tokens[0].rsplit(".", 1)[0] == tokens[1].rsplit(".", 1)[0] != tokens[2].rsplit(".")[0]
    a.close()
    b.close()
