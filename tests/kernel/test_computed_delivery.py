"""Delivery options computed from the message: ``@delayed``, ``@priority`` and ``@time_to_live``
take a function of the message, and a fallback form where the send's own option wins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from conveyor import (
    ConfigurationError,
    Context,
    Messaging,
    QueueChannel,
    RoutingError,
    SequentialIds,
    VirtualClock,
    asynchronous,
    delayed,
    event_handler,
    priority,
    time_to_live,
)
from conveyor.transports.memory import MemoryTransport

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TrialStarted:
    account: str
    remind_in_days: int
    tier: int = 0


def build(handlers: list[object]) -> Messaging:
    return Messaging(
        handlers=handlers,
        channels=[QueueChannel("reminders")],
        clock=VirtualClock(START),
        ids=SequentialIds(),
    )


def test_a_delay_computed_from_the_event() -> None:
    seen: list[tuple[str, datetime]] = []

    @asynchronous("reminders")
    @delayed(lambda event: timedelta(days=event.remind_in_days))
    @event_handler
    def remind(event: TrialStarted, ctx: Context) -> None:
        seen.append((event.account, ctx.now))

    messaging = build([remind])
    messaging.publish(TrialStarted("a-1", remind_in_days=3))
    messaging.publish(TrialStarted("a-2", remind_in_days=1))
    messaging.run_until_idle(advance_time=True)
    assert seen == [("a-2", START + timedelta(days=1)), ("a-1", START + timedelta(days=3))]


def test_a_fallback_delay_gives_way_to_the_sends_own() -> None:
    seen: list[tuple[str, datetime]] = []

    @asynchronous("reminders")
    @delayed(timedelta(days=7), fallback=True)
    @event_handler
    def remind(event: TrialStarted, ctx: Context) -> None:
        seen.append((event.account, ctx.now))

    messaging = build([remind])
    messaging.publish(TrialStarted("default", 0))
    messaging.publish(TrialStarted("asked", 0), delay=timedelta(hours=1))
    messaging.run_until_idle(advance_time=True)
    assert seen == [("asked", START + timedelta(hours=1)), ("default", START + timedelta(days=7))]


def test_priority_and_time_to_live_computed_from_the_event() -> None:
    @asynchronous("reminders")
    @priority(lambda event: event.tier)
    @time_to_live(lambda event: timedelta(minutes=5) if event.tier == 0 else None)
    @event_handler
    def remind(event: TrialStarted) -> None: ...

    messaging = build([remind])
    messaging.publish(TrialStarted("free", 0, tier=0))
    messaging.publish(TrialStarted("gold", 0, tier=9))
    transport = messaging.channels["reminders"].transport
    assert isinstance(transport, MemoryTransport)
    [first, second] = transport.receive("reminders", lease=timedelta(seconds=30), max_messages=2)
    assert first.message.headers["cv-priority"] == "9"  # gold first
    assert "cv-expires-at" not in first.message.headers
    assert second.message.headers["cv-expires-at"] == (START + timedelta(minutes=5)).isoformat()


def test_a_computed_value_that_is_not_a_duration_is_refused_at_send() -> None:
    @asynchronous("reminders")
    @delayed(lambda event: event.remind_in_days)  # forgot timedelta(days=...)
    @event_handler
    def remind(event: TrialStarted) -> None: ...

    messaging = build([remind])
    with pytest.raises(RoutingError, match="timedelta"):
        messaging.publish(TrialStarted("a-1", 3))


def test_computed_options_on_a_synchronous_handler_are_refused_at_bootstrap() -> None:
    @delayed(lambda event: timedelta(days=1))
    @event_handler
    def remind(event: TrialStarted) -> None: ...

    with pytest.raises(ConfigurationError, match="runs synchronously"):
        build([remind])
