"""Issue 19's message-flow semantics under ``AsyncMessaging``: the same behaviour as ``Messaging``.

The sync driver's tests are the reference (``test_time``, ``test_broker_capabilities``,
``failure/test_error_handlers``, ``failure/test_final_failure``, ``test_collector_off``,
``test_buses``, ``test_computed_delivery``, ``test_journal_story``, ``test_send_retry``); each
test here runs the same scenario through the asyncio driver.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conveyor import (
    AsyncContext,
    AsyncMessaging,
    Channel,
    Clock,
    Failure,
    QueueChannel,
    RecordKind,
    RetryPolicy,
    RoutingError,
    SendFailed,
    SequentialIds,
    SettleError,
    VirtualClock,
    asynchronous,
    command_handler,
    delayed,
    event_handler,
    priority,
)
from conveyor.core.errors import ConnectionFailed, StaleReceipt
from conveyor.transports.async_memory import AsyncMemoryTransport
from conveyor.transports.seam import AsyncTransport, Capabilities, Delivery, WireMessage

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Task:
    name: str


@dataclass(frozen=True)
class Done:
    name: str
    remind_in_days: int = 1


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


def build(handlers: list[object], channels: list[Any], **options: Any) -> AsyncMessaging:
    return AsyncMessaging(
        handlers=handlers,
        channels=channels,
        clock=VirtualClock(START),
        ids=SequentialIds(),
        **options,
    )


def kinds(messaging: AsyncMessaging, kind: RecordKind) -> list[Any]:
    return messaging.journal.of_kind(kind)


def test_a_step_limit_runs_exactly_that_many_steps() -> None:
    ran: list[str] = []

    @asynchronous("work")
    @command_handler
    async def forever(task: Task, ctx: AsyncContext) -> None:
        ran.append(task.name)
        await ctx.send(Task("again"))

    async def scenario() -> None:
        async with build([forever], ["work"]) as messaging:
            await messaging.send(Task("start"))
            with pytest.raises(SettleError, match="within 3 steps"):
                await messaging.run_until_idle(max_steps=3)
        assert len(ran) == 3

    run(scenario)


class NoDelays(AsyncMemoryTransport):
    """A broker that delivers everything at once: it cannot hold a message until due."""

    @property
    def capabilities(self) -> Capabilities:
        return dataclasses.replace(super().capabilities, delay=False)


@dataclass(frozen=True, kw_only=True)
class NoDelayChannel(Channel):
    def open_async(self, clock: Clock) -> AsyncTransport:
        return NoDelays(clock)


def test_a_delay_to_a_channel_that_cannot_hold_it_is_refused_at_send() -> None:
    @asynchronous("jobs")
    @command_handler
    async def run_job(task: Task) -> None: ...

    async def scenario() -> None:
        async with build([run_job], [NoDelayChannel("jobs")]) as messaging:
            with pytest.raises(RoutingError, match="cannot hold delayed messages"):
                await messaging.send(Task("later"), delay=timedelta(minutes=5))
            assert kinds(messaging, RecordKind.QUEUED) == []
            await messaging.send(Task("now"))
            assert await messaging.run_until_idle() == 1

    run(scenario)


def test_the_handlers_dead_letter_setting_wins_over_the_roots_error_handler() -> None:
    taken: list[Failure] = []

    @asynchronous("orders", retry=RetryPolicy(instant=1), dead_letter=True)
    @command_handler
    async def place(task: Task) -> None:
        raise ValueError("out of stock")

    @event_handler
    async def on_failure(failure: Failure) -> None:
        taken.append(failure)

    async def scenario() -> None:
        async with build([place, on_failure], ["orders"], error_handler=on_failure) as messaging:
            await messaging.send(Task("o-1"))
            await messaging.run("orders")
            assert messaging.dead_letters.count() == 1
        assert taken == []

    run(scenario)


def test_release_gives_the_delivery_back_for_another_attempt() -> None:
    calls: list[int] = []

    @asynchronous("orders", dead_letter=False)
    @command_handler
    async def charge(task: Task, ctx: AsyncContext) -> None:
        calls.append(ctx.attempt)
        if len(calls) == 1:
            raise ConnectionError("card network down")

    async def scenario() -> None:
        async with build([charge], [QueueChannel("orders", final_failure="release")]) as m:
            await m.send(Task("o-1"))
            await m.run("orders", limit=1)
            [released] = kinds(m, RecordKind.RELEASED)
            assert released.detail == "final_failure='release'"
            assert kinds(m, RecordKind.REQUEUED) == []
            await m.run_until_idle()
        assert calls == [1, 2]  # the same delivery again: a redelivery is the next attempt

    run(scenario)


def test_a_channel_without_the_collector_sends_each_message_at_once() -> None:
    @asynchronous("imports", dead_letter=True)
    @command_handler
    async def run_import(task: Task, ctx: AsyncContext) -> None:
        await ctx.publish(Done("row-1"))
        raise RuntimeError("row 2 is corrupt")

    @asynchronous("progress")
    @event_handler
    async def show_progress(event: Done) -> None: ...

    async def scenario(collector: bool) -> list[object]:
        channels = [QueueChannel("imports", collector=collector), QueueChannel("progress")]
        async with build([run_import, show_progress], channels) as messaging:
            await messaging.send(Task("file"))
            await messaging.run("imports")
            return [
                r.payload for r in kinds(messaging, RecordKind.QUEUED) if r.channel == "progress"
            ]

    assert asyncio.run(scenario(collector=True)) == []
    assert asyncio.run(scenario(collector=False)) == [Done("row-1")]


def test_synchronous_subscribers_with_priority_run_first() -> None:
    order: list[str] = []

    @event_handler
    async def audit(event: Done) -> None:
        order.append("audit")

    @priority(10)
    @event_handler
    async def invalidate_cache(event: Done) -> None:
        order.append("cache")

    async def scenario() -> None:
        async with build([audit, invalidate_cache], []) as messaging:
            await messaging.publish(Done("x"))
        assert order == ["cache", "audit"]

    run(scenario)


def test_a_delay_computed_from_the_event_and_a_fallback_that_gives_way() -> None:
    reminded: list[tuple[str, datetime]] = []
    clock = VirtualClock(START)

    @asynchronous("reminders")
    @delayed(lambda event: timedelta(days=event.remind_in_days))
    @event_handler
    async def remind(event: Done) -> None:
        reminded.append((event.name, clock.now()))

    @asynchronous("reminders")
    @delayed(timedelta(days=7), fallback=True)
    @event_handler
    async def follow_up(event: Done) -> None:
        reminded.append((f"follow-up {event.name}", clock.now()))

    async def scenario() -> None:
        async with AsyncMessaging(
            handlers=[remind, follow_up], channels=["reminders"], clock=clock
        ) as messaging:
            await messaging.publish(Done("a", remind_in_days=3))
            await messaging.publish(Done("b", remind_in_days=3), delay=timedelta(days=1))
            await messaging.run_until_idle(advance_time=True)

    run(scenario)
    assert sorted(reminded, key=lambda r: (r[1], r[0])) == [
        ("follow-up b", START + timedelta(days=1)),  # the send's own delay wins a fallback
        ("a", START + timedelta(days=3)),
        ("b", START + timedelta(days=3)),  # the computed delay is the handler's, it wins
        ("follow-up a", START + timedelta(days=7)),
    ]


def test_the_journal_keeps_the_wire_form_and_what_never_left() -> None:
    @command_handler
    async def place(task: Task, ctx: AsyncContext) -> None:
        await ctx.publish(Done(task.name))
        if task.name == "bad":
            raise ValueError("refused")

    @asynchronous("notifications")
    @event_handler
    async def notify(event: Done) -> None: ...

    async def scenario() -> None:
        async with build([place, notify], ["notifications"]) as messaging:
            await messaging.send(Task("good"))
            [queued] = kinds(messaging, RecordKind.QUEUED)
            assert queued.wire is not None
            assert b'"good"' in queued.wire.body
            assert queued.wire.headers["cv-type"] == "Done"
            with pytest.raises(ValueError, match="refused"):
                await messaging.send(Task("bad"))
            [unsent] = kinds(messaging, RecordKind.UNSENT)
            assert unsent.payload == Done("bad")

    run(scenario)


class Outage(AsyncMemoryTransport):
    """A broker that refuses the first ``failures`` sends."""

    failures = 0

    async def send(self, channel: str, message: WireMessage, **options: Any) -> None:
        if Outage.failures > 0:
            Outage.failures -= 1
            raise ConnectionFailed("the broker is down")
        await super().send(channel, message, **options)


@dataclass(frozen=True, kw_only=True)
class OutageChannel(Channel):
    def open_async(self, clock: Clock) -> AsyncTransport:
        return Outage(clock)


def test_a_failed_send_from_a_handler_is_retried_then_fails_the_attempt() -> None:
    emailed: list[str] = []

    @asynchronous("orders", retry=RetryPolicy(delays=[timedelta(minutes=1)], attempts=2))
    @command_handler
    async def place(task: Task, ctx: AsyncContext) -> None:
        await ctx.publish(Done(task.name))

    @asynchronous("emails")
    @event_handler
    async def email(event: Done) -> None:
        emailed.append(event.name)

    send_retry = RetryPolicy(delays=[timedelta(milliseconds=10)], attempts=2, on=ConnectionFailed)

    async def scenario(failures: int) -> AsyncMessaging:
        channels = [QueueChannel("orders"), OutageChannel("emails", send_retry=send_retry)]
        async with build([place, email], channels) as messaging:
            await messaging.send(Task("o-1"))
            Outage.failures = failures
            await messaging.run_until_idle(advance_time=True)
            return messaging

    asyncio.run(scenario(failures=1))  # one failed send, then the retry gets through
    assert emailed == ["o-1"]
    emailed.clear()
    messaging = asyncio.run(scenario(failures=2))  # both sends fail: the attempt fails
    [failed, *_] = kinds(messaging, RecordKind.FAILED)
    assert failed.exception is not None
    assert emailed == ["o-1"]  # the handling attempt was retried as a whole, and got through
    assert SendFailed.__name__ in str(failed.exception)


def test_a_redelivery_is_journaled_with_its_delivery_count() -> None:
    calls: list[str] = []

    @asynchronous("orders")
    @command_handler
    async def place(task: Task) -> None:
        calls.append(task.name)
        if len(calls) == 1:
            raise RuntimeError("the database blinked")

    async def scenario() -> None:
        async with build([place], ["orders"]) as messaging:
            await messaging.send(Task("o-1"))
            with pytest.raises(RuntimeError):
                await messaging.run("orders", stop_on_failure=True)  # released: it comes again
            await messaging.run("orders")
            [delivered] = kinds(messaging, RecordKind.DELIVERED)
            assert (delivered.message_id, delivered.endpoint_id, delivered.delivery_count) == (
                "msg-1",
                "place",
                2,
            )

    run(scenario)


class StaleAcks(AsyncMemoryTransport):
    """A broker on which every lease ran out before the consumer acknowledged."""

    async def ack(self, delivery: Delivery) -> None:
        raise StaleReceipt(f"receipt {delivery.receipt} is stale")


@dataclass(frozen=True, kw_only=True)
class StaleChannel(Channel):
    def open_async(self, clock: Clock) -> AsyncTransport:
        return StaleAcks(clock)


def test_an_ack_after_the_lease_ran_out_is_journaled_as_stale() -> None:
    @asynchronous("orders")
    @command_handler
    async def place(task: Task) -> None: ...

    async def scenario() -> None:
        async with build([place], [StaleChannel("orders")]) as messaging:
            await messaging.send(Task("o-1"))
            await messaging.run("orders", limit=1)
            [stale] = kinds(messaging, RecordKind.STALE)
            assert (stale.message_id, stale.endpoint_id, stale.channel) == (
                "msg-1",
                "place",
                "orders",
            )
            assert "lease ran out" in stale.detail

    run(scenario)
