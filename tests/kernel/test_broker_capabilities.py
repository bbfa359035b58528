"""What the kernel does for brokers that lack a capability: it provides it, or refuses clearly."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from conveyor import (
    Channel,
    Clock,
    ConfigurationError,
    Context,
    Messaging,
    RecordKind,
    RetryPolicy,
    RoutingError,
    SequentialIds,
    SystemClock,
    VirtualClock,
    asynchronous,
    command_handler,
)
from conveyor.transports.memory import MemoryTransport
from conveyor.transports.seam import Capabilities, Delivery, Transport

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Job:
    name: str


class ShortDelays(MemoryTransport):
    """Like SQS: holds a delay of at most 15 minutes and ignores priority."""

    @property
    def capabilities(self) -> Capabilities:
        return dataclasses.replace(
            super().capabilities, max_delay=timedelta(minutes=15), priority=False
        )


@dataclass(frozen=True, kw_only=True)
class ShortDelayChannel(Channel):
    def open(self, clock: Clock) -> Transport:
        return ShortDelays(clock)


def recorder() -> tuple[object, list[tuple[str, datetime]]]:
    seen: list[tuple[str, datetime]] = []

    @asynchronous("jobs")
    @command_handler
    def run_job(job: Job, ctx: Context) -> None:
        seen.append((job.name, ctx.now))

    return run_job, seen


def test_a_delay_longer_than_the_broker_holds_is_completed_by_the_kernel() -> None:
    handler, seen = recorder()
    messaging = Messaging(
        handlers=[handler],
        channels=[ShortDelayChannel("jobs")],
        clock=VirtualClock(START),
        ids=SequentialIds(),
    )
    messaging.send(Job("in an hour"), delay=timedelta(hours=1))
    transport = messaging.channels["jobs"].transport
    assert transport.next_due("jobs") == START + timedelta(minutes=15)  # type: ignore[attr-defined]
    messaging.advance(timedelta(minutes=59, seconds=59))
    assert seen == []
    messaging.advance(timedelta(seconds=1))
    assert seen == [("in an hour", START + timedelta(hours=1))]
    assert [r.kind for r in messaging.journal].count(RecordKind.HANDLED) == 1


def test_priority_on_a_channel_that_cannot_honour_it_is_refused_at_send() -> None:
    handler, _ = recorder()
    messaging = Messaging(handlers=[handler], channels=[ShortDelayChannel("jobs")])
    with pytest.raises(RoutingError) as caught:
        messaging.send(Job("x"), priority=5)
    assert str(caught.value) == (
        "priority=5 was asked for Job, but channel 'jobs' (ShortDelays) does not honour "
        "priority; send without priority or use a channel that declares it."
    )


def test_a_delayed_copy_through_a_sequence_waits_at_the_last_channel() -> None:
    seen: list[datetime] = []

    @asynchronous("outbox", "jobs")
    @command_handler
    def run_job(job: Job, ctx: Context) -> None:
        seen.append(ctx.now)

    messaging = Messaging(
        handlers=[run_job],
        channels=["outbox", "jobs"],
        clock=VirtualClock(START),
        ids=SequentialIds(),
    )
    messaging.send(Job("later"), delay=timedelta(minutes=10))
    messaging.run("outbox")  # the outbox forwards at once, not in ten minutes
    assert messaging.channels["outbox"].transport.pending("outbox") == 0  # type: ignore[attr-defined]
    assert messaging.channels["jobs"].transport.pending("jobs") == 1  # type: ignore[attr-defined]
    messaging.advance(timedelta(minutes=10))
    assert seen == [START + timedelta(minutes=10)]


class LongPolling(MemoryTransport):
    """A broker with a long poll: records each receive that waited on it instead of sleeping."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.waits: list[timedelta] = []
        self.on_wait: Callable[[], None] = lambda: None

    def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        if wait is not None:
            self.waits.append(wait)
            self.on_wait()
            return []
        return super().receive(channel, lease=lease, max_messages=max_messages)


@dataclass(frozen=True, kw_only=True)
class LongPollingChannel(Channel):
    def open(self, clock: Clock) -> Transport:
        return LongPolling(clock)


def test_an_idle_consumer_waits_on_a_long_polling_broker_instead_of_sleeping() -> None:
    class NoSleepClock(SystemClock):
        def sleep(self, seconds: float) -> None:
            raise AssertionError("the consumer slept instead of waiting on the broker")

    handler, _ = recorder()
    messaging = Messaging(
        handlers=[handler], channels=[LongPollingChannel("jobs")], clock=NoSleepClock()
    )
    transport = messaging.channels["jobs"].transport
    assert isinstance(transport, LongPolling)

    def stop_after_two_waits() -> None:
        if len(transport.waits) == 2:
            messaging.driver.request_stop()

    transport.on_wait = stop_after_two_waits
    result = messaging.run("jobs")
    assert (result.processed, result.stopped_because, len(transport.waits)) == (0, "signal", 2)
    assert all(timedelta(0) < wait <= timedelta(seconds=1) for wait in transport.waits)


class NoDelays(MemoryTransport):
    """A broker that delivers everything at once: it cannot hold a message until due."""

    @property
    def capabilities(self) -> Capabilities:
        return dataclasses.replace(super().capabilities, delay=False)


@dataclass(frozen=True, kw_only=True)
class NoDelayChannel(Channel):
    def open(self, clock: Clock) -> Transport:
        return NoDelays(clock)


def no_delay_messaging(**options: object) -> Messaging:
    handler, _ = recorder()
    return Messaging(
        handlers=[handler],
        channels=[NoDelayChannel("jobs")],
        clock=VirtualClock(START),
        ids=SequentialIds(),
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "when", [{"delay": timedelta(minutes=5)}, {"at": START + timedelta(minutes=5)}]
)
def test_a_delay_to_a_channel_that_cannot_hold_it_is_refused_at_send(
    when: dict[str, object],
) -> None:
    messaging = no_delay_messaging()
    with pytest.raises(RoutingError, match="cannot hold delayed messages"):
        messaging.send(Job("later"), **when)  # type: ignore[arg-type]
    assert messaging.journal.of_kind(RecordKind.QUEUED) == []
    assert messaging.run_until_idle(advance_time=True) == 0  # nothing queued, no busy loop
    messaging.send(Job("now"))  # without a delay it is accepted
    assert messaging.run_until_idle() == 1


def test_delayed_retries_on_a_channel_that_cannot_hold_them_are_refused_at_bootstrap() -> None:
    with pytest.raises(ConfigurationError, match="cannot hold delayed messages"):
        no_delay_messaging(retry=RetryPolicy(delays=[timedelta(seconds=1)]))
    no_delay_messaging(retry=RetryPolicy(instant=2))  # instant retries need no delay
