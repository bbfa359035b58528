"""``messaging.dead_letters``: list, show, replay and delete dead letters.

Replay sends the original bytes and headers back to the channel they were consumed from, for the
same endpoint only (other handlers of the same event are not run again), with a fresh attempt
count, and records that it did; the letter leaves the store once the message is back on its
channel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor.core.errors import ConfigurationError, DeadLetterNotFound
from conveyor.core.journal import RecordKind
from conveyor.core.wire import H
from conveyor.stores.dead_letters import DeadLetter, DeadLetterStore
from conveyor.transports.seam import WireMessage

if TYPE_CHECKING:
    from conveyor.drivers.messaging import Messaging

__all__ = ["DeadLetters"]


class DeadLetters:
    """The dead-letter store of a ``Messaging``, with replay."""

    __slots__ = ("_messaging",)

    def __init__(self, messaging: Messaging) -> None:
        self._messaging = messaging

    def list(self, *, limit: int | None = None, offset: int = 0) -> list[DeadLetter]:
        """Dead letters, oldest first."""
        return self._messaging.dead_letter_store.list(limit=limit, offset=offset)

    def get(self, letter_id: str) -> DeadLetter:
        return self._messaging.dead_letter_store.get(letter_id)

    def count(self) -> int:
        return self._messaging.dead_letter_store.count()

    def delete(self, letter_id: str) -> None:
        self._messaging.dead_letter_store.delete(letter_id)

    def replay(self, letter_id: str) -> None:
        """Send a dead letter back to its channel, for its endpoint only."""
        m = self._messaging
        letter = m.dead_letter_store.get(letter_id)
        runtime = m.channels.get(letter.channel)
        if runtime is None:
            raise ConfigurationError(
                f"dead letter {letter_id} came from channel {letter.channel!r}, which this "
                f"Messaging does not declare (declared: {', '.join(m.channels) or 'none'}); "
                f"declare it to replay."
            )
        headers = dict(letter.headers)
        headers[H.ATTEMPT] = "1"
        headers[H.REPLAYED] = str(int(headers.get(H.REPLAYED, "0")) + 1)
        headers.pop(H.FIRST_FAILED_AT, None)
        headers.pop(H.EXPIRES_AT, None)
        runtime.transport.send(letter.channel, WireMessage(letter.body, headers))
        m.dead_letter_store.delete(letter_id)
        m.journal.append(
            m.clock.now(),
            RecordKind.REPLAYED,
            letter.message_id,
            letter.message_type,
            channel=letter.channel,
            endpoint_id=letter.endpoint_id,
            detail=f"dead letter {letter_id}",
        )
        m.dispatch.drain_inline()  # an inline channel handles the replayed message at once

    def replay_all(self) -> int:
        """Replay every dead letter; returns how many."""
        replayed = 0
        for letter in self.list():
            self.replay(letter.id)
            replayed += 1
        return replayed

    def new_id(self, message_id: str, where: str) -> str:
        """A readable id, unique in the store: ``<message id>@<endpoint or channel>``."""
        store = self._messaging.dead_letter_store
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
