"""Purging expired deduplication keys while consuming, at a bounded cost per message.

Keys that are never purged grow without bound (one per handled message, forever). Purging them
on a timer would need a thread; purging all of them at once would stall one unlucky message.
Instead every ``purge_every``-th deduplicated message removes at most ``purge_limit`` expired
keys, which keeps up with the one key each message adds while costing each message a bounded
share. A purge that fails is logged and tried again at the next turn: the message was handled.
"""

from __future__ import annotations

import itertools
import logging

from conveyor.core.clock import Clock
from conveyor.stores.deduplication import Deduplication

__all__ = ["KeyPurge"]

_LOG = logging.getLogger("conveyor")


class KeyPurge:
    """Counts deduplicated messages and purges expired keys every ``purge_every`` of them."""

    __slots__ = ("_clock", "_count", "_deduplication")

    def __init__(self, deduplication: Deduplication, clock: Clock) -> None:
        self._deduplication = deduplication
        self._clock = clock
        self._count = itertools.count(1)  # next() is atomic: safe across consumer threads

    def after_message(self) -> int:
        """Called once per deduplicated message handled; returns how many keys it removed."""
        deduplication = self._deduplication
        if next(self._count) % deduplication.purge_every:
            return 0
        try:
            return deduplication.store.remove_expired(
                now=self._clock.now(), limit=deduplication.purge_limit
            )
        except Exception as error:
            _LOG.warning(
                "purging expired deduplication keys failed (%s: %s); trying again later",
                type(error).__name__,
                error,
            )
            return 0
