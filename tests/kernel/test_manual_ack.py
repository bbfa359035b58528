"""Manual acknowledgement: on a channel with ack="manual" the handler acks or rejects each message.

``ctx.ack()`` acknowledges (when the handler returns, with what it sent); ``ctx.reject(reason)``
sends the message straight to the dead-letter store, with no retries; a handler that returns
without either gives the message back, and it comes again once the channel's lease has passed
(as a broker redelivers what its consumer never acknowledged). Both drivers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from conveyor import (
    AsyncContext,
    AsyncMessaging,
    ConfigurationError,
    Context,
    Messaging,
    QueueChannel,
    RecordKind,
    RetryPolicy,
    SequentialIds,
    VirtualClock,
    asynchronous,
    command_handler,
    event_handler,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class Import:
    file: str


@dataclass(frozen=True)
class Imported:
    file: str


@dataclass
class Upstream:
    """Whether the file is ready yet; the handler acknowledges only what it could import."""

    ready: bool = False
    calls: int = 0


def build(upstream: Upstream, seen: list[tuple[str, int]]) -> Messaging:
    @asynchronous("imports", retry=RetryPolicy(instant=2, delays=[timedelta(seconds=1)] * 3))
    @command_handler
    def run_import(command: Import, ctx: Context) -> None:
        upstream.calls += 1
        seen.append((command.file, ctx.attempt))
        ctx.publish(Imported(command.file))
        if command.file == "corrupt.csv":
            ctx.reject("corrupt header row")
        if command.file == "flaky.csv" and upstream.calls == 1:
            ctx.ack()
            raise ConnectionError("lost the database after ack()")
        if upstream.ready:
            ctx.ack()

    @asynchronous("audit")
    @event_handler
    def record_import(event: Imported) -> None: ...

    return Messaging(
        handlers=[run_import, record_import],
        channels=[QueueChannel("imports", ack="manual", lease=LEASE), QueueChannel("audit")],
        clock=VirtualClock(START),
        ids=SequentialIds(),
    )


def audited(messaging: Messaging) -> list[object]:
    return [r.payload for r in messaging.journal.of_kind(RecordKind.QUEUED) if r.channel == "audit"]


def test_an_acknowledged_message_is_handled_and_what_it_sent_leaves() -> None:
    messaging = build(Upstream(ready=True), seen := [])
    messaging.send(Import("a.csv"))
    messaging.run("imports")
    assert seen == [("a.csv", 1)]
    assert messaging.channels["imports"].pending() == 0
    assert [r.endpoint_id for r in messaging.journal.of_kind(RecordKind.HANDLED)] == ["run_import"]
    assert audited(messaging) == [Imported("a.csv")]


def test_a_message_returned_without_ack_comes_again_after_the_lease_and_sent_nothing() -> None:
    upstream = Upstream(ready=False)
    messaging = build(upstream, seen := [])
    messaging.send(Import("a.csv"))
    messaging.run("imports")
    [released] = messaging.journal.of_kind(RecordKind.RELEASED)
    assert released.detail == (
        "not acknowledged by the handler; comes again after the lease (0:05:00)"
    )
    assert messaging.journal.of_kind(RecordKind.HANDLED) == []
    assert messaging.journal.of_kind(RecordKind.FAILED) == []  # not a failure: no retry used
    assert audited(messaging) == []  # nothing the unfinished handler sent left
    assert messaging.channels["imports"].pending() == 1
    assert messaging.channels["imports"].next_due() == START + LEASE

    messaging.advance(LEASE - timedelta(seconds=1))
    assert seen == [("a.csv", 1)]  # still held, as a broker holds an unacknowledged message
    upstream.ready = True
    messaging.advance(timedelta(seconds=1))
    assert seen == [("a.csv", 1), ("a.csv", 2)]  # a redelivery is the next attempt
    assert audited(messaging) == [Imported("a.csv")]
    assert messaging.dead_letters.count() == 0
    assert messaging.channels["imports"].pending() == 0


def test_reject_dead_letters_at_once_with_the_reason_and_no_retries() -> None:
    messaging = build(Upstream(ready=True), seen := [])
    messaging.send(Import("corrupt.csv"))
    messaging.run_until_idle(advance_time=True)
    assert seen == [("corrupt.csv", 1)]  # instant=2 and three delays, none used
    [letter] = messaging.dead_letters.list()
    assert letter.reason == "rejected by the handler: corrupt header row"
    assert audited(messaging) == []
    assert messaging.journal.of_kind(RecordKind.RETRIED) == []


def test_a_failure_after_ack_is_a_failure_as_usual() -> None:
    messaging = build(Upstream(ready=True), seen := [])
    messaging.send(Import("flaky.csv"))
    messaging.run("imports")
    assert seen == [("flaky.csv", 1), ("flaky.csv", 1)]  # an instant retry, which acked
    assert [r.kind for r in messaging.journal.of_kind(RecordKind.FAILED)] == [RecordKind.FAILED]
    assert audited(messaging) == [Imported("flaky.csv")]  # once: the failed attempt's discarded
    assert messaging.channels["imports"].pending() == 0


def test_ack_is_harmless_where_acknowledgement_is_automatic() -> None:
    handled: list[str] = []

    @asynchronous("imports")
    @command_handler
    def run_import(command: Import, ctx: Context) -> None:
        ctx.ack()
        handled.append(command.file)

    @command_handler
    def check(command: Imported, ctx: Context) -> None:
        ctx.ack()  # a synchronous handler: nothing to acknowledge
        handled.append(command.file)

    messaging = Messaging(
        handlers=[run_import, check], channels=["imports"], clock=VirtualClock(START)
    )
    messaging.send(Import("a.csv"))
    messaging.send(Imported("b.csv"))
    messaging.run("imports")
    assert handled == ["b.csv", "a.csv"]


def test_an_unknown_ack_mode_is_refused_at_definition() -> None:
    with pytest.raises(ConfigurationError, match=r"ack='always'; choose 'auto'"):
        QueueChannel("imports", ack="always")  # type: ignore[arg-type]


def test_asyncio_manual_ack_acks_rejects_and_gives_back() -> None:
    seen: list[tuple[str, int]] = []
    ready = {"a.csv": False}

    @asynchronous("imports")
    @command_handler
    async def run_import(command: Import, ctx: AsyncContext) -> None:
        seen.append((command.file, ctx.attempt))
        await ctx.publish(Imported(command.file))
        if command.file == "corrupt.csv":
            ctx.reject("corrupt header row")
        if ready.get(command.file, True):
            ctx.ack()

    @asynchronous("audit")
    @event_handler
    async def record_import(event: Imported) -> None: ...

    async def scenario() -> None:
        clock = VirtualClock(START)
        async with AsyncMessaging(
            handlers=[run_import, record_import],
            channels=[QueueChannel("imports", ack="manual", lease=LEASE), QueueChannel("audit")],
            clock=clock,
            ids=SequentialIds(),
        ) as messaging:
            await messaging.send(Import("a.csv"))
            await messaging.send(Import("b.csv"))
            await messaging.send(Import("corrupt.csv"))
            await messaging.run("imports")
            assert seen == [("a.csv", 1), ("b.csv", 1), ("corrupt.csv", 1)]
            [released] = messaging.journal.of_kind(RecordKind.RELEASED)
            assert released.detail.startswith("not acknowledged by the handler")
            [letter] = messaging.dead_letters.list()
            assert letter.reason == "rejected by the handler: corrupt header row"
            queued = [
                r.payload for r in messaging.journal.of_kind(RecordKind.QUEUED)
                if r.channel == "audit"
            ]  # fmt: skip
            assert queued == [Imported("b.csv")]
            ready["a.csv"] = True
            await messaging.run_until_idle(advance_time=True)
            assert seen[-1] == ("a.csv", 2)
            assert clock.now() == START + LEASE
            assert messaging.dead_letters.count() == 1

    asyncio.run(scenario())
