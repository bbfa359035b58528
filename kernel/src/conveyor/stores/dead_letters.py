"""Dead letters: messages that could not be handled, kept with why, for a person to act on.

The store keeps the original bytes and headers (so a message whose type no longer decodes is
still there to inspect), where it came from (channel, endpoint), and the failure. Replay is
decided by the kernel (``Messaging.dead_letters``); stores only keep and return records.

Two promises make replay safe with many operators and many letters:

- ``claim`` takes a letter out of the store atomically, so of any number of concurrent replays
  and deletes of one letter exactly one gets it (the kernel claims before it sends, so a
  message is sent at most once per letter).
- ``add`` never overwrites and never reads the whole store: it keeps the proposed id, or the
  first free ``<id>#2``, ``<id>#3``, ... (probed by key), and returns the id it used. Adding the
  n-th letter costs what the first costs.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol, runtime_checkable

from conveyor.core.errors import DeadLetterNotFound
from conveyor.core.journal import ExceptionInfo

__all__ = ["DeadLetter", "DeadLetterStore", "InMemoryDeadLetterStore", "SAMPLE", "next_id"]

#: How many existing ids a "not found" error lists: enough to spot a typo, bounded however many
#: letters the store holds.
SAMPLE = 5


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
    """Keeps dead letters. Implementations: in memory here, and one per durable adapter."""

    def add(self, letter: DeadLetter) -> str:
        """Keep ``letter`` under its id, or under ``next_id`` of it if that id is taken.

        Never overwrites a stored letter and never reads more than the ids it probes. Returns the
        id the letter is stored under.
        """
        ...

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

    def claim(self, letter_id: str) -> DeadLetter:
        """Remove the letter and return it, atomically.

        Of any number of concurrent ``claim`` and ``delete`` calls for one id, across threads and
        processes, exactly one succeeds; the others raise ``DeadLetterNotFound``.
        """
        ...


class InMemoryDeadLetterStore:
    """A dead-letter store in a dict: for tests, and for apps that accept losing it on exit.

    A lock makes ``add``, ``claim`` and ``delete`` atomic across threads.

    A letter added with its ``failure`` has its traceback formatted when it is first read, not
    when it is added: formatting a traceback costs more than the rest of a failed attempt (about
    a third of a test whose message ends dead-lettered), and most letters a test makes are
    counted or matched by type, never printed. Stores that keep letters beyond the process
    receive the traceback formatted.
    """

    __slots__ = ("_letters", "_lock", "_unformatted")

    def __init__(self) -> None:
        self._letters: dict[str, DeadLetter] = {}
        self._unformatted: dict[str, ExceptionInfo] = {}  # letter id -> its traceback's source
        self._lock = threading.Lock()

    def add(self, letter: DeadLetter, *, failure: ExceptionInfo | None = None) -> str:
        """Keep ``letter``; with ``failure``, its traceback is formatted from it on first read."""
        with self._lock:
            letter_id, n = letter.id, 1
            while letter_id in self._letters:
                n += 1
                letter_id = next_id(letter.id, n)
            stored = letter if letter_id == letter.id else _renamed(letter, letter_id)
            self._letters[letter_id] = stored
            if failure is not None:
                self._unformatted[letter_id] = failure
            return letter_id

    def list(self, *, limit: int | None = None, offset: int = 0) -> list[DeadLetter]:
        with self._lock:
            ids = list(self._letters)[offset:]
            return [self._formatted(letter_id) for letter_id in ids[:limit]]

    def get(self, letter_id: str) -> DeadLetter:
        with self._lock:
            if letter_id in self._letters:
                return self._formatted(letter_id)
        raise self._not_found(letter_id)

    def count(self) -> int:
        return len(self._letters)

    def delete(self, letter_id: str) -> None:
        self.claim(letter_id)

    def claim(self, letter_id: str) -> DeadLetter:
        with self._lock:
            letter = self._formatted(letter_id) if letter_id in self._letters else None
            self._letters.pop(letter_id, None)
        if letter is None:
            raise self._not_found(letter_id)
        return letter

    def _formatted(self, letter_id: str) -> DeadLetter:
        """The stored letter, its traceback formatted now if that was deferred (lock held)."""
        letter = self._letters[letter_id]
        failure = self._unformatted.pop(letter_id, None)
        if failure is not None:
            letter = self._letters[letter_id] = replace(letter, traceback=failure.traceback)
        return letter

    def _not_found(self, letter_id: str) -> DeadLetterNotFound:
        sample: list[str] = []
        for known in self._letters:  # the first few only, however many there are
            if len(sample) == SAMPLE:
                break
            sample.append(known)
        return not_found(letter_id, sample, total=len(self._letters))


def next_id(letter_id: str, n: int) -> str:
    """The id to try when ``letter_id`` is taken, for the n-th letter (n >= 2) of one copy."""
    return f"{letter_id}#{n}"


def _renamed(letter: DeadLetter, letter_id: str) -> DeadLetter:
    return replace(letter, id=letter_id)


def not_found(
    letter_id: str, known: Sequence[str], *, total: int | None = None
) -> DeadLetterNotFound:
    """The error every store raises for an unknown id, listing a few ids that do exist.

    Args:
        letter_id: the id asked for.
        known: ids that exist, oldest first; only the first ``SAMPLE`` are shown, so a store
            passes just those.
        total: how many letters the store holds; ``len(known)`` when not given.
    """
    count = len(known) if total is None else total
    shown = ", ".join(known[:SAMPLE])
    if count > len(known[:SAMPLE]):
        shown += f" and {count - len(known[:SAMPLE])} more"
    exists = f"the store holds {count}: {shown}" if count else "the store is empty"
    return DeadLetterNotFound(
        f"no dead letter with id {letter_id!r}; {exists}. List them with "
        f"messaging.dead_letters.list() or `conveyor dead-letter list`."
    )
