"""A payload reaches only a handler that handles its type, and bus routes stay on the bus's channel.

A body's type name is chosen by whoever wrote the message: naming another registered type, or
plain JSON, must not hand that value to a handler annotated for something else. A message addressed
to an asynchronous bus (``cv-endpoint: cv-bus:command``) on a handler's channel must not reach
every handler either.
"""

from __future__ import annotations

import pytest
from failure_kit import ChargeCard, RefundCard, build, pending
from poison_kit import consume_after, good_headers

from conveyor import ConfigurationError, QueueChannel, asynchronous, command_handler, event_handler
from conveyor.core.wire import BUS_COMMAND, BUS_EVENT
from conveyor.transports.seam import WireMessage

refunded: list[object] = []


@command_handler(endpoint_id="refund")
def refund(command: RefundCard) -> None:
    refunded.append(command)


@event_handler(endpoint_id="audit")
def audit(event: RefundCard) -> None:
    refunded.append(event)


@pytest.mark.parametrize(
    ("body", "type_name", "found"),
    [
        (b'{"order_id":"o-1"}', "RefundCard", "failure_kit.RefundCard"),
        (b'{"order_id":"o-1"}', "json", "builtins.dict"),
        (b'"o-1"', "json", "builtins.str"),
        (b"[1,2]", "json", "builtins.list"),
    ],
)
def test_a_payload_of_another_type_is_dead_lettered_as_wrong_type(
    body: bytes, type_name: str, found: str
) -> None:
    refunded.clear()
    messaging, _ = consume_after(body, good_headers(TYPE=type_name), refund)
    [letter] = messaging.dead_letters.list()
    assert letter.reason == (
        f"wrong type for endpoint: 'charge' handles ChargeCard, but the message decoded to a "
        f"{found}"
    )
    assert letter.endpoint_id == "charge"
    assert letter.body == body
    assert refunded == []


@pytest.mark.parametrize("bus", [BUS_COMMAND, BUS_EVENT])
def test_a_bus_message_on_a_handlers_channel_is_dead_lettered_as_unroutable(bus: str) -> None:
    refunded.clear()
    messaging, _ = consume_after(
        b'{"order_id":"o-1"}', good_headers(TYPE="RefundCard", ENDPOINT=bus), refund, audit
    )
    [letter] = messaging.dead_letters.list()
    assert letter.reason.startswith("unroutable: a message for an asynchronous bus on channel ")
    assert refunded == []  # neither the synchronous handler nor the event handler ran


def test_a_bus_message_on_the_bus_channel_is_routed() -> None:
    refunded.clear()
    messaging = build([refund, audit], ["bus"])
    messaging.command_bus("bus").send(RefundCard("o-1"))
    messaging.event_bus("bus").publish(RefundCard("o-2"))
    messaging.run("bus")
    assert refunded == [RefundCard("o-1"), RefundCard("o-2")]


def test_a_bus_command_no_handler_takes_is_dead_lettered_as_unroutable() -> None:
    messaging = build([refund], ["bus"])
    headers = good_headers(TYPE="json", ENDPOINT=BUS_COMMAND)
    messaging.channels["bus"].transport.send("bus", WireMessage(b'{"a":1}', headers))
    messaging.run("bus")
    [letter] = messaging.dead_letters.list()
    assert letter.reason == "unroutable: no handler"
    assert pending(messaging, "bus") == 0


def test_a_bus_on_a_handlers_channel_is_refused_unless_declared() -> None:
    @asynchronous("orders")
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None: ...

    messaging = build([charge, refund], ["orders"])
    with pytest.raises(ConfigurationError, match=r"declare this one with bus=True"):
        messaging.command_bus("orders").send(RefundCard("o-1"))

    refunded.clear()
    shared = build([charge, refund], [QueueChannel("orders", bus=True)])
    shared.command_bus("orders").send(RefundCard("o-1"))
    shared.run("orders")
    assert refunded == [RefundCard("o-1")]
