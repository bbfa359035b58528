"""The journal tells the whole story: deliveries, copies that never left, stale acks, the wire.

Each test is a question a user asks of a flow: how many times was this message delivered, did the
event its failed handler published ever leave, did a consumer finish after its lease ran out,
and what exactly crossed the channel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from conveyor import (
    Channel,
    Clock,
    Context,
    Journal,
    Messaging,
    RecordKind,
    SequentialIds,
    VirtualClock,
    asynchronous,
    command_handler,
    event_handler,
)
from conveyor.core.errors import StaleReceipt
from conveyor.testing.flow import fold_copies, pending_copies
from conveyor.transports.memory import MemoryTransport
from conveyor.transports.seam import Delivery, Transport

START = datetime(2026, 2, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


def build(handlers: list[object], channels: list[object], **options: object) -> Messaging:
    return Messaging(
        handlers=handlers,
        channels=channels,  # type: ignore[arg-type]
        clock=VirtualClock(START),
        ids=SequentialIds(),
        **options,  # type: ignore[arg-type]
    )


def test_a_redelivery_is_journaled_with_its_delivery_count() -> None:
    calls: list[str] = []

    @asynchronous("orders")
    @command_handler
    def place(command: PlaceOrder) -> None:
        calls.append(command.order_id)
        if len(calls) == 1:
            raise RuntimeError("the database blinked")

    messaging = build([place], ["orders"])
    messaging.send(PlaceOrder("o-1"))
    with pytest.raises(RuntimeError):
        messaging.run("orders", stop_on_failure=True)  # released: it comes again
    messaging.run("orders")
    [delivered] = messaging.journal.of_kind(RecordKind.DELIVERED)
    assert (delivered.endpoint_id, delivered.channel, delivered.delivery_count) == (
        "place",
        "orders",
        2,
    )
    assert delivered.message_id == "msg-1"


def test_every_delivery_is_journaled_when_the_journal_asks_for_it() -> None:
    @asynchronous("orders")
    @command_handler
    def place(command: PlaceOrder) -> None: ...

    messaging = build([place], ["orders"], journal=Journal(deliveries=True))
    messaging.send(PlaceOrder("o-1"))
    messaging.send(PlaceOrder("o-2"))
    messaging.run_until_idle()
    delivered = messaging.journal.of_kind(RecordKind.DELIVERED)
    assert [(r.message_id, r.delivery_count) for r in delivered] == [("msg-1", 1), ("msg-2", 1)]
    kinds = [r.kind for r in messaging.journal if r.message_id == "msg-1"]
    assert kinds == [RecordKind.SENT, RecordKind.QUEUED, RecordKind.DELIVERED, RecordKind.HANDLED]


def test_a_copy_the_collector_dropped_says_it_never_left() -> None:
    @asynchronous("orders")
    @command_handler
    def place(command: PlaceOrder, ctx: Context) -> None:
        ctx.publish(OrderPlaced(command.order_id))
        raise RuntimeError("the order could not be stored")

    @asynchronous("emails")
    @event_handler
    def email(event: OrderPlaced) -> None: ...

    messaging = build([place, email], ["orders", "emails"], dead_letter=True)
    messaging.send(PlaceOrder("o-1"))
    messaging.run_until_idle()
    [published] = messaging.journal.of_kind(RecordKind.PUBLISHED)
    [unsent] = messaging.journal.of_kind(RecordKind.UNSENT)
    assert (unsent.message_id, unsent.endpoint_id, unsent.channel) == (
        published.message_id,
        "email",
        "emails",
    )
    assert messaging.journal.of_kind(RecordKind.QUEUED)[-1].endpoint_id == "place"
    copies = fold_copies(messaging.journal)
    assert copies[(published.message_id, "email")].state == "unsent"
    assert copies[(published.message_id, "email")].is_final
    assert pending_copies(copies) == []


def test_a_failed_top_level_send_journals_the_copies_it_held() -> None:
    @command_handler
    def place(command: PlaceOrder, ctx: Context) -> None:
        ctx.publish(OrderPlaced(command.order_id))
        raise ValueError("no such customer")

    @asynchronous("emails")
    @event_handler
    def email(event: OrderPlaced) -> None: ...

    messaging = build([place, email], ["emails"])
    with pytest.raises(ValueError, match="no such customer"):
        messaging.send(PlaceOrder("o-1"))
    [unsent] = messaging.journal.of_kind(RecordKind.UNSENT)
    assert unsent.endpoint_id == "email"
    assert messaging.journal.of_kind(RecordKind.QUEUED) == []


def test_a_queued_record_carries_what_crossed_the_channel() -> None:
    @asynchronous("orders")
    @command_handler
    def place(command: PlaceOrder) -> None: ...

    messaging = build([place], ["orders"])
    messaging.send(PlaceOrder("o-1"), headers={"tenant": "acme"})
    [queued] = messaging.journal.of_kind(RecordKind.QUEUED)
    assert queued.wire is not None
    assert json.loads(queued.wire.body) == {"order_id": "o-1"}
    assert queued.wire.headers["tenant"] == "acme"
    assert queued.wire.headers["cv-endpoint"] == "place"
    assert queued.wire.headers["cv-id"] == "msg-1"


def test_a_production_journal_keeps_no_wire_form() -> None:
    @asynchronous("orders")
    @command_handler
    def place(command: PlaceOrder) -> None: ...

    messaging = build([place], ["orders"], journal=Journal(10, keep_payloads=False))
    messaging.send(PlaceOrder("o-1"))
    [queued] = messaging.journal.of_kind(RecordKind.QUEUED)
    assert queued.wire is None


class StaleAcks(MemoryTransport):
    """A broker on which every lease ran out before the consumer acknowledged."""

    def ack(self, delivery: Delivery) -> None:
        raise StaleReceipt(f"receipt {delivery.receipt} is stale")


@dataclass(frozen=True, kw_only=True)
class StaleChannel(Channel):
    def open(self, clock: Clock) -> Transport:
        return StaleAcks(clock)


def test_an_ack_after_the_lease_ran_out_is_journaled_as_stale() -> None:
    @asynchronous("orders")
    @command_handler
    def place(command: PlaceOrder) -> None: ...

    messaging = build([place], [StaleChannel("orders")])
    messaging.send(PlaceOrder("o-1"))
    messaging.run("orders", limit=1)
    [stale] = messaging.journal.of_kind(RecordKind.STALE)
    assert (stale.message_id, stale.endpoint_id, stale.channel) == ("msg-1", "place", "orders")
    assert "lease ran out" in stale.detail
