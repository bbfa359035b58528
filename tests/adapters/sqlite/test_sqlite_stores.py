"""SqliteDeadLetterStore and SqliteDeduplication: the kernel's store protocols, kept in SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from conveyor.core.errors import DeadLetterNotFound, TransportClosed
from conveyor.stores.dead_letters import (
    DeadLetter,
    DeadLetterStore,
    InMemoryDeadLetterStore,
    not_found,
)
from conveyor.stores.deduplication import DeduplicationStore
from conveyor_sqlite import SqliteDeadLetterStore, SqliteDeduplication, add_key, contains_key
from conveyor_sqlite import deduplication as deduplication_module

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def letter(n: int, **changes: object) -> DeadLetter:
    base = DeadLetter(
        id=f"dl-{n}",
        message_id=f"m-{n}",
        channel="orders",
        endpoint_id="orders.place",
        message_type="PlaceOrder",
        body=b'{"order": %d}\xff' % n,
        headers={"cv-id": f"m-{n}", "x-tenant": "acme \u2713"},
        reason="failed",
        exception_type="builtins.ValueError",
        exception_message="no stock",
        traceback='Traceback (most recent call last):\n  File "x.py"\nValueError: no stock\n',
        attempts=3,
        first_failed_at=T0 + timedelta(microseconds=123),
        last_failed_at=(T0 + timedelta(minutes=n)).astimezone(timezone(timedelta(hours=2))),
        replayed=0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def letters(db_path: Path) -> Iterator[SqliteDeadLetterStore]:
    store = SqliteDeadLetterStore(db_path)
    yield store
    store.close()


@pytest.fixture
def keys(db_path: Path) -> Iterator[SqliteDeduplication]:
    store = SqliteDeduplication(db_path)
    yield store
    store.close()


# --- dead letters -----------------------------------------------------------------------------


def test_dead_letter_store_implements_the_protocol(letters: SqliteDeadLetterStore) -> None:
    assert isinstance(letters, DeadLetterStore)


def test_a_dead_letter_round_trips_every_field_exactly(letters: SqliteDeadLetterStore) -> None:
    original = letter(1)
    letters.add(original)

    stored = letters.get("dl-1")

    assert stored == original
    assert stored.last_failed_at is not None
    assert stored.last_failed_at.utcoffset() == timedelta(hours=2)

    sparse = letter(2, endpoint_id=None, exception_type=None, traceback=None, first_failed_at=None)
    letters.add(sparse)
    assert letters.get("dl-2") == sparse


def test_dead_letters_list_oldest_first_with_limit_and_offset(
    letters: SqliteDeadLetterStore,
) -> None:
    for n in (3, 1, 2):
        letters.add(letter(n))

    assert [d.id for d in letters.list()] == ["dl-3", "dl-1", "dl-2"]
    assert [d.id for d in letters.list(limit=2)] == ["dl-3", "dl-1"]
    assert [d.id for d in letters.list(offset=1)] == ["dl-1", "dl-2"]
    assert [d.id for d in letters.list(limit=1, offset=2)] == ["dl-2"]
    assert letters.list(offset=5) == []
    assert letters.count() == 3


def test_adding_an_existing_id_never_overwrites_like_the_memory_store(
    letters: SqliteDeadLetterStore,
) -> None:
    memory = InMemoryDeadLetterStore()
    for store in (letters, memory):
        assert store.add(letter(1)) == "dl-1"
        assert store.add(letter(2)) == "dl-2"
        assert store.add(letter(1, replayed=1, attempts=4)) == "dl-1#2"

    assert letters.list() == memory.list()
    assert [(d.id, d.replayed) for d in letters.list()] == [
        ("dl-1", 0),
        ("dl-2", 0),
        ("dl-1#2", 1),
    ]


def test_claim_takes_the_letter_out_once(letters: SqliteDeadLetterStore) -> None:
    letters.add(letter(1))
    letters.add(letter(2))

    assert letters.claim("dl-1") == letter(1)
    with pytest.raises(DeadLetterNotFound):
        letters.claim("dl-1")
    assert [d.id for d in letters.list()] == ["dl-2"]


def test_delete_removes_one_dead_letter(letters: SqliteDeadLetterStore) -> None:
    letters.add(letter(1))
    letters.add(letter(2))

    letters.delete("dl-1")

    assert [d.id for d in letters.list()] == ["dl-2"]
    assert letters.count() == 1


def test_unknown_ids_raise_the_kernel_s_not_found_error(letters: SqliteDeadLetterStore) -> None:
    with pytest.raises(DeadLetterNotFound) as on_empty:
        letters.get("dl-9")
    for n in range(1, 8):
        letters.add(letter(n))
    with pytest.raises(DeadLetterNotFound) as on_delete:
        letters.delete("dl-9")

    assert str(on_empty.value) == (
        "no dead letter with id 'dl-9'; the store is empty. List them with "
        "messaging.dead_letters.list() or `conveyor dead-letter list`."
    )
    # The kernel's helper words it; the store hands it the oldest ids and the count.
    assert str(on_delete.value) == str(not_found("dl-9", [f"dl-{n}" for n in range(1, 8)]))
    assert "the store holds 7: dl-1, dl-2, dl-3, dl-4, dl-5" in str(on_delete.value)
    assert letters.count() == 7


def test_dead_letters_survive_reopening_and_share_a_file_with_the_transport(
    db_path: Path, letters: SqliteDeadLetterStore
) -> None:
    letters.add(letter(1))
    letters.close()

    reopened = SqliteDeadLetterStore(db_path)

    assert reopened.get("dl-1") == letter(1)
    with sqlite3.connect(db_path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"conveyor_dead_letters", "conveyor_messages", "conveyor_deduplication"} <= tables
    reopened.close()


def test_the_dead_letter_store_refuses_use_after_close(letters: SqliteDeadLetterStore) -> None:
    letters.close()

    with pytest.raises(TransportClosed, match=r"SqliteDeadLetterStore on .* is closed"):
        letters.count()


# --- deduplication ----------------------------------------------------------------------------


def test_deduplication_implements_the_protocol(keys: SqliteDeduplication) -> None:
    assert isinstance(keys, DeduplicationStore)


def test_a_key_is_known_until_it_expires(keys: SqliteDeduplication) -> None:
    keys.add("orders.place", "m-1", expires_at=T0 + timedelta(seconds=10))

    assert keys.contains("orders.place", "m-1", now=T0)
    assert keys.contains("orders.place", "m-1", now=T0 + timedelta(seconds=9, milliseconds=999))
    assert not keys.contains("orders.place", "m-1", now=T0 + timedelta(seconds=10))
    assert not keys.contains("orders.ship", "m-1", now=T0)  # keys are per endpoint
    assert not keys.contains("orders.place", "m-2", now=T0)


def test_adding_a_key_again_moves_its_expiry(keys: SqliteDeduplication) -> None:
    keys.add("e", "k", expires_at=T0 + timedelta(seconds=1))
    keys.add("e", "k", expires_at=T0 + timedelta(hours=1))

    assert keys.contains("e", "k", now=T0 + timedelta(minutes=59))


def test_remove_expired_forgets_only_expired_keys_and_counts_them(
    keys: SqliteDeduplication,
) -> None:
    for n in range(2_500):
        keys.add("e", f"old-{n}", expires_at=T0 + timedelta(milliseconds=n % 10))
    keys.add("e", "young", expires_at=T0 + timedelta(days=1))
    keys.add("e", "edge", expires_at=T0 + timedelta(seconds=1))

    assert keys.remove_expired(now=T0 + timedelta(seconds=1)) == 2_501
    assert keys.remove_expired(now=T0 + timedelta(seconds=1)) == 0
    assert keys.contains("e", "young", now=T0)
    assert not keys.contains("e", "edge", now=T0)


def test_remove_expired_deletes_in_batches_one_transaction_each(
    keys: SqliteDeduplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(23):
        keys.add("e", f"k-{n}", expires_at=T0)
    keys.add("e", "kept", expires_at=T0 + timedelta(days=1))
    monkeypatch.setattr(deduplication_module, "REMOVE_BATCH", 5)
    statements: list[str] = []
    # The store's own connection, traced: the only way to see its transactions from outside.
    keys._db._connection.set_trace_callback(statements.append)

    assert keys.remove_expired(now=T0) == 23

    assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE"] * 5
    assert keys.contains("e", "kept", now=T0)


def test_remove_expired_stops_at_its_limit_oldest_first(keys: SqliteDeduplication) -> None:
    for n in range(30):
        keys.add("e", f"k-{n}", expires_at=T0 + timedelta(milliseconds=n))

    assert keys.remove_expired(now=T0 + timedelta(seconds=1), limit=12) == 12
    assert not keys.contains("e", "k-11", now=T0)
    assert keys.contains("e", "k-12", now=T0)
    assert keys.remove_expired(now=T0 + timedelta(seconds=1), limit=100) == 18


def test_a_key_added_through_the_application_s_transaction_commits_with_it(
    db_path: Path,
) -> None:
    application = sqlite3.connect(db_path, isolation_level=None)
    keys = SqliteDeduplication(db_path, connection=application)
    assert not keys.in_application_transaction()
    try:
        application.execute("BEGIN IMMEDIATE")
        assert keys.in_application_transaction()
        keys.add("e", "rolled back", expires_at=T0 + timedelta(days=1))
        application.execute("ROLLBACK")
        application.execute("BEGIN IMMEDIATE")
        keys.add("e", "committed", expires_at=T0 + timedelta(days=1))
        application.execute("COMMIT")
        keys.add("e", "own transaction", expires_at=T0 + timedelta(days=1))

        assert not keys.contains("e", "rolled back", now=T0)
        assert keys.contains("e", "committed", now=T0)
        assert keys.contains("e", "own transaction", now=T0)
    finally:
        keys.close()
        application.close()


def test_keys_survive_reopening(db_path: Path, keys: SqliteDeduplication) -> None:
    keys.add("e", "k", expires_at=T0 + timedelta(days=7))
    keys.close()

    reopened = SqliteDeduplication(db_path)

    assert reopened.contains("e", "k", now=T0 + timedelta(days=6))
    reopened.close()


def test_a_key_added_in_a_rolled_back_transaction_is_not_remembered(
    db_path: Path, keys: SqliteDeduplication
) -> None:
    application = sqlite3.connect(db_path, isolation_level=None)
    application.execute("BEGIN IMMEDIATE")
    add_key(application, "e", "k", expires_at_ms=1_900_000_000_000)
    assert contains_key(application, "e", "k", now_ms=0)  # visible inside the transaction
    application.execute("ROLLBACK")

    assert not keys.contains("e", "k", now=T0)

    application.execute("BEGIN IMMEDIATE")
    add_key(application, "e", "k", expires_at_ms=1_900_000_000_000)
    application.execute("COMMIT")
    application.close()
    assert keys.contains("e", "k", now=T0)
