"""A consumer whose handler outlived its lease goes on (issue 11).

Another consumer took the message when the lease ran out and acknowledged it; the first one's
acknowledgement is then stale. That used to raise ``TransportError`` out of ``run`` and stop
the worker; now it is a ``stale`` journal record and a warning, and the next message is handled.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from failure_kit import START, ChargeCard, build

from conveyor import Messaging, RecordKind, VirtualClock, asynchronous, command_handler


def test_a_stale_acknowledgement_is_recorded_and_the_consumer_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock(START)
    handled: list[str] = []
    app: list[Messaging] = []

    @asynchronous("orders")
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        if command.order_id == "slow":
            clock.advance(timedelta(minutes=1))  # longer than the channel's 30-second lease
            transport = app[0].channels["orders"].transport
            [taken] = transport.receive("orders", lease=timedelta(seconds=30))  # another consumer
            transport.ack(taken)  # ... handles and acknowledges it first
        handled.append(command.order_id)

    messaging = build([charge], ["orders"], clock=clock)
    app.append(messaging)
    messaging.send(ChargeCard("slow"))
    messaging.send(ChargeCard("next"))

    with caplog.at_level(logging.WARNING, logger="conveyor"):
        result = messaging.run("orders")

    assert (result.processed, result.stopped_because) == (2, "empty")
    assert handled == ["slow", "next"]
    [stale] = messaging.journal.of_kind(RecordKind.STALE)
    assert (stale.message_id, stale.channel) == ("msg-1", "orders")
    assert "outlived its lease" in caplog.text
