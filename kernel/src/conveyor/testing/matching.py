"""Matching messages: by type, by equal value, by a subset of fields, by name or by predicate.

Every assertion and query of ``conveyor.testing`` takes one *message matcher*. A matcher also
knows how to describe itself in a headline and how far a near miss is from it, so a failed
assertion can list the nearest candidates with a field-by-field diff (Axon's reporter) instead
of saying "expected True" (MassTransit's).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "ANY",
    "Matcher",
    "MessageMatcher",
    "Difference",
    "where",
    "as_matcher",
    "field_differences",
    "short_repr",
]


class _Any:
    """Equal to everything: a placeholder for a field whose value does not matter."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()
"""A field value that matches anything: ``where(OrderPlaced, order_id=ANY)``."""


@dataclass(frozen=True, slots=True)
class Difference:
    """How a candidate differs from what was expected: ``order_id: expected 'o-2', got 'o-1'``."""

    path: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.path}: expected {self.expected}, got {self.actual}"


@runtime_checkable
class Matcher(Protocol):
    """Decides whether a payload matches, and explains near misses."""

    def matches(self, payload: object, type_name: str) -> bool:
        """Whether the payload (whose journal type name is ``type_name``) matches."""
        ...

    def describe(self) -> str:
        """A short text for the headline of a failed assertion: ``OrderPlaced(order_id='o-1')``."""
        ...

    def differences(self, payload: object, type_name: str) -> list[Difference]:
        """Why a payload does not match, field by field; empty when it matches."""
        ...


MessageMatcher = Matcher | type | str | Callable[[Any], object] | object | None
"""What assertions accept as ``message``: see :func:`as_matcher`."""


def as_matcher(message: MessageMatcher) -> Matcher:
    """Turn what a test wrote into a :class:`Matcher`.

    * ``None``: every message.
    * a class: instances of it (and of its subclasses).
    * a :class:`Matcher`, such as :func:`where`: itself.
    * a string: messages whose type name or routing key is that string.
    * a function or lambda: messages for which it returns a true value.
    * anything else: messages equal to it.
    """
    if message is None:
        return _Everything()
    if isinstance(message, type):
        return _OfType(message)
    if isinstance(message, Matcher):
        return message
    if isinstance(message, str):
        return _Named(message)
    if callable(message):
        return _Predicate(message)
    return _Equal(message)


def where(message_type: type | None = None, /, **fields: object) -> Matcher:
    """Match by a subset of fields, optionally of one type.

    Field values compare by equality; :data:`ANY` matches anything, and a callable is called
    with the field's value (``total=lambda t: t > 100``)::

        messaging.assert_published(where(OrderPlaced, order_id="o-1"))
    """
    return _Where(message_type, fields)


# ---------------------------------------------------------------------- matchers


@dataclass(frozen=True, slots=True)
class _Everything:
    def matches(self, payload: object, type_name: str) -> bool:
        return True

    def describe(self) -> str:
        return "any message"

    def differences(self, payload: object, type_name: str) -> list[Difference]:
        return []


@dataclass(frozen=True, slots=True)
class _OfType:
    kind: type

    def matches(self, payload: object, type_name: str) -> bool:
        return isinstance(payload, self.kind)

    def describe(self) -> str:
        return self.kind.__qualname__

    def differences(self, payload: object, type_name: str) -> list[Difference]:
        if self.matches(payload, type_name):
            return []
        return [Difference("type", self.kind.__qualname__, type_name)]


@dataclass(frozen=True, slots=True)
class _Named:
    name: str

    def matches(self, payload: object, type_name: str) -> bool:
        return type_name == self.name

    def describe(self) -> str:
        return self.name

    def differences(self, payload: object, type_name: str) -> list[Difference]:
        return [] if type_name == self.name else [Difference("type", self.name, type_name)]


