"""``messaging.dead_letters``: list, show, replay and delete dead letters.

Replay sends the original bytes and headers back to the channel they were consumed from, for the
same endpoint only (other handlers of the same event are not run again), with a fresh attempt
count, and records that it did. The letter is claimed out of the store before the message is
sent (and put back if sending fails), so concurrent replays and deletes never send it twice.
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
from conveyor.transports.dynamic import VIA

TICK = "tick"  # conveyor.drivers.ticks.TICK: a scheduled tick kept as a dead letter

__all__ = [
    "DeadLetters",
    "StoredLetters",
    "replay_target",
    "replayed_copy",
    "record_replayed",
    "record_tick_replayed",
    "is_tick",
    "TICK",
]


class DeadLetters:
    """The dead-letter store of a ``Messaging``, with replay."""

    __slots__ = ("_channels", "_clock", "_drain_inline", "_journal", "store", "ticks")

    def __init__(
        self,
        store: DeadLetterStore,
        *,
        channels: Mapping[str, ChannelRuntime],
        journal: Journal,
        clock: Clock,
        drain_inline: Callable[[], None] | None,
    ) -> None:
        self.store = store
        self._channels = channels
        self._journal = journal
        self._clock = clock
        self._drain_inline = drain_inline
        #: Runs a scheduled tick kept as a dead letter again (set by the ``Messaging``).
        self.ticks: Callable[[DeadLetter], None] | None = None

    def list(self, *, limit: int | None = None, offset: int = 0) -> list[DeadLetter]:
        """Dead letters, oldest first."""
        return self.store.list(limit=limit, offset=offset)

    def get(self, letter_id: str) -> DeadLetter:
        return self.store.get(letter_id)

    def count(self) -> int:
        return self.store.count()

    def delete(self, letter_id: str) -> None:
        self.store.delete(letter_id)

    def replay(self, letter_id: str) -> None:
        """Send a dead letter back to its channel, for its endpoint only.

        The letter is claimed (taken out of the store atomically) before the message is sent, so
        however many operators replay or delete one letter at once, exactly one of them gets it
        and the message is sent at most once. If sending fails, the letter is put back (at the
        end of the list) and the error raised.
        """
        stored = self.store.get(letter_id)
        if (
            stored.message_type == TICK
            and self.ticks is not None
            and stored.channel not in self._channels
        ):
            self._replay_tick(self.store.claim(letter_id), self.ticks)
            return
        self._runtime(stored)  # refuse an undeclared channel before claiming
        letter = self.store.claim(letter_id)
        try:
            runtime = self._runtime(letter)
            headers = dict(letter.headers)
            headers[H.ATTEMPT] = "1"
            headers[H.REPLAYED] = str(replay_count(headers) + 1)
            headers.pop(H.FIRST_FAILED_AT, None)
            headers.pop(H.EXPIRES_AT, None)
            runtime.transport.send(letter.channel, WireMessage(letter.body, headers))
        except BaseException:
            self.store.add(letter)
            raise
        self._journal.append(
            self._clock.now(),
            RecordKind.REPLAYED,
            letter.message_id,
            letter.message_type,
            channel=letter.channel,
            endpoint_id=letter.endpoint_id,
            detail=f"dead letter {letter_id}",
            via=headers.get(VIA) if runtime.router is not None else None,
        )
        if self._drain_inline is not None:  # an inline channel handles it at once
            self._drain_inline()

    def _replay_tick(self, letter: DeadLetter, run: Callable[[DeadLetter], None]) -> None:
        """A failed scheduled tick: record the replay, then run the tick again now."""
        record_tick_replayed(self._journal, self._clock.now(), letter)
        run(letter)

    def _runtime(self, letter: DeadLetter) -> ChannelRuntime:
        runtime = self._channels.get(letter.channel)
        if runtime is None:
            raise ConfigurationError(
                f"dead letter {letter.id} came from channel {letter.channel!r}, which this "
                f"Messaging does not declare (declared: {', '.join(self._channels) or 'none'}); "
                f"declare it to replay."
            )
        return runtime

    def replay_all(self) -> int:
        """Replay every dead letter; returns how many this call replayed.

        A letter another operator replays or deletes meanwhile is skipped, not an error.
        """
        replayed = 0
        for letter in self.list():
            try:
                self.replay(letter.id)
            except DeadLetterNotFound:
                continue
            replayed += 1
        return replayed

    @staticmethod
    def new_id(message_id: str, where: str) -> str:
        """A readable id to propose: ``<message id>@<endpoint or channel>``.

        It reads nothing: the store's ``add`` keeps it, or the first free ``#2``, ``#3``, ...
        suffix, and returns the id it used.
        """
        return f"{message_id}@{where}"


class StoredLetters:
    """Reading and deleting dead letters: the part of ``dead_letters`` that never waits.

    What ``AsyncMessaging.dead_letters`` shares with the sync ``DeadLetters``.
    """

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

    @staticmethod
    def new_id(message_id: str, where: str) -> str:
        """A readable id to propose (as ``DeadLetters.new_id``): the store keeps it unique."""
        return DeadLetters.new_id(message_id, where)


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


def is_tick(letter: DeadLetter, channels: Mapping[str, object]) -> bool:
    """Whether a dead letter holds a failed scheduled tick (replayed by running it again)."""
    return letter.message_type == TICK and letter.channel not in channels


def record_tick_replayed(journal: Journal, now: datetime, letter: DeadLetter) -> None:
    """Journal that a tick kept as a dead letter runs again."""
    journal.append(
        now,
        RecordKind.REPLAYED,
        letter.message_id,
        letter.message_type,
        endpoint_id=letter.endpoint_id,
        detail=f"dead letter {letter.id}",
    )
