"""Saying where a JSON body and a class disagree, in words a person can act on.

Encoding and decoding plans both find values that do not fit their annotations. They raise a
:class:`Mismatch` from deep inside nested plans; each enclosing field, item or key adds its step on
the way out, so the codec can report the whole path (``PlaceOrder.lines[2].sku expected a string,
found an integer 7``) without any plan tracking where it is on the happy path. This module holds
that failure and the wording shared by every such message, so all of them name values, types and
annotations the same way.
"""

from __future__ import annotations

import json
from typing import Any

from conveyor.core.errors import SerializationError

__all__ = [
    "Mismatch",
    "Missing",
    "expected_but_found",
    "describe",
    "describe_python",
    "class_path",
    "hint_name",
    "unsupported",
    "SUPPORTED",
]

#: What the JSON codec can encode and decode, as its error messages list it.
SUPPORTED = (
    "dataclasses, Enum, datetime, date, time, timedelta, UUID, Decimal, pydantic v2 models, "
    "msgspec Structs, and plain JSON values (dict, list, str, int, float, bool, None)"
)


class Mismatch(Exception):
    """Internal: a value that does not fit, with the path to it built up while unwinding."""

    def __init__(self, reason: str, cause: BaseException | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause
        self.path: list[str] = []

    def at(self, step: str) -> Mismatch:
        self.path.append(step)
        return self

    def where(self, root: str) -> str:
        return root + "".join(reversed(self.path))


class Missing:
    """Internal: stands for a required field that is absent from the body."""


def expected_but_found(expected: str, found: Any) -> Mismatch:
    """The failure of a value that is not the ``expected`` kind of JSON value."""
    return Mismatch(f"expected {expected}, found {describe(found)}")


def describe(data: Any) -> str:
    """A JSON value as a person would name it, shortened."""
    if data is Missing:
        return "nothing (the field is missing)"
    if data is None:
        return "null"
    if type(data) is bool:
        return f"a boolean {json.dumps(data)}"
    if type(data) is int:
        return f"an integer {data}"
    if type(data) is float:
        return f"a number {data!r}"
    if type(data) is str:
        return f"a string {_short(repr(data))}"
    if type(data) is list:
        return f"an array of {len(data)} items"
    if type(data) is dict:
        return f"an object with keys {_short(', '.join(map(repr, data)))}" if data else "{}"
    return describe_python(data)


def describe_python(value: Any) -> str:
    """A Python value by its type and a shortened repr."""
    return f"a {class_path(type(value))} {_short(repr(value))}"


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def class_path(cls: type) -> str:
    """``module.QualName``: which class, unambiguously."""
    return f"{cls.__module__}.{cls.__qualname__}"


def hint_name(hint: Any) -> str:
    """An annotation as it was written, without the ``typing.`` prefixes."""
    return hint.__qualname__ if isinstance(hint, type) else repr(hint).replace("typing.", "")


def unsupported(hint: Any, where: str) -> SerializationError:
    """The error for a field whose annotation no plan can be built for."""
    return SerializationError(
        f"Cannot encode or decode {where}: its annotation {hint_name(hint)} is not supported. "
        f"The JSON codec handles {SUPPORTED}, their Optional/Union/Literal/NewType forms, and "
        f"list, tuple, set, frozenset, dict, Sequence and Mapping of them. Make the field's type "
        f"a dataclass, or annotate it typing.Any to carry the raw JSON value."
    )
