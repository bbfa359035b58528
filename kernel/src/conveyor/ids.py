"""Message ids: the only module that makes uuids or reads randomness.

Production ids are uuid v7 (time-ordered, so brokers and stores index them well). Tests ask for
:class:`SequentialIds`, which give ``msg-1``, ``msg-2``, ... so journals and failure output are
stable from run to run.
"""

from __future__ import annotations

import os
import random
from typing import Protocol, runtime_checkable

from conveyor.clock import Clock

__all__ = ["IdGenerator", "UuidV7Ids", "SequentialIds", "seeded_random"]


@runtime_checkable
class IdGenerator(Protocol):
    """Makes a new unique message id each call."""

    def new(self) -> str: ...


class UuidV7Ids:
    """uuid v7 ids (RFC 9562) whose time part comes from the injected clock.

    Ids made within one millisecond stay ordered: the 12-bit ``rand_a`` field counts up from a
    random start, as the RFC's "monotonic random" method allows.
    """

    __slots__ = ("_clock", "_last_ms", "_sequence")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._last_ms = -1
        self._sequence = 0

    def new(self) -> str:
        unix_ms = int(self._clock.now().timestamp() * 1000)
        if unix_ms <= self._last_ms:
            unix_ms = self._last_ms
            self._sequence += 1
            if self._sequence > 0xFFF:  # counter exhausted: borrow the next millisecond
                unix_ms += 1
                self._sequence = 0
        else:
            self._sequence = int.from_bytes(os.urandom(2)) & 0x7FF
        self._last_ms = unix_ms
        rand_b = int.from_bytes(os.urandom(8)) & 0x3FFF_FFFF_FFFF_FFFF
        value = (
            (unix_ms & 0xFFFF_FFFF_FFFF) << 80
            | 0x7 << 76
            | self._sequence << 64
            | 0b10 << 62
            | rand_b
        )
        text = f"{value:032x}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class SequentialIds:
    """``msg-1``, ``msg-2``, ...: readable, repeatable ids for tests."""

    __slots__ = ("_next", "_prefix")

    def __init__(self, prefix: str = "msg-", start: int = 1) -> None:
        self._prefix = prefix
        self._next = start

    def new(self) -> str:
        number = self._next
        self._next = number + 1
        return f"{self._prefix}{number}"


def seeded_random(seed: int | None) -> random.Random:
    """A random source for jitter: seeded in tests, from the OS in production."""
    return random.Random(seed if seed is not None else int.from_bytes(os.urandom(8)))