@dataclass(frozen=True, slots=True)
class _Predicate:
    test: Callable[[Any], object]

    def matches(self, payload: object, type_name: str) -> bool:
        try:
            return bool(self.test(payload))
        except (AttributeError, TypeError, KeyError):
            return False  # a predicate written for another message type

    def describe(self) -> str:
        name = getattr(self.test, "__name__", repr(self.test))
        return f"a message for which {name} is true"

    def differences(self, payload: object, type_name: str) -> list[Difference]:
        if self.matches(payload, type_name):
            return []
        name = getattr(self.test, "__name__", "the predicate")
        return [Difference(name, "true", "false")]


@dataclass(frozen=True, slots=True)
class _Equal:
    value: object

    def matches(self, payload: object, type_name: str) -> bool:
        return bool(payload == self.value)

    def describe(self) -> str:
        return short_repr(self.value)

    def differences(self, payload: object, type_name: str) -> list[Difference]:
        if self.matches(payload, type_name):
            return []
        return field_differences(self.value, payload)


@dataclass(frozen=True, slots=True)
class _Where:
    kind: type | None
    fields: Mapping[str, object] = field(default_factory=dict)

    def matches(self, payload: object, type_name: str) -> bool:
        if self.kind is not None and not isinstance(payload, self.kind):
            return False
        return all(_field_matches(payload, name, want) for name, want in self.fields.items())

    def describe(self) -> str:
        shown = ", ".join(f"{name}={_show(want)}" for name, want in self.fields.items())
        if self.kind is None:
            return f"a message with {shown}"
        return f"{self.kind.__qualname__}({shown})"

    def differences(self, payload: object, type_name: str) -> list[Difference]:
        if self.kind is not None and not isinstance(payload, self.kind):
            return [Difference("type", self.kind.__qualname__, type_name)]
        found = []
        for name, want in self.fields.items():
            if not _field_matches(payload, name, want):
                got = _read(payload, name)
                found.append(
                    Difference(
                        name, _show(want), "no such field" if got is _MISSING else short_repr(got)
                    )
                )
        return found


_MISSING = object()


def _read(payload: object, name: str) -> object:
    if isinstance(payload, Mapping):
        return payload.get(name, _MISSING)
    return getattr(payload, name, _MISSING)


def _field_matches(payload: object, name: str, want: object) -> bool:
    got = _read(payload, name)
    if got is _MISSING:
        return False
    if callable(want) and not isinstance(want, type) and want is not ANY:
        try:
            return bool(want(got))
        except (AttributeError, TypeError, ValueError):
            return False
    return bool(got == want)


def _show(want: object) -> str:
    if callable(want) and not isinstance(want, type) and want is not ANY:
        return getattr(want, "__name__", repr(want))
    return short_repr(want)


# ---------------------------------------------------------------------- diffs


def field_differences(
    expected: object, actual: object, path: str = "", depth: int = 0
) -> list[Difference]:
    """Field-by-field differences between two values, dotted paths for nested ones.

    Values of different types differ by type; dataclasses, named tuples, mappings and plain
    objects are compared field by field (three levels deep); anything else by ``repr``.
    """
    if expected == actual:
        return []
    label = path or "value"
    if type(expected) is not type(actual):
        if not path:
            return [Difference("type", type(expected).__qualname__, type(actual).__qualname__)]
        return [Difference(label, short_repr(expected), short_repr(actual))]
    left, right = _fields_of(expected), _fields_of(actual)
    if left is None or right is None or depth >= 3:
        return [Difference(label, short_repr(expected), short_repr(actual))]
    found: list[Difference] = []
    for name in [*left, *(n for n in right if n not in left)]:
        sub = f"{path}.{name}" if path else name
        if name not in right:
            found.append(Difference(sub, short_repr(left[name]), "no such field"))
        elif name not in left:
            found.append(Difference(sub, "no such field", short_repr(right[name])))
        else:
            found.extend(field_differences(left[name], right[name], sub, depth + 1))
    return found or [Difference(label, short_repr(expected), short_repr(actual))]


def _fields_of(value: object) -> dict[str, object] | None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return dict(value._asdict())
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict) and attributes:
        return {k: v for k, v in attributes.items() if not k.startswith("_")}
    return None


_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def short_repr(value: object, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters, without memory addresses (stable output)."""
    text = _ADDRESS.sub("", repr(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"
