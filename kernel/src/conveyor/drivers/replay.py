"""``messaging.dead_letters``: list, show, replay and delete dead letters.

Replay sends the original bytes and headers back to the channel they were consumed from, for the
same endpoint only (other handlers of the same event are not run again), with a fresh attempt
count, and records that it did; the letter leaves the store once the message is back on its
channel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar

from conveyor.core.clock import Clock
from conveyor.core.errors import ConfigurationError, DeadLetterNotFound
from conveyor.core.journal import Journal, RecordKind
from conveyor.core.lifecycle import replay_count
from conveyor.core.wire import H, WireMessage
from conveyor.drivers.channel_runtime import AnyRuntime, ChannelRuntime
from conveyor.stores.dead_letters import DeadLetter, DeadLetterStore

__all__ = ["StoredLetters", "DeadLetters", "replay_target", "replayed_copy", "record_replayed"]


class StoredLetters:
    """Reading and deleting dead letters: the part of ``dead_letters`` that never waits."""

    __slots__ = ("_clock", "_journal", "store")

    def __init__(self, store: DeadLetterStore, journal: Journal, clock: Clock) -> None:
        self.store = store
        self._journal = journal
        self._clock = clock

    def list(self, *, limit: int | None = None, offset: int = 0) -> list[DeadLetter]:
        """Dead letters, oldest first."""
        return self.store.list(limit=limit, offset=offset)

    def get(self, letter_id: str) -> DeadLetter:
        return self.store.get(letter_id)

    def count(self) -> int:
        return self.store.count()

    def delete(self, letter_id: str) -> None:
        self.store.delete(letter_id)

    def new_id(self, message_id: str, where: str) -> str:
        """A readable id, unique in the store: ``<message id>@<endpoint or channel>``."""
        store = self.store
        base = f"{message_id}@{where}"
        candidate, n = base, 1
        while _exists(store, candidate):
            n += 1
            candidate = f"{base}#{n}"
        return candidate


class DeadLetters(StoredLetters):
    """The dead-letter store of a ``Messaging``, with replay."""

    __slots__ = ("_channels", "_drain_inline")

    def __init__(
        self,
        store: DeadLetterStore,
        *,
        channels: Mapping[str, ChannelRuntime],
        journal: Journal,
        clock: Clock,
        drain_inline: Callable[[], None] | None,
    ) -> None:
        super().__init__(store, journal, clock)
        self._channels = channels
        self._drain_inline = drain_inline

    def replay(self, letter_id: str) -> None:
        """Send a dead letter back to its channel, for its endpoint only."""
        letter = self.store.get(letter_id)
        runtime = replay_target(letter, self._channels)
        runtime.transport.send(letter.channel, replayed_copy(letter))
        self.store.delete(letter_id)
        record_replayed(self._journal, self._clock.now(), letter)
        if self._drain_inline is not None:  # an inline channel handles it at once
            self._drain_inline()

    def replay_all(self) -> int:
        """Replay every dead letter; returns how many."""
        replayed = 0
        for letter in self.list():
            self.replay(letter.id)
            replayed += 1
        return replayed


R = TypeVar("R", bound=AnyRuntime)


def replay_target(letter: DeadLetter, channels: Mapping[str, R]) -> R:
    """The channel a dead letter goes back to; an error naming it when it is not declared."""
    runtime = channels.get(letter.channel)
    if runtime is None:
        raise ConfigurationError(
            f"dead letter {letter.id} came from channel {letter.channel!r}, which this "
            f"Messaging does not declare (declared: {', '.join(channels) or 'none'}); "
            f"declare it to replay."
        )
    return runtime


def replayed_copy(letter: DeadLetter) -> WireMessage:
    """The original bytes and headers, with a fresh attempt count and one more replay."""
    headers = dict(letter.headers)
    headers[H.ATTEMPT] = "1"
    headers[H.REPLAYED] = str(replay_count(headers) + 1)
    headers.pop(H.FIRST_FAILED_AT, None)
    headers.pop(H.EXPIRES_AT, None)
    return WireMessage(letter.body, headers)


def record_replayed(journal: Journal, now: datetime, letter: DeadLetter) -> None:
    journal.append(
        now,
        RecordKind.REPLAYED,
        letter.message_id,
        letter.message_type,
        channel=letter.channel,
        endpoint_id=letter.endpoint_id,
        detail=f"dead letter {letter.id}",
    )


def _exists(store: DeadLetterStore, letter_id: str) -> bool:
    try:
        store.get(letter_id)
    except DeadLetterNotFound:
        return False
    return True
