"""The message envelope: a payload with its headers."""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.core.headers import Headers
from conveyor.core.slots import slot_setters

__all__ = ["Message", "type_name_of"]


@dataclass(frozen=True, slots=True, init=False)
class Message:
    """A payload and its headers, as a handler or interceptor sees it.

    ``routing_key`` is set when the message was sent by name (``routing_key="order.place"``)
    rather than routed by the payload's type. Every send builds one, so ``__init__`` sets the
    slots directly (``conveyor.core.slots``).
    """

    payload: object
    headers: Headers
    routing_key: str | None = None

    def __init__(self, payload: object, headers: Headers, routing_key: str | None = None) -> None:
        _set_payload(self, payload)
        _set_headers(self, headers)
        _set_routing_key(self, routing_key)

    @property
    def id(self) -> str:
        return self.headers.id

    @property
    def type_name(self) -> str:
        return self.routing_key or type_name_of(self.payload)


_set_payload, _set_headers, _set_routing_key = slot_setters(
    Message, "payload", "headers", "routing_key"
)


def type_name_of(payload: object) -> str:
    """The short name used in the journal and error messages for a payload's type."""
    return type(payload).__qualname__
