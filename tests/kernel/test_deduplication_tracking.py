"""Deduplication keys scoped by a tracking name that several endpoints share.

``@deduplicated(key=..., tracking="charges")`` on two endpoints makes their keys one set: a
payment that either endpoint handled is a duplicate for both (Ecotone's ``trackingName``), for
example the old and the new version of a handler while traffic moves from one to the other.
Without a tracking name each endpoint keeps its own keys.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from conveyor import (
    AsyncMessaging,
    ConfigurationError,
    Deduplication,
    InMemoryDeduplicationStore,
    Messaging,
    RecordKind,
    SequentialIds,
    VirtualClock,
    asynchronous,
    deduplicated,
    event_handler,
)

START_CHANNELS = ["charges.v1", "charges.v2", "receipts"]


@dataclass(frozen=True)
class PaymentRequested:
    payment_id: str


def payment_id(payload: object) -> str:
    assert isinstance(payload, PaymentRequested)
    return payload.payment_id


def handlers(charged: list[str]) -> list[object]:
    @asynchronous("charges.v1")
    @deduplicated(key=payment_id, tracking="charges")
    @event_handler
    def charge_v1(event: PaymentRequested) -> None:
        charged.append(f"v1 {event.payment_id}")

    @asynchronous("charges.v2")
    @deduplicated(key=payment_id, tracking="charges")
    @event_handler
    def charge_v2(event: PaymentRequested) -> None:
        charged.append(f"v2 {event.payment_id}")

    @asynchronous("receipts")
    @deduplicated(key=payment_id)  # its own keys
    @event_handler
    def send_receipt(event: PaymentRequested) -> None:
        charged.append(f"receipt {event.payment_id}")

    return [charge_v1, charge_v2, send_receipt]


def test_endpoints_sharing_a_tracking_name_share_their_keys() -> None:
    charged: list[str] = []
    store = InMemoryDeduplicationStore()
    messaging = Messaging(
        handlers=handlers(charged),
        channels=START_CHANNELS,
        clock=VirtualClock(),
        ids=SequentialIds(),
        deduplication=Deduplication(store),
    )
    messaging.publish(PaymentRequested("p-1"))
    messaging.run("charges.v1")
    messaging.run("charges.v2")  # the same payment: v1 charged it, so v2 skips it
    messaging.run("receipts")  # a key of its own: it runs
    assert charged == ["v1 p-1", "receipt p-1"]
    [duplicate] = messaging.journal.of_kind(RecordKind.DUPLICATE)
    assert (duplicate.endpoint_id, duplicate.detail) == ("charge_v2", "tracking 'charges'")

    messaging.publish(PaymentRequested("p-2"))
    messaging.run("charges.v2")  # this time v2 is first, and v1 skips it
    messaging.run("charges.v1")
    assert charged[2:] == ["v2 p-2"]
    assert store.contains("charges", "p-2", now=messaging.clock.now())


def test_asyncio_endpoints_sharing_a_tracking_name_share_their_keys() -> None:
    charged: list[str] = []

    async def scenario() -> None:
        async with AsyncMessaging(
            handlers=handlers(charged),
            channels=START_CHANNELS,
            clock=VirtualClock(),
            deduplication=Deduplication(InMemoryDeduplicationStore()),
        ) as messaging:
            await messaging.publish(PaymentRequested("p-1"))
            await messaging.run("charges.v2")
            await messaging.run("charges.v1")
            await messaging.run("receipts")
            assert len(messaging.journal.of_kind(RecordKind.DUPLICATE)) == 1

    asyncio.run(scenario())
    assert charged == ["v2 p-1", "receipt p-1"]


def test_a_tracking_name_that_is_another_endpoints_id_is_refused() -> None:
    @asynchronous("charges.v1")
    @deduplicated(tracking="send_receipt")
    @event_handler
    def charge(event: PaymentRequested) -> None: ...

    @asynchronous("receipts")
    @event_handler
    def send_receipt(event: PaymentRequested) -> None: ...

    with pytest.raises(ConfigurationError, match=r"tracking='send_receipt'\), the endpoint id"):
        Messaging(
            handlers=[charge, send_receipt],
            channels=["charges.v1", "receipts"],
            deduplication=Deduplication(InMemoryDeduplicationStore()),
        )


def test_an_empty_tracking_name_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="non-empty name"):
        deduplicated(tracking="")
