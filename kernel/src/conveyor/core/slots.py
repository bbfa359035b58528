"""Setting a frozen dataclass's fields in its own ``__init__``, for the per-message values.

A frozen dataclass's generated ``__init__`` sets each field through ``object.__setattr__``
(frozen classes refuse plain assignment). On the bus verbs' path that made a message's
``Headers`` and ``Message`` cost about a quarter of a synchronous ``send``; calling each slot's
own descriptor sets the same field for about half as much. The value is the same afterwards:
same fields, same equality and hash, still frozen. Only classes built once per message use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["slot_setters"]


def slot_setters(cls: type, *names: str) -> tuple[Callable[[Any, Any], None], ...]:
    """The ``__set__`` of each named slot of ``cls`` (a ``dataclass(slots=True)``), in order."""
    return tuple(getattr(cls, name).__set__ for name in names)
