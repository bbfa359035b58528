"""How a ``WireMessage`` travels as an SQS message, and what it costs against the size limit.

SQS carries a text body and at most 10 message attributes, and both accept only XML characters.
Conveyor's messages carry arbitrary bytes and any number of string headers with any names, so:

- All headers travel in ONE string attribute, ``conveyor``, as a JSON array ``[body_encoding,
  {name: value, ...}]`` (plus the due time in unix ms for a delayed message on a FIFO queue,
  which has no per-message delay): any number of headers, any unicode, nine attributes free.
- A body that is valid UTF-8 made of characters SQS accepts (every JSON body the kernel's codec
  writes) travels as is, so the console and other SQS tools can read it; any other body (binary,
  control characters, empty) travels as base64, marked in the attribute.

The size SQS counts is the body plus every attribute's name, type and value, in bytes
(:func:`encoded_size`). The declared ``max_size`` is in ``WireMessage.size`` terms, so it keeps
room for base64 (4/3) and the attribute's overhead (:func:`wire_limit`).

FIFO queues need a message group and a deduplication id per message (:func:`group_id`,
:func:`deduplication_id`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from conveyor.core.wire import H, WireMessage

__all__ = [
    "ATTRIBUTE",
    "EncodedMessage",
    "encode",
    "decode",
    "encoded_size",
    "wire_limit",
    "group_id",
    "deduplication_id",
]

ATTRIBUTE = "conveyor"
"""The one message attribute that carries every header."""

_TYPE = "String"
_TEXT, _BASE64 = "t", "b"
_HEADER_ROOM = 4096
"""Bytes of the queue's limit kept for the attribute's name, type and JSON quoting (an eighth
of it on queues smaller than 32 KiB)."""

# Characters SQS accepts in a body or a string attribute (the XML 1.0 character range).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# MessageGroupId: up to 128 ASCII letters, digits and punctuation.
_GROUP_SAFE = re.compile(r"[!-~]{1,128}")


EncodedMessage = tuple[str, dict[str, dict[str, str]]]
"""``(MessageBody, MessageAttributes)``, as boto3's ``send_message`` takes them."""


def encode(message: WireMessage, *, due_ms: int | None = None) -> EncodedMessage:
    """The SQS body and attributes for ``message``; ``due_ms`` for a FIFO queue's delay."""
    body = message.body
    try:
        text = body.decode()
    except UnicodeDecodeError:
        text = ""
    if text and not _NOT_XML.search(text):
        encoding = _TEXT
    else:
        text, encoding = base64.b64encode(body).decode("ascii") or "=", _BASE64
    fields: list[object] = [encoding, dict(message.headers)]
    if due_ms is not None:
        fields.append(due_ms)
    packed = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    if _NOT_XML.search(packed):  # U+FFFE or U+FFFF in a header: escape everything
        packed = json.dumps(fields, separators=(",", ":"))
    return text, {ATTRIBUTE: {"DataType": _TYPE, "StringValue": packed}}


def decode(body: str, attributes: Mapping[str, Any] | None) -> tuple[WireMessage, int | None]:
    """The ``WireMessage`` a received SQS message carries, and its due time (FIFO delays).

    A message without a well-formed ``conveyor`` attribute (sent by another program, or
    altered) comes back with its body and no headers: the kernel dead-letters it as "malformed
    headers" with the raw body kept, rather than the transport dropping it or failing the
    consumer on every receive.
    """
    attribute = (attributes or {}).get(ATTRIBUTE)
    if attribute is None:
        return WireMessage(body.encode(), {}), None
    try:
        packed = json.loads(attribute["StringValue"])
        encoding, headers = packed[0], packed[1]
        due_ms = int(packed[2]) if len(packed) > 2 else None
        if encoding == _BASE64:
            raw = b"" if body == "=" else base64.b64decode(body, validate=True)
        else:
            raw = body.encode()
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise ValueError("headers are not a JSON object of strings")
    except (ValueError, KeyError, TypeError, IndexError, binascii.Error):
        return WireMessage(body.encode(), {}), None
    return WireMessage(raw, headers), due_ms


def encoded_size(encoded: EncodedMessage) -> int:
    """Bytes SQS counts against ``MaximumMessageSize``: body plus attribute names, types, values."""
    body, attributes = encoded
    size = len(body.encode())
    for name, value in attributes.items():
        size += len(name) + len(value["DataType"]) + len(value["StringValue"].encode())
    return size


def wire_limit(queue_maximum: int) -> int:
    """The largest ``WireMessage.size`` promised to fit a queue of ``queue_maximum`` bytes.

    Room for a base64 body (4 bytes per 3) and for the attribute's overhead; a message within it
    fits unless its headers are dominated by characters JSON escapes (control characters).
    """
    room = min(_HEADER_ROOM, queue_maximum // 8)
    return (queue_maximum - room) * 3 // 4


def group_id(value: str) -> str:
    """A valid ``MessageGroupId`` for a header value: itself when SQS accepts it, else a digest.

    Equal values always give equal ids, so ordering within a group holds for any value.
    """
    if _GROUP_SAFE.fullmatch(value):
        return value
    return "sha256-" + hashlib.sha256(value.encode()).hexdigest()


def deduplication_id(message: WireMessage) -> str:
    """A FIFO ``MessageDeduplicationId``: the message id, plus a digest of the copy.

    The same copy sent twice within SQS's 5-minute window (a producer retrying a send whose
    answer it lost) is stored once. The kernel's own resends of a message (a retry, a replay, the
    rest of a long delay) change the attempt or other headers, so the digest differs and they
    are never dropped as duplicates.
    """
    digest = hashlib.sha256()
    for name in sorted(message.headers):
        digest.update(name.encode() + b"\0" + message.headers[name].encode() + b"\0")
    digest.update(message.body)
    message_id = message.headers.get(H.ID, "")
    readable = len(message_id) <= 60 and _GROUP_SAFE.fullmatch(message_id)
    return f"{message_id}.{digest.hexdigest()}" if readable else digest.hexdigest()
