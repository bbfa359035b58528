"""Expired deduplication keys are purged while consuming, at a bounded cost per message."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from failure_kit import START, ChargeCard, build, seconds

from conveyor import (
    ConfigurationError,
    Deduplication,
    InMemoryDeduplicationStore,
    asynchronous,
    command_handler,
)


@asynchronous("orders")
@command_handler(endpoint_id="charge")
def charge(command: ChargeCard) -> None:
    pass


class CountingStore(InMemoryDeduplicationStore):
    """Records the limit of every purge the kernel asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.purges: list[int | None] = []

    def remove_expired(self, *, now: datetime, limit: int | None = None) -> int:
        self.purges.append(limit)
        return super().remove_expired(now=now, limit=limit)


def test_the_kernel_purges_expired_keys_as_it_consumes() -> None:
    store = CountingStore()
    deduplication = Deduplication(store, expiry=seconds(5), purge_every=10, purge_limit=20)
    messaging = build([charge], ["orders"], deduplication=deduplication)

    for n in range(300):
        messaging.send(ChargeCard(f"o-{n}"))
        messaging.run_until_idle()
        messaging.advance(seconds(1))

    # Without a purge the store would hold all 300 keys; with it, about one window's worth.
    assert len(store) <= 5 + 10
    assert store.purges == [20] * 30  # one bounded purge per ten messages, never "all"


def test_a_purge_removes_at_most_its_limit_oldest_first() -> None:
    store = InMemoryDeduplicationStore()
    for n in range(50):
        store.add("charge", f"k-{n}", expires_at=START + seconds(n))
    store.add("charge", "k-0", expires_at=START + seconds(100))  # added again: kept

    assert store.remove_expired(now=START + seconds(30), limit=10) == 10
    assert not store.contains("charge", "k-10", now=START)
    assert store.contains("charge", "k-11", now=START)
    assert store.contains("charge", "k-0", now=START + seconds(60))
    assert store.remove_expired(now=START + seconds(30)) == 20
    assert len(store) == 20


def test_a_failing_purge_is_logged_and_the_message_still_handled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(InMemoryDeduplicationStore):
        def remove_expired(self, *, now: datetime, limit: int | None = None) -> int:
            raise OSError("disk gone")

    deduplication = Deduplication(Broken(), purge_every=1)
    messaging = build([charge], ["orders"], deduplication=deduplication)
    messaging.send(ChargeCard("o-1"))

    messaging.run_until_idle()

    assert [r.kind.value for r in messaging.journal][-1] == "handled"
    assert "purging expired deduplication keys failed (OSError: disk gone)" in caplog.text


@pytest.mark.parametrize("option", [{"purge_every": 0}, {"purge_limit": 0}])
def test_purge_settings_must_be_positive(option: dict[str, int]) -> None:
    with pytest.raises(ConfigurationError, match="must be at least 1"):
        Deduplication(InMemoryDeduplicationStore(), expiry=timedelta(days=1), **option)
