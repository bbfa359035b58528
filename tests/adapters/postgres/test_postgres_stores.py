"""The dead-letter and deduplication stores in PostgreSQL, and deduplication in the handler's
transaction: a rolled-back transaction leaves no key, a committed one keeps it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from postgres_support import unique

from conveyor.core.errors import ConfigurationError, DeadLetterNotFound
from conveyor.stores.dead_letters import DeadLetter
from conveyor.stores.deduplication import DeduplicationStore
from conveyor_postgres import PostgresDeadLetterStore, PostgresDeduplication

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _letter(letter_id: str, **changes: object) -> DeadLetter:
    values: dict[str, object] = {
        "id": letter_id,
        "message_id": f"m-{letter_id}",
        "channel": "orders",
        "endpoint_id": "orders.place",
        "message_type": "PlaceOrder",
        "body": b'{"order_id": "o-1"}\x00\xff',
        "headers": {"cv-id": f"m-{letter_id}", "tenant": "äcme ✓"},
        "reason": "failed",
        "exception_type": "ValueError",
        "exception_message": "card declined",
        "traceback": "Traceback ...",
        "attempts": 3,
        "first_failed_at": NOW,
        "last_failed_at": NOW + timedelta(seconds=3, microseconds=17),
        "replayed": 0,
    }
    values.update(changes)
    return DeadLetter(**values)  # type: ignore[arg-type]


@pytest.fixture
def letters(dsn: str) -> Iterator[PostgresDeadLetterStore]:
    schema = unique("cv_letters")  # its own schema: counts and order are this test's alone
    store = PostgresDeadLetterStore(dsn, schema=schema)
    yield store
    store.close()
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")


def test_dead_letters_round_trip_exactly_oldest_first(letters: PostgresDeadLetterStore) -> None:
    first, second = _letter("a"), _letter("b", endpoint_id=None, reason="unknown type")
    letters.add(first)
    letters.add(second)

    assert letters.list() == [first, second]
    assert letters.get("b") == second
    assert letters.count() == 2
    assert letters.list(limit=1, offset=1) == [second]


def test_adding_an_existing_id_never_overwrites(letters: PostgresDeadLetterStore) -> None:
    assert letters.add(_letter("a")) == "a"
    assert letters.add(_letter("b")) == "b"
    again = _letter("a", attempts=5, replayed=1)
    assert letters.add(again) == "a#2"

    assert [letter.id for letter in letters.list()] == ["a", "b", "a#2"]
    assert letters.get("a") == _letter("a")
    assert letters.get("a#2") == _letter("a", id="a#2", attempts=5, replayed=1)


def test_claim_takes_the_letter_out_once(letters: PostgresDeadLetterStore) -> None:
    letters.add(_letter("a"))

    assert letters.claim("a") == _letter("a")
    with pytest.raises(DeadLetterNotFound):
        letters.claim("a")
    assert letters.count() == 0


def test_not_found_lists_a_bounded_sample(letters: PostgresDeadLetterStore) -> None:
    for n in range(12):
        letters.add(_letter(f"l{n:02}"))

    with pytest.raises(DeadLetterNotFound) as raised:
        letters.get("nope")

    assert "the store holds 12: l00, l01, l02, l03, l04 and 7 more." in str(raised.value)


def test_unknown_dead_letter_names_what_exists(letters: PostgresDeadLetterStore) -> None:
    letters.add(_letter("a"))
    with pytest.raises(DeadLetterNotFound, match="a"):
        letters.get("zzz")
    letters.delete("a")
    with pytest.raises(DeadLetterNotFound):
        letters.delete("a")
    assert letters.count() == 0


@pytest.fixture
def dedup(dsn: str) -> Iterator[PostgresDeduplication]:
    store = PostgresDeduplication(dsn)
    yield store
    store.close()


def test_deduplication_store_follows_the_protocol(dedup: PostgresDeduplication) -> None:
    endpoint = unique("endpoint")
    assert isinstance(dedup, DeduplicationStore)
    assert not dedup.contains(endpoint, "k", now=NOW)
    dedup.add(endpoint, "k", expires_at=NOW + timedelta(hours=1))

    assert dedup.contains(endpoint, "k", now=NOW)
    assert not dedup.contains(endpoint, "k", now=NOW + timedelta(hours=1))
    assert not dedup.contains(endpoint, "other", now=NOW)


def test_remove_expired_forgets_only_expired_keys(dsn: str) -> None:
    schema = unique("cv_dedup")
    store = PostgresDeduplication(dsn, schema=schema)
    try:
        for n in range(5):
            store.add("e", f"old-{n}", expires_at=NOW - timedelta(seconds=1))
        store.add("e", "fresh", expires_at=NOW + timedelta(days=1))

        assert store.remove_expired(now=NOW) == 5
        assert store.contains("e", "fresh", now=NOW)
    finally:
        store.close()
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


class TestDeduplicationInTheApplicationTransaction:
    @pytest.fixture
    def application(self, dsn: str) -> Iterator[psycopg.Connection[object]]:
        connection = psycopg.connect(dsn, autocommit=True)
        yield connection
        connection.close()

    def test_rolled_back_transaction_leaves_no_key(
        self, dsn: str, application: psycopg.Connection[object]
    ) -> None:
        store = PostgresDeduplication(dsn, connection=application)
        endpoint = unique("endpoint")

        def record_then_fail() -> None:
            with application.transaction():
                store.add(endpoint, "m-1", expires_at=NOW + timedelta(days=1))
                assert store.in_application_transaction()
                assert store.contains(endpoint, "m-1", now=NOW)  # seen inside the transaction
                raise RuntimeError("the handler failed after recording its key")

        with pytest.raises(RuntimeError):
            record_then_fail()

        assert not store.contains(endpoint, "m-1", now=NOW)
        store.close()

    def test_key_is_invisible_to_others_until_commit(
        self, dsn: str, application: psycopg.Connection[object]
    ) -> None:
        inside = PostgresDeduplication(dsn, connection=application)
        outside = PostgresDeduplication(dsn)
        endpoint = unique("endpoint")
        with application.transaction():
            inside.add(endpoint, "m-1", expires_at=NOW + timedelta(days=1))
            assert not outside.contains(endpoint, "m-1", now=NOW)
        assert outside.contains(endpoint, "m-1", now=NOW)
        inside.close()
        outside.close()

    def test_outside_a_transaction_the_store_commits_on_its_own(
        self, dsn: str, application: psycopg.Connection[object]
    ) -> None:
        store = PostgresDeduplication(dsn, connection=application)
        endpoint = unique("endpoint")
        assert not store.in_application_transaction()
        store.add(endpoint, "m-1", expires_at=NOW + timedelta(days=1))
        with application.transaction():
            assert store.contains(endpoint, "m-1", now=NOW)
        store.close()

    def test_connection_to_another_database_is_refused(self, dsn: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as admin:
            name = unique("otherdb")
            admin.execute(f"CREATE DATABASE {name}")
        try:
            other_dsn = psycopg.conninfo.make_conninfo(dsn, dbname=name)
            with psycopg.connect(other_dsn) as other:
                store = PostgresDeduplication(dsn, connection=other)
                other.execute("SELECT 1")  # now in a transaction
                with pytest.raises(ConfigurationError, match="one database"):
                    store.add("e", "k", expires_at=NOW)
                store.close()
        finally:
            with psycopg.connect(dsn, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
