"""Why a consumer sets a message aside before any handler sees it, in words an operator can act on.

A consumer trusts nothing on its channel: the endpoint a message names may not be bound there, the
payload its type name decodes to may not be what that endpoint handles (another registered type,
or plain JSON), and a message addressed to an asynchronous bus may arrive on a handler's channel.
Each is dead-lettered with a reason; this module decides (``addressee``, ``refused_payload``, which
both drivers' consumers call) and words the details. They name endpoints, channels and types,
never a payload value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from conveyor.core.registry import HandlerSpec

__all__ = [
    "Refusal",
    "addressee",
    "refused_payload",
    "wrong_payload",
    "handles",
    "wrong_type",
    "no_endpoint",
    "not_a_bus",
]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a delivery is set aside: the rejection reason and its detail for the operator."""

    reason: str
    detail: str


def addressee(
    endpoint: str,
    *,
    to_bus: bool,
    channel: str,
    bus_channel: bool,
    endpoints: Mapping[str, HandlerSpec],
) -> HandlerSpec | Refusal | None:
    """Whom a due delivery on ``channel`` is for: its endpoint's handler, None for a message of
    an asynchronous bus (routed by its type), or the refusal when neither may take it."""
    if to_bus:
        return None if bus_channel else Refusal("unroutable", not_a_bus(channel))
    spec = endpoints.get(endpoint)
    if spec is None or channel not in spec.channels:
        return Refusal("no endpoint", no_endpoint(endpoint, channel, endpoints.values()))
    return spec


def refused_payload(spec: HandlerSpec, payload: object) -> Refusal | None:
    """The refusal of a decoded payload its endpoint does not handle, or None."""
    return None if handles(spec, payload) else wrong_payload(spec, payload)


def wrong_payload(spec: HandlerSpec, payload: object) -> Refusal:
    """The refusal of a decoded payload that the endpoint does not handle (:func:`handles`)."""
    return Refusal("wrong type for endpoint", wrong_type(spec, payload))


def handles(spec: HandlerSpec, payload: object) -> bool:
    """Whether ``payload`` is of a type the endpoint handles.

    A handler routed by name alone (``routing_key=...`` with no class annotation) declares no
    type, so it takes whatever its messages decode to.
    """
    return not spec.message_types or isinstance(payload, spec.message_types)


def wrong_type(spec: HandlerSpec, payload: object) -> str:
    """The detail of a payload the endpoint does not handle."""
    takes = " | ".join(t.__qualname__ for t in spec.message_types)
    found = type(payload)
    return (
        f"wrong type for endpoint: {spec.endpoint_id!r} handles {takes}, but the message "
        f"decoded to a {found.__module__}.{found.__qualname__}"
    )


def no_endpoint(endpoint: str, channel: str, endpoints: Iterable[HandlerSpec]) -> str:
    """The detail of a message for an endpoint that is not consumed from this channel."""
    known = [s.endpoint_id for s in endpoints if channel in s.channels]
    return (
        f"no endpoint {endpoint!r} on channel {channel!r}; endpoints here: "
        f"{', '.join(known) or 'none'}"
    )


def not_a_bus(channel: str) -> str:
    """The detail of a bus message on a channel that does not carry a bus."""
    return (
        f"unroutable: a message for an asynchronous bus on channel {channel!r}, which does not "
        f"carry one (asynchronous handlers are bound to it); a bus's messages are routed only "
        f"on its own channel"
    )
