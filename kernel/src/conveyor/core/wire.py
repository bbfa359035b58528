"""The wire form of a message copy: how headers and routing travel as strings.

Framework headers carry the ``cv-`` prefix; user headers keep their names (``check_user_headers``
forbids the prefix). Everything a consumer in another process needs to run the right handler is
here: the endpoint id (never a function's import path), the remaining channels of a sequence,
the type name for the codec, and the delivery attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import astuple, dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

from conveyor.core.errors import SerializationError
from conveyor.core.header_values import (
    FIRST_ATTEMPTS,
    read_attempt,
    read_instant,
    read_priority,
    read_timestamp,
)
from conveyor.core.headers import Headers
from conveyor.core.slots import slot_setters

__all__ = [
    "WireMessage",
    "Delivery",
    "Envelope",
    "to_wire_headers",
    "read_envelope",
    "replayed_times",
    "MAX_REPLAYED",
    "H",
    "HeaderNames",
]


@dataclass(frozen=True, slots=True, init=False)
class WireMessage:
    """What crosses a broker: an opaque body and string headers.

    Every delivery builds one, so ``__init__`` sets the slots directly (``conveyor.core.slots``).
    """

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def __init__(self, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        _set_body(self, body)
        _set_wire_headers(self, {} if headers is None else headers)

    @property
    def size(self) -> int:
        """Bytes on the wire: body plus header names and values (UTF-8)."""
        return len(self.body) + sum(
            len(k.encode()) + len(v.encode()) for k, v in self.headers.items()
        )


@dataclass(frozen=True, slots=True, init=False)
class Delivery:
    """One leased delivery of a message to a consumer.

    ``receipt`` is the transport's own handle (a row id, a stream entry id, a delivery tag);
    ``delivery_count`` is 1 the first time and grows on each redelivery of the same message.
    Every delivery builds one, so ``__init__`` sets the slots directly.
    """

    channel: str
    message: WireMessage
    receipt: str
    delivery_count: int = 1

    def __init__(
        self, channel: str, message: WireMessage, receipt: str, delivery_count: int = 1
    ) -> None:
        _set_channel(self, channel)
        _set_message(self, message)
        _set_receipt(self, receipt)
        _set_delivery_count(self, delivery_count)


_set_body, _set_wire_headers = slot_setters(WireMessage, "body", "headers")
_set_channel, _set_message, _set_receipt, _set_delivery_count = slot_setters(
    Delivery, "channel", "message", "receipt", "delivery_count"
)


@dataclass(frozen=True, slots=True)
class HeaderNames:
    """Wire header names, read as ``H.ID`` and so on.

    ``H`` is the one instance rather than a class of constants: Python 3.11 makes reading an
    instance's attribute cheap and a class's not, and every message reads a dozen of these both
    when it is sent and when it is consumed.
    """

    ID: str = "cv-id"
    CORRELATION: str = "cv-correlation-id"
    CAUSATION: str = "cv-causation-id"
    TIMESTAMP: str = "cv-timestamp"
    ATTEMPT: str = "cv-attempt"
    TYPE: str = "cv-type"
    CONTENT_TYPE: str = "cv-content-type"
    ENDPOINT: str = "cv-endpoint"
    SLIP: str = "cv-slip"
    ROUTING_KEY: str = "cv-routing-key"
    EXPIRES_AT: str = "cv-expires-at"
    FIRST_FAILED_AT: str = "cv-first-failed-at"
    REPLAYED: str = "cv-replayed"
    NOT_BEFORE: str = "cv-not-before"
    PRIORITY: str = "cv-priority"


H = HeaderNames()


#: Endpoint ids reserved for messages sent through an asynchronous bus: on consumption they
#: re-enter normal routing instead of running one handler.
BUS_COMMAND = "cv-bus:command"
BUS_EVENT = "cv-bus:event"


def to_wire_headers(
    headers: Headers,
    *,
    type_name: str,
    content_type: str,
    endpoint: str,
    slip: tuple[str, ...] = (),
    routing_key: str | None = None,
    expires_at: datetime | None = None,
    not_before: datetime | None = None,
    priority: int = 0,
) -> dict[str, str]:
    """Headers for one copy of a message, for one endpoint."""
    wire = dict(headers.user)
    wire[H.ID] = headers.id
    wire[H.CORRELATION] = headers.correlation_id
    if headers.causation_id is not None:
        wire[H.CAUSATION] = headers.causation_id
    wire[H.TIMESTAMP] = headers.timestamp.isoformat()
    attempt = headers.attempt
    wire[H.ATTEMPT] = _ATTEMPTS[attempt] if attempt < len(_ATTEMPTS) else str(attempt)
    wire[H.TYPE] = type_name
    wire[H.CONTENT_TYPE] = content_type
    wire[H.ENDPOINT] = endpoint
    if slip:
        wire[H.SLIP] = ",".join(slip)
    if routing_key is not None:
        wire[H.ROUTING_KEY] = routing_key
    if expires_at is not None:
        wire[H.EXPIRES_AT] = expires_at.isoformat()
    if not_before is not None:
        wire[H.NOT_BEFORE] = not_before.isoformat()
    if priority:
        wire[H.PRIORITY] = str(priority)
    return wire


@dataclass(frozen=True, slots=True, init=False)
class Envelope:
    """The routing facts read back from wire headers on consumption.

    Every delivery builds one, so ``__init__`` sets the slots directly (``conveyor.core.slots``).
    """

    headers: Headers
    type_name: str
    endpoint: str
    slip: tuple[str, ...]
    routing_key: str | None
    expires_at: datetime | None
    first_failed_at: datetime | None
    not_before: datetime | None = None
    priority: int = 0

    def __init__(
        self,
        headers: Headers,
        type_name: str,
        endpoint: str,
        slip: tuple[str, ...],
        routing_key: str | None,
        expires_at: datetime | None,
        first_failed_at: datetime | None,
        not_before: datetime | None = None,
        priority: int = 0,
    ) -> None:
        _set_headers(self, headers)
        _set_type_name(self, type_name)
        _set_endpoint(self, endpoint)
        _set_slip(self, slip)
        _set_routing_key(self, routing_key)
        _set_expires_at(self, expires_at)
        _set_first_failed_at(self, first_failed_at)
        _set_not_before(self, not_before)
        _set_priority(self, priority)


(
    _set_headers,
    _set_type_name,
    _set_endpoint,
    _set_slip,
    _set_routing_key,
    _set_expires_at,
    _set_first_failed_at,
    _set_not_before,
    _set_priority,
) = slot_setters(
    Envelope,
    "headers",
    "type_name",
    "endpoint",
    "slip",
    "routing_key",
    "expires_at",
    "first_failed_at",
    "not_before",
    "priority",
)


_NO_USER: Mapping[str, str] = MappingProxyType({})

#: Every header name of the ``H`` table: a wire holding only these carries no user header.
_FRAMEWORK_NAMES = frozenset(astuple(H))

# The texts of the first attempts, made once: ``str(1)`` makes a new 50-byte string each time,
# and every message waiting on a channel holds its attempt header.
_ATTEMPTS = tuple(str(n) for n in range(16))


#: The largest replay count kept: any stored ``cv-replayed`` value, however long, still fits a
#: 32-bit column and can be replayed again (one more is never more than this).
MAX_REPLAYED = 2**31 - 2


def replayed_times(wire: Mapping[str, str]) -> int:
    """How many times a dead letter was replayed, from its headers; anything unreadable is 0.

    Lenient on purpose: the count only informs the handler and the next replay, so a damaged
    value must not turn a replayed message into a rejected one.
    """
    try:
        return min(max(int(wire.get(H.REPLAYED, "0")), 0), MAX_REPLAYED)
    except (ValueError, TypeError):
        return 0


def read_envelope(wire: Mapping[str, str], *, max_priority: int | None = None) -> Envelope:
    """Parse wire headers; a missing or malformed framework header is a SerializationError.

    Each value is checked as :mod:`conveyor.core.header_values` says (attempt at least 1, a
    priority within ``max_priority``, aware times), so what the kernel computes from an envelope
    cannot fail on a value Conveyor would never have written.
    """
    try:
        get = wire.get
        # Most messages carry no user header: one look at the names says so (any other
        # ``cv-`` header, such as a transport's own, is not the user's either).
        user = (
            {k: v for k, v in wire.items() if k[:3] != "cv-"}
            if not _FRAMEWORK_NAMES.issuperset(wire)
            else None
        )
        # What Conveyor writes is read here without a call: a timestamp in UTC, an attempt of a
        # few; anything else goes through the strict readers, which refuse what is malformed.
        stamp = wire[H.TIMESTAMP]
        try:
            timestamp: datetime | None = datetime.fromisoformat(stamp)
        except ValueError:
            timestamp = None
        if timestamp is None or timestamp.tzinfo is not UTC:
            timestamp = read_timestamp(H.TIMESTAMP, stamp)
        attempt = get(H.ATTEMPT, "1")  # absent means the first
        headers = Headers(
            wire[H.ID],
            wire[H.CORRELATION],
            get(H.CAUSATION),
            timestamp,
            FIRST_ATTEMPTS.get(attempt) or read_attempt(H.ATTEMPT, attempt),
            MappingProxyType(user) if user else _NO_USER,
            replayed_times(wire) if H.REPLAYED in wire else 0,
        )
        slip = get(H.SLIP)
        # Most messages carry none of the optional times nor a priority: only those present
        # are parsed.
        expires_at, first_failed_at, not_before, priority = (
            get(H.EXPIRES_AT),
            get(H.FIRST_FAILED_AT),
            get(H.NOT_BEFORE),
            get(H.PRIORITY),
        )
        return Envelope(
            headers,
            wire[H.TYPE],
            wire[H.ENDPOINT],
            tuple(slip.split(",")) if slip else (),
            get(H.ROUTING_KEY),
            read_instant(H.EXPIRES_AT, expires_at, due=True) if expires_at else None,
            read_instant(H.FIRST_FAILED_AT, first_failed_at) if first_failed_at else None,
            read_instant(H.NOT_BEFORE, not_before, due=True) if not_before else None,
            read_priority(H.PRIORITY, priority, max_priority) if priority else 0,
        )
    except KeyError as missing:
        raise SerializationError(
            f"message headers lack {missing.args[0]!r}; it was not sent by Conveyor or was "
            f"altered in transit. Headers present: {', '.join(sorted(wire)) or 'none'}."
        ) from None
