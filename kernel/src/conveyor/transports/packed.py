"""A queued in-memory message that was never delivered, packed into one ``bytes`` object.

Most messages on an in-memory channel wait their turn and are received once. Kept as a slotted
entry with a tuple of header values, each waiting message held six objects (the entry, its
sequence number, the tuple, the id and timestamp strings, the body), about 450 bytes for a
small command; packed, it is one object of its body and header values plus a 13-byte head,
about 210 bytes (issue 21: at most 300). It is unpacked into an entry when it is received.

Layout: ``seq`` (8 bytes), the index of its header-name set (1 byte), the length of its header
values (2 bytes), the header values in UTF-8 joined by ``SEPARATOR``, then the body. A message
that does not fit (a header value holding the separator or a lone surrogate, a set of header
names beyond the shared ones, a body over ``MAX_BODY`` bytes, whose copy would cost more than it
saves) is not packed: the transport keeps it as an entry, as before.

Packing costs about half a microsecond at send and one at receipt (encoding, joining, decoding
and splitting the header values), against about 245 bytes saved per waiting message.
"""

from __future__ import annotations

import struct

__all__ = ["MAX_BODY", "SEPARATOR", "pack", "seq_of", "unpack"]

SEPARATOR = "\x1f"
"""Between two header values (the ASCII unit separator; no value that holds it is packed)."""

MAX_BODY = 4096
"""Bodies up to this size are packed; a larger one is kept as it is, not copied again."""

_HEAD = struct.Struct(">QBH")  # seq, header-name set, length of the header values in bytes
_START = _HEAD.size


def pack(seq: int, names: int, values: tuple[str, ...], joined: str, body: bytes) -> bytes | None:
    """The packed message, or None if it does not fit (see the module docstring).

    ``joined`` is ``SEPARATOR.join(values)``, which the transport made to check the values.
    """
    if (
        not values
        or names > 0xFF
        or len(body) > MAX_BODY
        or joined.count(SEPARATOR) != len(values) - 1
    ):
        return None
    try:
        header = joined.encode()
    except UnicodeEncodeError:  # a lone surrogate: kept as an entry, exactly as it was given
        return None
    if len(header) > 0xFFFF:
        return None
    return b"".join((_HEAD.pack(seq, names, len(header)), header, body))


def seq_of(packed: bytes) -> int:
    """The message's sequence number (its place in send order)."""
    seq: int = _HEAD.unpack_from(packed)[0]
    return seq


def unpack(packed: bytes) -> tuple[int, int, list[str], bytes]:
    """``(seq, header-name set, header values, body)`` of a packed message."""
    seq, names, size = _HEAD.unpack_from(packed)
    end = _START + size
    return seq, names, packed[_START:end].decode().split(SEPARATOR), packed[end:]
