"""Saying where a JSON body and a class disagree, in words a person can act on.

Encoding and decoding plans both find values that do not fit their annotations. They raise a
:class:`Mismatch` from deep inside nested plans; each enclosing field, item or key adds its step on
the way out, so the codec can report the whole path (``PlaceOrder.lines[2].sku expected a string,
found an integer``) without any plan tracking where it is on the happy path. This module holds
that failure and the wording shared by every such message, so all of them name types and
annotations the same way.

A message never quotes a payload value: errors are logged, and a body may hold personal data or
secrets. It names the field path, what was expected and the *kind* of value found. Object keys
are values too, so a step into a dictionary shows as ``[<key>]``.
"""

from __future__ import annotations

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
    "KEY_STEP",
]

#: How a path shows a step into a dictionary: the key is a value, so it is not quoted.
KEY_STEP = "[<key>]"

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
    """The kind of a parsed JSON value, as a person would name it; never the value itself."""
    if data is Missing:
        return "nothing (the field is missing)"
    if data is None:
        return "null"
    if type(data) is bool:
        return "a boolean"
    if type(data) is int:
        return "an integer"
    if type(data) is float:
        return "a number"
    if type(data) is str:
        return "a string"
    if type(data) is list:
        return f"an array of {len(data)} item{'' if len(data) == 1 else 's'}"
    if type(data) is dict:
        return f"an object with {len(data)} key{'' if len(data) == 1 else 's'}" if data else "{}"
    return describe_python(data)


def describe_python(value: Any) -> str:
    """A Python value by its type alone."""
    return f"a {class_path(type(value))}"


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
