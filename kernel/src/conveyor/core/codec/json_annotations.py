"""Reading the type hints that the JSON codec's encoding and decoding plans are built from.

Both plans start from the same question: what does this annotation say the value is? Seen
through ``NewType`` and ``Annotated``, a hint is either a class or a generic form with an origin
and arguments; a bare ``list`` or ``Mapping`` means the same as ``list[Any]`` or
``Mapping[Any, Any]``. Keeping that reading (and the table of collection types the codec
accepts) in one place means an annotation the encoder takes is also one the decoder takes.
"""

from __future__ import annotations

import dataclasses
import typing
from collections import abc
from collections.abc import Callable
from types import NoneType
from typing import Any
from weakref import WeakKeyDictionary

from conveyor.core.codec.json_mismatch import class_path
from conveyor.core.errors import SerializationError

__all__ = [
    "JSON_SCALARS",
    "LISTS",
    "SETS",
    "DICTS",
    "shape",
    "unwrap",
    "identity",
    "AnnotatedFields",
]

#: Types JSON writes and reads as they are.
JSON_SCALARS = (str, int, float, bool, NoneType)


def identity(value: Any) -> Any:
    """The value itself: for values JSON already represents."""
    return value


#: Sequence types, with what builds each from a decoded list.
LISTS: dict[Any, Callable[[list[Any]], Any]] = {
    list: identity,
    tuple: tuple,
    abc.Sequence: identity,
    abc.MutableSequence: identity,
}
#: Set types, with the type each decodes to.
SETS: dict[Any, type] = {set: set, abc.MutableSet: set, frozenset: frozenset, abc.Set: frozenset}
#: Mapping types; each decodes to a ``dict``.
DICTS = {dict, abc.Mapping, abc.MutableMapping}
_BARE: dict[Any, tuple[Any, ...]] = {
    list: (Any,),
    tuple: (Any, ...),
    set: (Any,),
    frozenset: (Any,),
    dict: (Any, Any),
    abc.Sequence: (Any,),
    abc.MutableSequence: (Any,),
    abc.Set: (Any,),
    abc.MutableSet: (Any,),
    abc.Mapping: (Any, Any),
    abc.MutableMapping: (Any, Any),
}


def shape(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    """(origin, args) of an annotation, treating a bare ``list`` as ``list[Any]`` and so on."""
    if hint in _BARE:
        return hint, _BARE[hint]
    origin = typing.get_origin(hint)
    if origin is None:
        return None, ()
    args = typing.get_args(hint)
    if origin in _BARE and not args:
        args = _BARE[origin]
    return origin, args


def unwrap(hint: Any) -> Any:
    """The type under any ``NewType`` and ``Annotated`` wrappers."""
    while True:
        if isinstance(hint, typing.NewType):
            hint = hint.__supertype__
        elif typing.get_origin(hint) is typing.Annotated:
            hint = typing.get_args(hint)[0]
        else:
            return hint


#: Each dataclass's fields with their resolved annotations, shared by every codec in the
#: process and dropped with the class. Resolving annotations (``typing.get_type_hints``, which
#: compiles each string annotation) is the dearest step of a plan, a class's annotations do not
#: change once it is defined, and a test suite builds a codec per test.
_RESOLVED: WeakKeyDictionary[type, tuple[tuple[dataclasses.Field[Any], Any], ...]] = (
    WeakKeyDictionary()
)


class AnnotatedFields:
    """Each dataclass's fields with their resolved annotations, read once per process.

    The encoding and decoding plans of one codec share an instance, so a class's annotations are
    resolved once however it is used; the resolved annotations themselves are kept per class
    for every codec (plans stay per codec).
    """

    def of(self, cls: type) -> tuple[tuple[dataclasses.Field[Any], Any], ...]:
        """Every field of the dataclass ``cls`` with its annotation (``Any`` if it has none)."""
        resolved = _RESOLVED.get(cls)
        if resolved is None:
            try:
                hints = typing.get_type_hints(cls)
            except (NameError, TypeError) as exc:
                raise SerializationError(
                    f"Cannot read the annotations of {class_path(cls)}: {exc}. Annotations are "
                    f"resolved in the class's module, so define the classes they name at module "
                    f"level (not inside a function)."
                ) from exc
            resolved = tuple((f, hints.get(f.name, Any)) for f in dataclasses.fields(cls))
            _RESOLVED[cls] = resolved
        return resolved
