"""RedisDeadLetterStore and RedisDeduplication: the kernel's store protocols, kept on Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from conveyor import VirtualClock
from conveyor.core.errors import DeadLetterNotFound
from conveyor.stores.dead_letters import DeadLetter, DeadLetterStore
from conveyor.stores.deduplication import DeduplicationStore
from conveyor_redis import RedisDeadLetterStore, RedisDeduplication

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def letter(n: int, **changes: object) -> DeadLetter:
    base = DeadLetter(
        id=f"dl-{n}",
        message_id=f"m-{n}",
        channel="orders",
        endpoint_id="orders.place",
        message_type="PlaceOrder",
        body=b'{"order": %d}\xff\x00' % n,
        headers={"cv-id": f"m-{n}", "x-tenant": "acme ✓ 日本"},
        reason="failed",
        exception_type="builtins.ValueError",
        exception_message="no stock",
        traceback="Traceback (most recent call last):\nValueError: no stock\n",
        attempts=3,
        first_failed_at=T0 + timedelta(microseconds=123),
        last_failed_at=(T0 + timedelta(minutes=n)).astimezone(timezone(timedelta(hours=2))),
        replayed=1,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def letters(redis_url: str, prefix: str) -> Iterator[RedisDeadLetterStore]:
    store = RedisDeadLetterStore(redis_url, prefix=prefix)
    yield store
    store.close()


def test_the_stores_implement_the_protocols(redis_url: str, prefix: str) -> None:
    letters = RedisDeadLetterStore(redis_url, prefix=prefix)
    keys = RedisDeduplication(redis_url, prefix=prefix)
    assert isinstance(letters, DeadLetterStore)
    assert isinstance(keys, DeduplicationStore)
    letters.close()
    keys.close()


def test_a_dead_letter_round_trips_every_field_exactly(letters: RedisDeadLetterStore) -> None:
    original = letter(1)
    sparse = letter(2, endpoint_id=None, exception_type=None, traceback=None, first_failed_at=None)
    letters.add(original)
    letters.add(sparse)

    assert letters.get("dl-1") == original
    assert letters.get("dl-2") == sparse
    stored = letters.get("dl-1").last_failed_at
    assert stored is not None
    assert stored.utcoffset() == timedelta(hours=2)


def test_letters_are_listed_oldest_first_and_never_overwritten(
    letters: RedisDeadLetterStore,
) -> None:
    for n in range(5):
        assert letters.add(letter(n)) == f"dl-{n}"
    assert letters.add(letter(1, reason="expired")) == "dl-1#2"

    # Letters added within one millisecond are ordered by id (the index is scored in ms).
    assert [x.id for x in letters.list()][:2] == ["dl-0", "dl-1"]
    assert {x.id for x in letters.list()} == {"dl-0", "dl-1", "dl-2", "dl-3", "dl-4", "dl-1#2"}
    assert letters.get("dl-1").reason == "failed"
    assert letters.get("dl-1#2") == letter(1, id="dl-1#2", reason="expired")
    listed = [x.id for x in letters.list()]
    assert [x.id for x in letters.list(limit=2, offset=1)] == listed[1:3]
    assert letters.list(limit=0) == []
    assert letters.count() == 6


def test_not_found_lists_a_bounded_sample(letters: RedisDeadLetterStore) -> None:
    for n in range(12):
        letters.add(letter(n))

    with pytest.raises(DeadLetterNotFound) as raised:
        letters.get("nope")

    assert "the store holds 12: dl-0, dl-1, dl-2, dl-3, dl-4 and 7 more." in str(raised.value)


def test_delete_and_unknown_ids(letters: RedisDeadLetterStore) -> None:
    letters.add(letter(1))
    letters.delete("dl-1")

    assert letters.count() == 0
    with pytest.raises(
        DeadLetterNotFound, match="no dead letter with id 'dl-1'; the store is empty"
    ):
        letters.get("dl-1")
    letters.add(letter(2))
    with pytest.raises(DeadLetterNotFound, match="the store holds 1: dl-2"):
        letters.delete("dl-9")


def test_claim_takes_a_letter_out_once_even_when_raced(letters: RedisDeadLetterStore) -> None:
    letters.add(letter(1))
    won: list[DeadLetter] = []
    lost: list[Exception] = []

    def claim() -> None:
        try:
            won.append(letters.claim("dl-1"))
        except DeadLetterNotFound as error:
            lost.append(error)

    racers = [threading.Thread(target=claim) for _ in range(8)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=10)

    assert won == [letter(1)]
    assert len(lost) == 7
    assert letters.count() == 0


def test_letters_expire_on_their_own_after_keep(redis_url: str, prefix: str) -> None:
    # ``keep`` runs on Redis's clock from the add, so it must outlast the adds and the first
    # count on a loaded machine (150 ms did not: the letter was sometimes gone before it was
    # counted). A long-kept letter beside it shows that only the expired one goes.
    kept = RedisDeadLetterStore(redis_url, prefix=prefix)
    short = RedisDeadLetterStore(redis_url, prefix=prefix, keep=timedelta(seconds=2))
    kept.add(letter(2))
    short.add(letter(1))
    assert short.count() == 2

    deadline = time.monotonic() + 15
    while short.count() == 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # polling Redis's own expiry until a deadline

    assert short.count() == 1
    assert short.list() == [letter(2)]
    with pytest.raises(DeadLetterNotFound):
        short.get("dl-1")
    short.close()
    kept.close()


def test_deduplication_keys_hold_until_their_expiry(redis_url: str, prefix: str) -> None:
    clock = VirtualClock()
    keys = RedisDeduplication(redis_url, clock=clock, prefix=prefix)
    keys.add("orders.place", "m-1", expires_at=clock.now() + timedelta(days=7))
    keys.add("a:b", "c", expires_at=clock.now() + timedelta(days=7))

    assert keys.contains("orders.place", "m-1", now=clock.now())
    assert not keys.contains("orders.place", "m-2", now=clock.now())
    assert not keys.contains("other", "m-1", now=clock.now())
    assert not keys.contains("a", "b:c", now=clock.now())  # no ambiguity in the key names
    assert not keys.contains("orders.place", "m-1", now=clock.now() + timedelta(days=7))
    assert keys.remove_expired(now=clock.now()) == 0  # Redis expires them on its own
    keys.close()


def test_deduplication_keys_expire_in_redis_on_their_own(redis_url: str, prefix: str) -> None:
    import redis

    keys = RedisDeduplication(redis_url, prefix=prefix)
    keys.add("orders.place", "m-1", expires_at=datetime.now(UTC) + timedelta(seconds=30))

    client = redis.Redis.from_url(redis_url)
    [key] = list(client.scan_iter(match=f"{prefix}:dedup:*"))
    assert 0 < client.pttl(key) <= 30_000
    client.close()
    keys.close()
