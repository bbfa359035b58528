"""One Redis string per message: its headers as JSON, a newline, then the body bytes.

Stored once, in the channel's ``messages`` hash; the sorted sets only move its id. JSON (with
ASCII escapes) never contains a raw newline, so the first newline ends the headers and the body
after it is kept byte for byte. Headers round-trip exactly: any unicode value, empty values,
``cv-`` framework headers. No pickle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from conveyor.core.errors import SerializationError
from conveyor.core.wire import WireMessage

__all__ = ["encode", "decode"]

_dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
_loads = json.loads
_NO_HEADERS = b"{}\n"


def encode(message: WireMessage) -> bytes:
    """The stored form of ``message``."""
    headers: Mapping[str, str] = message.headers
    if not headers:
        return _NO_HEADERS + message.body
    return _dumps(dict(headers)).encode("ascii") + b"\n" + message.body


def decode(stored: bytes) -> WireMessage:
    """Read back what :func:`encode` stored."""
    end = stored.find(b"\n")
    if end < 0:
        raise SerializationError(
            f"a message of {len(stored)} bytes in Redis is not in Conveyor's stored form "
            f"(JSON headers, a newline, the body); was it written by another program?"
        )
    if end == 2:  # b"{}": the common case of a message without headers
        return WireMessage(stored[3:], {})
    return WireMessage(stored[end + 1 :], _loads(stored[:end]))
