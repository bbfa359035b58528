"""Message headers: the framework's own (id, correlation, causation, time, attempt) and the user's.

User headers are strings and propagate to every message sent while handling. Delivery options
(delay, priority, time to live) are not headers here: they belong to one send, never propagate,
and travel as channel metadata.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType

from conveyor.core.errors import ConfigurationError
from conveyor.core.slots import slot_setters

__all__ = ["Headers", "RESERVED_HEADERS", "check_user_headers", "check_identity"]

#: Names a user header may not take: the framework's headers, under either spelling.
RESERVED_HEADERS = frozenset(
    {"id", "correlation_id", "causation_id", "timestamp", "attempt", "type", "routing_key"}
)
_INTERNAL_PREFIX = "cv-"
_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True, init=False)
class Headers(Mapping[str, object]):
    """Immutable headers of one message.

    Reads like a mapping (``headers["tenant"]``, ``headers.get("id")``) over both the standard
    fields and the user's string headers, so handlers need not know which is which.

    Every message builds one, so ``__init__`` sets the slots directly (``conveyor.core.slots``).
    """

    id: str
    correlation_id: str
    causation_id: str | None
    timestamp: datetime
    attempt: int = 1
    user: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    replayed: int = field(default=0, compare=False)
    """How many times this message was replayed from the dead-letter store (0: never)."""

    def __init__(
        self,
        id: str,  # the field's name
        correlation_id: str,
        causation_id: str | None,
        timestamp: datetime,
        attempt: int = 1,
        user: Mapping[str, str] = _EMPTY,
        replayed: int = 0,
    ) -> None:
        _set_id(self, id)
        _set_correlation_id(self, correlation_id)
        _set_causation_id(self, causation_id)
        _set_timestamp(self, timestamp)
        _set_attempt(self, attempt)
        _set_user(self, user)
        _set_replayed(self, replayed)

    def __getitem__(self, name: str) -> object:
        if name in _STANDARD:
            return getattr(self, name)
        return self.user[name]

    def __iter__(self) -> Iterator[str]:
        yield from _STANDARD
        yield from self.user

    def __len__(self) -> int:
        return len(_STANDARD) + len(self.user)

    def with_attempt(self, attempt: int) -> Headers:
        """The same headers on a later delivery attempt."""
        return replace(self, attempt=attempt)

    def __repr__(self) -> str:
        user = f", user={dict(self.user)!r}" if self.user else ""
        return (
            f"Headers(id={self.id!r}, correlation_id={self.correlation_id!r}, "
            f"causation_id={self.causation_id!r}, timestamp={self.timestamp.isoformat()!r}, "
            f"attempt={self.attempt}{user})"
        )


_STANDARD = ("id", "correlation_id", "causation_id", "timestamp", "attempt")
(
    _set_id,
    _set_correlation_id,
    _set_causation_id,
    _set_timestamp,
    _set_attempt,
    _set_user,
    _set_replayed,
) = slot_setters(Headers, *_STANDARD, "user", "replayed")


def check_identity(value: object, what: str) -> str:
    """An explicit message or correlation id given at send: a non-empty string without spaces.

    Ids cross brokers as header values and are printed in the journal, so they are kept plain.
    """
    if not isinstance(value, str) or not value or value != value.strip() or "\n" in value:
        raise ConfigurationError(
            f"{what} takes a non-empty string without surrounding spaces or line breaks, got "
            f'{value!r}; for example {what}"req-1234" (an HTTP request id, say).'
        )
    return value


def check_user_headers(headers: Mapping[str, str] | None) -> Mapping[str, str]:
    """Validate user headers at send time: string names and values, no reserved names."""
    if not headers:
        return _EMPTY
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ConfigurationError(
                f"header {name!r}={value!r} is not a string pair; headers cross brokers as "
                f"strings, so convert the value first (for example str(value))."
            )
        if name in RESERVED_HEADERS or name.startswith(_INTERNAL_PREFIX):
            raise ConfigurationError(
                f"header {name!r} is reserved by Conveyor (reserved: "
                f"{', '.join(sorted(RESERVED_HEADERS))}, and any name starting with "
                f"{_INTERNAL_PREFIX!r}); rename it, for example 'x-{name}'."
            )
    return MappingProxyType(dict(headers))
