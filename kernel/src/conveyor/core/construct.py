"""Building frozen values on the hot path without their frozen ``__init__``.

A frozen dataclass's generated ``__init__`` sets each field through ``object.__setattr__``
(frozen classes forbid plain assignment), which makes a ``Headers`` about twice as costly to
build as the rest of a send's bookkeeping. The slots' own descriptors set the same fields for a
fraction of the cost. The object is the same afterwards: same fields, same equality, still
immutable. Only the kernel's per-message values (headers, message, envelope) use this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["fast_constructor"]

T = TypeVar("T")


def fast_constructor(cls: type[T], names: tuple[str, ...]) -> Callable[..., T]:
    """A function taking the fields ``names`` positionally and returning a ``cls``.

    The function is generated (as ``dataclasses`` generates ``__init__``) so that each field is
    one direct descriptor call, with no loop.
    """
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    for index, name in enumerate(names):
        namespace[f"_set{index}"] = getattr(cls, name).__set__
    arguments = ", ".join(f"v{index}" for index in range(len(names)))
    body = "".join(f"    _set{index}(obj, v{index})\n" for index in range(len(names)))
    source = f"def make({arguments}):\n    obj = _new(_cls)\n{body}    return obj\n"
    exec(source, namespace)  # the source is built above from field positions only
    make: Callable[..., T] = namespace["make"]
    make.__qualname__ = f"fast_constructor({cls.__qualname__})"
    return make
