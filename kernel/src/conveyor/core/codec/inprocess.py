"""``InProcessCodec``: opting an in-memory channel out of serialization.

Messages on a channel with this codec keep their payload objects: nothing is encoded, so types
the JSON codec cannot carry still work, and it costs less. The price is what serialization
protects: copies for several handlers share one object, and a payload that could not cross a
real broker is not caught in tests. Use it deliberately, for in-process channels only.
"""

from __future__ import annotations

import itertools

from conveyor.core.errors import SerializationError
from conveyor.core.message import type_name_of

__all__ = ["InProcessCodec"]


class InProcessCodec:
    """Keeps payload objects in a table; the wire body is only a key into it."""

    content_type = "application/x-conveyor-in-process"

    __slots__ = ("_counter", "_objects")

    def __init__(self) -> None:
        self._objects: dict[bytes, object] = {}
        self._counter = itertools.count(1)

    def encode(self, payload: object) -> tuple[bytes, str]:
        key = str(next(self._counter)).encode()
        self._objects[key] = payload
        return key, type_name_of(payload)

    def decode(self, body: bytes, type_name: str) -> object:
        try:
            return self._objects[body]
        except KeyError:
            raise SerializationError(
                f"in-process message {body!r} ({type_name}) is not in this process; an "
                f"InProcessCodec channel cannot cross processes or brokers. Use the JSON codec "
                f"for durable or shared channels.",
                raw=body,
            ) from None

    def __len__(self) -> int:
        return len(self._objects)
