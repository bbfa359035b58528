"""``async_messaging.dead_letters``: the dead-letter store of an ``AsyncMessaging``, with replay.

Listing, reading and deleting go straight to the store; replay sends the original bytes back to
their channel through its ``AsyncTransport`` (awaited), built and journaled as the sync driver
does (``conveyor.drivers.replay``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from conveyor.core.clock import Clock
from conveyor.core.journal import Journal
from conveyor.drivers.channel_runtime import AsyncChannelRuntime
from conveyor.drivers.replay import (
    StoredLetters,
    is_tick,
    record_replayed,
    record_tick_replayed,
    replay_target,
    replayed_copy,
)
from conveyor.stores.dead_letters import DeadLetter, DeadLetterStore

__all__ = ["AsyncDeadLetters"]


class AsyncDeadLetters(StoredLetters):
    """Dead letters of an ``AsyncMessaging``: list, get, count, delete; replay awaited."""

    __slots__ = ("_channels", "_drain_inline", "ticks")

    def __init__(
        self,
        store: DeadLetterStore,
        *,
        channels: Mapping[str, AsyncChannelRuntime],
        journal: Journal,
        clock: Clock,
        drain_inline: Callable[[], Awaitable[object]] | None,
    ) -> None:
        super().__init__(store, journal, clock)
        self._channels = channels
        self._drain_inline = drain_inline
        #: Runs a scheduled tick kept as a dead letter again (set by the ``AsyncMessaging``).
        self.ticks: Callable[[DeadLetter], Awaitable[None]] | None = None

    async def replay(self, letter_id: str) -> None:
        """Send a dead letter back to its channel, for its endpoint only."""
        stored = self.store.get(letter_id)
        if self.ticks is not None and is_tick(stored, self._channels):
            letter = self.store.claim(letter_id)
            record_tick_replayed(self._journal, self._clock.now(), letter)
            await self.ticks(letter)
            return
        replay_target(stored, self._channels)  # refuse before claiming
        letter = self.store.claim(letter_id)  # one replay of many concurrent ones gets it
        try:
            runtime = replay_target(letter, self._channels)
            await runtime.transport.send(letter.channel, replayed_copy(letter))
        except BaseException:
            self.store.add(letter)
            raise
        record_replayed(self._journal, self._clock.now(), letter)
        if self._drain_inline is not None:
            await self._drain_inline()

    async def replay_all(self) -> int:
        """Replay every dead letter; returns how many."""
        letters = self.list()
        for letter in letters:
            await self.replay(letter.id)
        return len(letters)
