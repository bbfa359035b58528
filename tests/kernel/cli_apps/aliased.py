"""The shop's orders channel, which also answers to its old name ``orders.v1``."""

from __future__ import annotations

from shop import PlaceOrder, place_order

from conveyor import ChannelAlias, Messaging, QueueChannel, SequentialIds, VirtualClock


def build() -> Messaging:
    messaging = Messaging(
        [place_order],
        [QueueChannel("orders"), ChannelAlias("orders.v1", to="orders")],
        clock=VirtualClock(),
        ids=SequentialIds(),
    )
    messaging.send(PlaceOrder("a-1"))
    return messaging
