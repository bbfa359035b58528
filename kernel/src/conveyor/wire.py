"""The wire form of a message copy: how headers and routing travel as strings.

Framework headers carry the ``cv-`` prefix; user headers keep their names (``check_user_headers``
forbids the prefix). Everything a consumer in another process needs to run the right handler is
here: the endpoint id (never a function's import path), the remaining channels of a sequence,
the type name for the codec, and the delivery attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from conveyor.errors import SerializationError
from conveyor.headers import Headers

__all__ = ["Envelope", "to_wire_headers", "read_envelope", "H"]


class H:
    """Wire header names."""

    ID = "cv-id"
    CORRELATION = "cv-correlation-id"
    CAUSATION = "cv-causation-id"
    TIMESTAMP = "cv-timestamp"
    ATTEMPT = "cv-attempt"
    TYPE = "cv-type"
    CONTENT_TYPE = "cv-content-type"
    ENDPOINT = "cv-endpoint"
    SLIP = "cv-slip"
    ROUTING_KEY = "cv-routing-key"
    EXPIRES_AT = "cv-expires-at"
    FIRST_FAILED_AT = "cv-first-failed-at"
    REPLAYED = "cv-replayed"
    NOT_BEFORE = "cv-not-before"
    PRIORITY = "cv-priority"


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
    wire[H.ATTEMPT] = str(headers.attempt)
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


@dataclass(frozen=True, slots=True)
class Envelope:
    """The routing facts read back from wire headers on consumption."""

    headers: Headers
    type_name: str
    endpoint: str
    slip: tuple[str, ...]
    routing_key: str | None
    expires_at: datetime | None
    first_failed_at: datetime | None
    not_before: datetime | None = None
    priority: int = 0


def read_envelope(wire: Mapping[str, str]) -> Envelope:
    """Parse wire headers; a missing or malformed framework header is a SerializationError."""
    try:
        user = {k: v for k, v in wire.items() if not k.startswith("cv-")}
        headers = Headers(
            id=wire[H.ID],
            correlation_id=wire[H.CORRELATION],
            causation_id=wire.get(H.CAUSATION),
            timestamp=datetime.fromisoformat(wire[H.TIMESTAMP]),
            attempt=int(wire.get(H.ATTEMPT, "1")),
            user=MappingProxyType(user),
        )
        slip = wire.get(H.SLIP)
        expires = wire.get(H.EXPIRES_AT)
        first_failed = wire.get(H.FIRST_FAILED_AT)
        not_before = wire.get(H.NOT_BEFORE)
        return Envelope(
            headers=headers,
            type_name=wire[H.TYPE],
            endpoint=wire[H.ENDPOINT],
            slip=tuple(slip.split(",")) if slip else (),
            routing_key=wire.get(H.ROUTING_KEY),
            expires_at=datetime.fromisoformat(expires) if expires else None,
            first_failed_at=datetime.fromisoformat(first_failed) if first_failed else None,
            not_before=datetime.fromisoformat(not_before) if not_before else None,
            priority=int(wire.get(H.PRIORITY, "0")),
        )
    except KeyError as missing:
        raise SerializationError(
            f"message headers lack {missing.args[0]!r}; it was not sent by Conveyor or was "
            f"altered in transit. Headers present: {', '.join(sorted(wire)) or 'none'}."
        ) from None
    except ValueError as error:
        raise SerializationError(f"message headers are malformed: {error}") from None
