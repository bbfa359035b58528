"""A synchronous handler's own instant retries: ``@command_handler(retry=RetryPolicy(...))``.

The optimistic-locking case: a write that lost a race is run again at once, as a whole new call
(its own collecting scope and transaction, the same message id), so nothing a failed attempt
sent leaves. The handler's setting is the most specific one: it wins over the bus's
``command_bus(retry=...)``. Both drivers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from conveyor import (
    AsyncContext,
    AsyncMessaging,
    ConfigurationError,
    Context,
    Failure,
    Messaging,
    RecordKind,
    RetryPolicy,
    SequentialIds,
    VirtualClock,
    asynchronous,
    command_handler,
    event_handler,
    query_handler,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Reserve:
    sku: str


@dataclass(frozen=True)
class Reserved:
    sku: str


@dataclass(frozen=True)
class Stock:
    sku: str


class StaleVersion(Exception):
    """Another writer saved the row first."""


class Inventory:
    """Rejects the first ``conflicts`` writes as stale; counts writes and transactions."""

    def __init__(self, conflicts: int) -> None:
        self.conflicts = conflicts
        self.writes = 0
        self.transactions: list[str] = []
        self.failures: list[Failure] = []

    @command_handler(retry=RetryPolicy(instant=2, on=StaleVersion))
    def reserve(self, command: Reserve, ctx: Context) -> str:
        self.writes += 1
        ctx.publish(Reserved(command.sku))  # leaves only with the attempt that succeeds
        if self.writes <= self.conflicts:
            raise StaleVersion(f"write {self.writes} lost the race")
        return f"reserved {command.sku} on write {self.writes}"

    @query_handler(retry=RetryPolicy(instant=1, on=StaleVersion))
    def stock(self, query: Stock) -> int:
        self.writes += 1
        if self.writes <= self.conflicts:
            raise StaleVersion("read a torn row")
        return 7

    @event_handler
    def on_failure(self, failure: Failure) -> None:
        self.failures.append(failure)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.transactions.append("begin")
        try:
            yield
        except BaseException:
            self.transactions.append("rollback")
            raise
        self.transactions.append("commit")


@asynchronous("shipping")
@event_handler
def ship(event: Reserved) -> None: ...


def build(inventory: Inventory) -> Messaging:
    return Messaging(
        handlers=[inventory, ship],
        channels=["shipping"],
        clock=VirtualClock(START),
        ids=SequentialIds(),
        transaction=inventory.transaction,
    )


def queued(messaging: Messaging) -> list[object]:
    return [r.payload for r in messaging.journal.of_kind(RecordKind.QUEUED)]


def test_a_handler_retries_at_once_each_attempt_a_new_call() -> None:
    inventory = Inventory(conflicts=2)
    messaging = build(inventory)
    assert messaging.send(Reserve("sku-1")) == "reserved sku-1 on write 3"
    assert inventory.transactions == ["begin", "rollback", "begin", "rollback", "begin", "commit"]
    assert queued(messaging) == [Reserved("sku-1")]  # the failed attempts sent nothing
    failed = messaging.journal.of_kind(RecordKind.FAILED)
    assert [(r.message_id, r.endpoint_id) for r in failed] == [("msg-1", "Inventory.reserve")] * 2
    assert messaging.ask(Stock("sku-1")) == 7  # past the conflicts: no retry needed


def test_when_the_handlers_retries_are_spent_the_last_error_is_raised() -> None:
    inventory = Inventory(conflicts=3)
    messaging = build(inventory)
    with pytest.raises(StaleVersion, match="write 3 lost the race"):
        messaging.send(Reserve("sku-1"))
    assert inventory.writes == 3  # the call and two retries
    assert queued(messaging) == []


def test_the_handlers_retry_wins_over_the_bus_retry() -> None:
    inventory = Inventory(conflicts=10)
    messaging = build(inventory)
    bus = messaging.command_bus(
        retry=RetryPolicy(instant=5, on=StaleVersion), error_handler=inventory.on_failure
    )
    assert bus.send(Reserve("sku-1")) is None
    assert inventory.writes == 3  # the handler's instant=2, not the bus's 5 on top
    [failure] = inventory.failures  # the bus's error handler still takes the failure
    assert failure.exception_type.endswith("StaleVersion")

    inventory.writes, inventory.conflicts = 0, 1
    assert messaging.query_bus(retry=RetryPolicy(instant=5)).ask(Stock("sku-1")) == 7
    assert inventory.writes == 2


def test_a_handler_called_inside_another_leaves_the_retry_to_the_enclosing_work() -> None:
    inventory = Inventory(conflicts=1)
    calls: list[str] = []

    @command_handler
    def restock(command: Stock, ctx: Context) -> None:
        calls.append("restock")
        ctx.send(Reserve(command.sku))

    messaging = Messaging(handlers=[inventory, restock, ship], channels=["shipping"])
    with pytest.raises(StaleVersion):
        messaging.send(Stock("sku-1"))  # inside restock's call: no retry of its own
    assert inventory.writes == 1
    outer = messaging.command_bus(retry=RetryPolicy(instant=1, on=StaleVersion))
    outer.send(Stock("sku-1"))  # the bus retries the whole call, which now succeeds
    assert calls == ["restock", "restock"]


def test_the_handlers_retry_is_for_synchronous_calls_only() -> None:
    with pytest.raises(ConfigurationError, match="retried at once"):
        command_handler(retry=RetryPolicy(delays=[timedelta(seconds=1)]))

    @asynchronous("shipping")
    @command_handler(retry=RetryPolicy(instant=1))
    def reserve(command: Reserve) -> None: ...

    with pytest.raises(
        ConfigurationError, match=r"Set it on @asynchronous\(\.\.\., retry=\.\.\.\)"
    ):
        Messaging(handlers=[reserve], channels=["shipping"])


def test_asyncio_a_handler_retries_at_once() -> None:
    writes: list[int] = []

    @command_handler(retry=RetryPolicy(instant=2, on=StaleVersion))
    async def reserve(command: Reserve, ctx: AsyncContext) -> int:
        writes.append(len(writes) + 1)
        await ctx.publish(Reserved(command.sku))
        if len(writes) < 3:
            raise StaleVersion("lost the race")
        return len(writes)

    @asynchronous("shipping")
    @event_handler
    async def ship_later(event: Reserved) -> None: ...

    async def scenario() -> None:
        async with AsyncMessaging(
            handlers=[reserve, ship_later], channels=["shipping"], clock=VirtualClock(START)
        ) as messaging:
            assert await messaging.send(Reserve("sku-1")) == 3
            queued = messaging.journal.of_kind(RecordKind.QUEUED)
            assert [r.payload for r in queued] == [Reserved("sku-1")]

    asyncio.run(scenario())
