"""``messaging.dead_letters``: list, show, replay and delete dead letters.

Replay sends the original bytes and headers back to the channel they were consumed from, for the
same endpoint only (other handlers of the same event are not run again), with a fresh attempt
count, and records that it did; the letter leaves the store once the message is back on its
channel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from conveyor.core.clock import Clock
from conveyor.core.errors import ConfigurationError, DeadLetterNotFound
from conveyor.core.journal import Journal, RecordKind
from conveyor.core.lifecycle import replay_count
from conveyor.core.wire import H, WireMessage
from conveyor.drivers.channel_runtime import ChannelRuntime
from conveyor.stores.dead_letters import DeadLetter, DeadLetterStore
from conveyor.transports.dynamic import VIA

__all__ = ["DeadLetters"]


class DeadLetters:
    """The dead-letter store of a ``Messaging``, with replay."""

    __slots__ = ("_channels", "_clock", "_drain_inline", "_journal", "store")

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
        """Send a dead letter back to its channel, for its endpoint only."""
        letter = self.store.get(letter_id)
        runtime = self._channels.get(letter.channel)
        if runtime is None:
            raise ConfigurationError(
                f"dead letter {letter_id} came from channel {letter.channel!r}, which this "
                f"Messaging does not declare (declared: {', '.join(self._channels) or 'none'}); "
                f"declare it to replay."
            )
        headers = dict(letter.headers)
        headers[H.ATTEMPT] = "1"
        headers[H.REPLAYED] = str(replay_count(headers) + 1)
        headers.pop(H.FIRST_FAILED_AT, None)
        headers.pop(H.EXPIRES_AT, None)
        runtime.transport.send(letter.channel, WireMessage(letter.body, headers))
        self.store.delete(letter_id)
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

    def replay_all(self) -> int:
        """Replay every dead letter; returns how many."""
        replayed = 0
        for letter in self.list():
            self.replay(letter.id)
            replayed += 1
        return replayed

    def new_id(self, message_id: str, where: str) -> str:
        """A readable id, unique in the store: ``<message id>@<endpoint or channel>``."""
        store = self.store
        base = f"{message_id}@{where}"
        candidate, n = base, 1
        while _exists(store, candidate):
            n += 1
            candidate = f"{base}#{n}"
        return candidate


def _exists(store: DeadLetterStore, letter_id: str) -> bool:
    try:
        store.get(letter_id)
    except DeadLetterNotFound:
        return False
    return True
