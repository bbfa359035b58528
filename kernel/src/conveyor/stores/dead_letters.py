"""Dead letters: messages that could not be handled, kept with why, for a person to act on.

The store keeps the original bytes and headers (so a message whose type no longer decodes is
still there to inspect), where it came from (channel, endpoint), and the failure. Replay is
decided by the kernel (``Messaging.dead_letters``); stores only keep and return records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from conveyor.core.errors import DeadLetterNotFound

__all__ = ["DeadLetter", "DeadLetterStore", "InMemoryDeadLetterStore"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message set aside, with everything needed to understand and replay it.

    Attributes:
        id: the store's own id; unique even when two copies of one event fail.
        message_id: the message's ``id`` header.
        channel: the channel the message was consumed from.
        endpoint_id: the handler it was for; None when it could not be routed at all.
        message_type: the type name on the wire.
        body: the message body exactly as it was on the wire.
        headers: the wire headers exactly as they were.
        reason: why it is here: "failed", "expired", "undecodable" (the body), "malformed
            headers", "unknown type", "no endpoint ..." (with the endpoints that exist),
            "wrong type for endpoint: ..." (the payload is not of a type the endpoint
            handles), "unroutable: ..." (a bus message off its bus's channel, or a bus command
            no handler takes), "unknown channel" (in a channel sequence).
        exception_type: the qualified name of the last exception, if one was raised.
        exception_message: its message.
        traceback: its formatted traceback.
        attempts: how many times handling was attempted.
        first_failed_at: when the first attempt failed.
        last_failed_at: when it was set aside.
        replayed: how many times the message had been replayed from the store before this
            failure (0 for a message that never was).
    """

    id: str
    message_id: str
    channel: str
    endpoint_id: str | None
    message_type: str
    body: bytes
    headers: Mapping[str, str]
    reason: str
    exception_type: str | None = None
    exception_message: str | None = None
    traceback: str | None = None
    attempts: int = 1
    first_failed_at: datetime | None = None
    last_failed_at: datetime | None = None
    replayed: int = field(default=0)


@runtime_checkable
class DeadLetterStore(Protocol):
    """Keeps dead letters. Implementations: in memory here, SQLite in ``conveyor_sqlite``."""

    def add(self, letter: DeadLetter) -> None: ...

    def list(self, *, limit: int | None = None, offset: int = 0) -> list[DeadLetter]:
        """Oldest first."""
        ...

    def get(self, letter_id: str) -> DeadLetter:
        """Raises ``DeadLetterNotFound`` naming the ids that exist."""
        ...

    def count(self) -> int: ...

    def delete(self, letter_id: str) -> None:
        """Raises ``DeadLetterNotFound`` for an unknown id."""
        ...


class InMemoryDeadLetterStore:
    """A dead-letter store in a dict: for tests, and for apps that accept losing it on exit."""

    __slots__ = ("_letters",)

    def __init__(self) -> None:
        self._letters: dict[str, DeadLetter] = {}

    def add(self, letter: DeadLetter) -> None:
        self._letters[letter.id] = letter

    def list(self, *, limit: int | None = None, offset: int = 0) -> list[DeadLetter]:
        letters = list(self._letters.values())[offset:]
        return letters if limit is None else letters[:limit]

    def get(self, letter_id: str) -> DeadLetter:
        try:
            return self._letters[letter_id]
        except KeyError:
            raise not_found(letter_id, list(self._letters)) from None

    def count(self) -> int:
        return len(self._letters)

    def delete(self, letter_id: str) -> None:
        if self._letters.pop(letter_id, None) is None:
            raise not_found(letter_id, list(self._letters))


def not_found(letter_id: str, known: list[str]) -> DeadLetterNotFound:
    """The error every store raises for an unknown id, listing a few ids that do exist."""
    shown = ", ".join(known[:5]) + (f" and {len(known) - 5} more" if len(known) > 5 else "")
    exists = f"the store holds {len(known)}: {shown}" if known else "the store is empty"
    return DeadLetterNotFound(
        f"no dead letter with id {letter_id!r}; {exists}. List them with "
        f"messaging.dead_letters.list() or `conveyor dead-letter list`."
    )
