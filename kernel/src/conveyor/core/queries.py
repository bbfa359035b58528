"""``Query[T]``: a query that names the type of its answer, so ``ask`` is typed.

At run time ``ask`` returns whatever the query's one handler returns, but a type checker cannot
follow a query object to the handler registered for its class, so ``ask`` used to be ``Any``
and a user's ``mypy --strict`` stopped checking at every answer. A query class that derives
from ``Query[int]`` carries its answer's type in its own type, and ``messaging.ask(CountOrders())``
is an ``int`` to mypy. Deriving is optional: any other object can still be asked, and its answer
is ``Any``.

It is only a marker for type checkers: it adds no field, no slot and no behaviour, so a
dataclass, a pydantic model or a msgspec struct can derive from it and encodes as before.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["Query", "Answer"]

#: The type of a query's answer.
Answer = TypeVar("Answer")


class Query(Generic[Answer]):
    """Base class of a query whose handler returns an ``Answer``.

    Example::

        @dataclass(frozen=True)
        class CountOrders(Query[int]):
            customer: str

        count = messaging.ask(CountOrders("c-1"))   # an int, to mypy too
    """

    __slots__ = ()
