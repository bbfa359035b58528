"""Reading what a stored row holds, whatever it holds: nothing in a row can stop a consumer.

A SQLite column holds any type whatever its declared one, and a row can be written by hand, by
another program or by an older release. A receive that failed on such a row used to fail inside
the claim transaction: the lease rolled back, the same row was picked again, and every message
behind it waited forever. So the claim reads the body and the headers as raw bytes (``CAST(...
AS BLOB)`` never fails, not even on text that is not UTF-8) and this module makes what it can of
them: the body as bytes, and headers that cannot be read replaced by one header,
:data:`UNREADABLE`, that says what was wrong without quoting any value. The kernel then sets
the message aside as a dead letter with "malformed headers" and the raw body, and goes on.
"""

from __future__ import annotations

import json

__all__ = ["UNREADABLE", "read_body", "read_headers", "read_count"]

#: The header that replaces headers a row holds but that cannot be read; its value says why.
UNREADABLE = "cv-unreadable"

# A delivery count beyond this is clamped: SQLite integers are 64-bit, and adding one to the
# largest would overflow where the count is written back.
_MAX_COUNT = 2**62

_JSON_TYPES = {
    list: "a JSON array",
    str: "a JSON string",
    int: "a JSON number",
    float: "a JSON number",
    bool: "a JSON boolean",
    type(None): "JSON null",
}


def read_body(raw: object) -> bytes:
    """The stored body as bytes: a BLOB as is; TEXT, INTEGER or REAL cast to bytes by SQLite."""
    if isinstance(raw, bytes):
        return raw
    if raw is None:
        return b""
    return str(raw).encode("utf-8", "surrogateescape")


def read_count(raw: object) -> int:
    """A stored delivery count as a non-negative int; anything unreadable counts as 0."""
    if type(raw) is int:
        return min(max(raw, 0), _MAX_COUNT)
    return 0


def read_headers(raw: object) -> dict[str, str]:
    """The headers a row holds (a JSON object of strings), or ``{UNREADABLE: why}``.

    Values that are not strings (a row written by hand) are made strings, as they always were.
    Never raises: whatever was wrong is described by kind and position, never by value, since
    headers can hold anything a user put in them.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as error:
        return _unreadable(f"are not UTF-8 text (invalid byte at offset {error.start})")
    if not isinstance(text, str):
        return _unreadable(f"are {type(raw).__name__}, not JSON text")
    try:
        headers = json.loads(text)
    except json.JSONDecodeError as error:
        return _unreadable(
            f"are not JSON ({error.msg} at line {error.lineno} column {error.colno})"
        )
    except ValueError:  # an integer of more digits than Python converts
        return _unreadable("hold a number too long to be read")
    except RecursionError:
        return _unreadable("nest too deeply to be read as JSON")
    if not isinstance(headers, dict):
        return _unreadable(f"are {_JSON_TYPES.get(type(headers), 'JSON')}, not a JSON object")
    for value in headers.values():
        if type(value) is not str:  # a row written by hand: make every value a string
            try:
                headers = {str(name): _text(value) for name, value in headers.items()}
            except (ValueError, RecursionError):
                return _unreadable("hold a value too large or too deep to be made a string")
            break
    if "\\u" in text and not _encodable(headers):
        return _unreadable("hold text that is not valid Unicode (a lone surrogate escape)")
    return headers


def _text(value: object) -> str:
    """A header value written as another JSON type, as the JSON text it was."""
    return value if type(value) is str else json.dumps(value, ensure_ascii=False)


def _encodable(headers: dict[str, str]) -> bool:
    """Whether every name and value can be written back as UTF-8 (a dead letter stores them)."""
    try:
        for name, value in headers.items():
            name.encode("utf-8")
            value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unreadable(why: str) -> dict[str, str]:
    return {UNREADABLE: f"the headers stored in this row {why}"}
