"""Message ids: the only module that makes uuids or reads randomness.

Production ids are uuid v7 (time-ordered, so brokers and stores index them well). Tests ask for
:class:`SequentialIds`, which give ``msg-1``, ``msg-2``, ... so journals and failure output are
stable from run to run.
"""

from __future__ import annotations

import itertools
import os
import random
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from conveyor.core.clock import Clock

__all__ = ["IdGenerator", "UuidV7Ids", "SequentialIds", "seeded_random"]


@runtime_checkable
class IdGenerator(Protocol):
    """Makes a new unique message id each call."""

    def new(self) -> str: ...


class UuidV7Ids:
    """uuid v7 ids (RFC 9562) whose time part comes from the injected clock.

    Ids made within one millisecond stay ordered: the 12-bit ``rand_a`` field counts up from a
    random start, as the RFC's "monotonic random" method allows. The 62 random bits come from a
    generator seeded once from the OS, which keeps making an id cheap (it is on every send).
    """

    __slots__ = ("_clock", "_last_ms", "_prefix", "_random", "_sequence", "_window_end")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._last_ms = -1
        self._sequence = 0
        self._prefix = ""
        self._window_end = _EPOCH
        self._random = random.Random(int.from_bytes(os.urandom(16)))

    def new(self) -> str:
        return self.new_at(self._clock.now())

    def new_at(self, now: datetime) -> str:
        """An id whose time part is ``now`` (the caller read the clock already)."""
        if now < self._window_end:  # the same millisecond as the last id (or the clock went back)
            self._sequence = sequence = self._sequence + 1
            if sequence > 0xFFF:
                self._sequence = 0
                self._set_time(self._last_ms + 1)
            tail = f"{self._random.getrandbits(62) | 0x8000_0000_0000_0000:016x}"
            return f"{self._prefix}{self._sequence:03x}-{tail[:4]}-{tail[4:]}"
        unix_ms = int(now.timestamp() * 1000)
        if unix_ms > self._last_ms:
            self._sequence = self._random.getrandbits(11)
            self._set_time(unix_ms)
        else:
            self._sequence += 1
            if self._sequence > 0xFFF:  # counter exhausted: borrow the next millisecond
                self._sequence = 0
                self._set_time(self._last_ms + 1)
        tail = f"{self._random.getrandbits(62) | 0x8000_0000_0000_0000:016x}"
        return f"{self._prefix}{self._sequence:03x}-{tail[:4]}-{tail[4:]}"

    def _set_time(self, unix_ms: int) -> None:
        self._last_ms = unix_ms
        self._window_end = _EPOCH + timedelta(milliseconds=unix_ms + 1)
        stamp = f"{unix_ms & 0xFFFF_FFFF_FFFF:012x}"
        self._prefix = f"{stamp[:8]}-{stamp[8:]}-7"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SequentialIds:
    """``msg-1``, ``msg-2``, ...: readable, repeatable ids for tests.

    Numbers come from one ``itertools.count``, whose step is atomic, so threads sharing a
    generator never get the same id.
    """

    __slots__ = ("_numbers", "_prefix")

    def __init__(self, prefix: str = "msg-", start: int = 1) -> None:
        self._prefix = prefix
        self._numbers = itertools.count(start)

    def new(self) -> str:
        return f"{self._prefix}{next(self._numbers)}"


def seeded_random(seed: int | None) -> random.Random:
    """A random source for jitter: seeded in tests, from the OS in production."""
    return random.Random(seed if seed is not None else int.from_bytes(os.urandom(8)))
