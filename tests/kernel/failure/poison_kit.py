"""What the poison-message tests share: well-formed wire headers, and a consumer run that puts one
raw message on a channel ahead of a good one and checks that the good one is still handled.
"""

from __future__ import annotations

from typing import Any

from failure_kit import START, ChargeCard, build, pending

from conveyor import Messaging, asynchronous, command_handler
from conveyor.core.wire import H
from conveyor.transports.seam import WireMessage


def good_headers(**overrides: str | None) -> dict[str, str]:
    headers = {
        H.ID: "poison-1",
        H.CORRELATION: "poison-1",
        H.TIMESTAMP: START.isoformat(),
        H.ATTEMPT: "1",
        H.TYPE: "ChargeCard",
        H.CONTENT_TYPE: "application/json",
        H.ENDPOINT: "charge",
    }
    for name, value in overrides.items():
        key = getattr(H, name)
        if value is None:
            del headers[key]
        else:
            headers[key] = value
    return headers


def consume_after(
    body: bytes, headers: dict[str, str], *handlers: object, **options: Any
) -> tuple[Messaging, list[ChargeCard]]:
    """Consume a raw message put ahead of a good one; the good one must still be handled."""
    handled: list[ChargeCard] = []

    @asynchronous("orders")
    @command_handler(endpoint_id="charge")
    def charge(command: ChargeCard) -> None:
        handled.append(command)

    messaging = build([charge, *handlers], ["orders"], **options)
    messaging.channels["orders"].transport.send("orders", WireMessage(body, headers))
    messaging.send(ChargeCard("o-2"))
    messaging.run("orders")
    assert handled == [ChargeCard("o-2")]  # the next message is handled
    assert pending(messaging, "orders") == 0  # the poison message was not left behind
    return messaging, handled
