"""Sending from handlers: a channel send that fails (a broker that is down) is retried with
backoff, then fails the handling attempt so it is retried as a whole (per channel)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from conveyor import (
    Channel,
    Clock,
    Context,
    Messaging,
    QueueChannel,
    RecordKind,
    RetryPolicy,
    SendFailed,
    SequentialIds,
    VirtualClock,
    asynchronous,
    command_handler,
    event_handler,
)
from conveyor.core.errors import ConnectionFailed
from conveyor.transports.memory import MemoryTransport
from conveyor.transports.seam import Transport, WireMessage

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


class Outage(MemoryTransport):
    """A broker that refuses the first ``failures`` sends."""

    failures = 0

    def send(self, channel: str, message: WireMessage, **options: object) -> None:
        if Outage.failures > 0:
            Outage.failures -= 1
            raise ConnectionFailed("the broker is down")
        super().send(channel, message, **options)  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True)
class OutageChannel(Channel):
    def open(self, clock: Clock) -> Transport:
        return Outage(clock)


SEND_RETRY = RetryPolicy(
    delays=[timedelta(milliseconds=10), timedelta(milliseconds=100)],
    attempts=3,
    on=ConnectionFailed,
)


def build(failures: int, **channel: object) -> tuple[Messaging, list[str]]:
    emailed: list[str] = []

    @asynchronous("orders", retry=RetryPolicy(delays=[timedelta(minutes=1)], attempts=2))
    @command_handler
    def place(command: PlaceOrder, ctx: Context) -> None:
        ctx.publish(OrderPlaced(command.order_id))

    @asynchronous("emails")
    @event_handler
    def email(event: OrderPlaced) -> None:
        emailed.append(event.order_id)

    messaging = Messaging(
        handlers=[place, email],
        channels=[QueueChannel("orders"), OutageChannel("emails", **channel)],  # type: ignore[arg-type]
        clock=VirtualClock(START),
        ids=SequentialIds(),
    )
    messaging.send(PlaceOrder("o-1"))
    Outage.failures = failures
    return messaging, emailed


def test_a_failed_send_is_sent_again_after_the_channels_backoff() -> None:
    messaging, emailed = build(failures=2, send_retry=SEND_RETRY)
    messaging.run_until_idle()
    assert emailed == ["o-1"]
    assert messaging.clock.now() == START + timedelta(milliseconds=110)  # waited 10 ms, 100 ms
    assert messaging.journal.of_kind(RecordKind.FAILED) == []


def test_when_the_send_retries_are_spent_the_handling_attempt_fails_and_is_retried() -> None:
    messaging, emailed = build(failures=3, send_retry=SEND_RETRY)
    messaging.run_until_idle(advance_time=True)
    [failed] = messaging.journal.of_kind(RecordKind.FAILED)
    assert failed.endpoint_id == "place"
    assert failed.exception is not None
    assert failed.exception.type_name == "SendFailed"
    [unsent] = messaging.journal.of_kind(RecordKind.UNSENT)
    assert unsent.endpoint_id == "email"
    # the whole attempt ran again a minute later, and its event left this time
    assert emailed == ["o-1"]
    assert messaging.journal.of_kind(RecordKind.RETRIED)[0].endpoint_id == "place"


def test_without_send_retry_the_attempt_fails_at_the_first_failed_send() -> None:
    messaging, emailed = build(failures=1)
    messaging.run("orders")
    [failed] = messaging.journal.of_kind(RecordKind.FAILED)
    assert failed.exception is not None
    assert failed.exception.type_name == "ConnectionFailed"
    assert messaging.clock.now() == START  # no wait: nothing was sent again
    assert emailed == []


def test_send_failed_names_the_channel_and_the_cause() -> None:
    messaging, _ = build(failures=5, send_retry=RetryPolicy(delays=[timedelta(0)], attempts=2))
    with pytest.raises(SendFailed, match="channel 'emails' after 2 attempt") as caught:
        messaging.run("orders", stop_on_failure=True)
    assert isinstance(caught.value.__cause__, ConnectionFailed)
