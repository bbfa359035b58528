"""The message envelope: a payload with its headers."""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.core.headers import Headers

__all__ = ["Message", "type_name_of"]


@dataclass(frozen=True, slots=True)
class Message:
    """A payload and its headers, as a handler or interceptor sees it.

    ``routing_key`` is set when the message was sent by name (``routing_key="order.place"``)
    rather than routed by the payload's type.
    """

    payload: object
    headers: Headers
    routing_key: str | None = None

    @property
    def id(self) -> str:
        return self.headers.id

    @property
    def type_name(self) -> str:
        return self.routing_key or type_name_of(self.payload)


def type_name_of(payload: object) -> str:
    """The short name used in the journal and error messages for a payload's type."""
    return type(payload).__qualname__
