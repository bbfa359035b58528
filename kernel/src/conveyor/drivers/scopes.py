"""Per-call state that travels with the call: the innermost handling scope, in a ``ContextVar``.

Each ``Messaging`` owns one :class:`Scopes`, whose ``ContextVar`` holds the innermost
:class:`~conveyor.core.collector.Scope` of the current thread or asyncio task (each new thread
starts with none; each task starts with a copy of its creator's). So one ``Messaging`` can be
used from many threads and tasks at once without one call seeing another's collector, causation
or failure records, and two ``Messaging`` objects in one process never share scopes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from conveyor.core.collector import AttemptState, Scope
from conveyor.core.message import Message

__all__ = ["Scopes"]


class Scopes:
    """The handling scopes of one ``Messaging``, per thread and per task."""

    __slots__ = ("_current", "var")

    def __init__(self) -> None:
        #: The ``ContextVar`` itself, for the per-message path of the bus verbs (``Dispatch``):
        #: reading and setting it there directly saves a method call per step, which is a
        #: measurable share of a synchronous ``send`` (``bench_buses`` W1).
        self.var: ContextVar[Scope | None] = ContextVar("conveyor_scope", default=None)
        self._current = self.var

    def current(self) -> Scope | None:
        return self._current.get()

    def handled_message(self) -> Message | None:
        scope = self._current.get()
        return scope.handled_message() if scope is not None else None

    def enter(self, scope: Scope) -> Token[Scope | None]:
        """Make ``scope`` the innermost one; pass the token to :meth:`leave` in a ``finally``.

        The explicit pair is what the bus verbs use: they run once per message, and a
        generator-based context manager would cost them more than the rest of the scope work.
        """
        return self._current.set(scope)

    def leave(self, token: Token[Scope | None]) -> None:
        """Restore the scope that was innermost before the matching :meth:`enter`."""
        self._current.reset(token)

    @contextmanager
    def opened(
        self,
        message: Message | None,
        endpoint_id: str | None,
        channel: str | None,
        *,
        collecting: bool = True,
        attempt: AttemptState | None = None,
    ) -> Iterator[Scope]:
        """Open a scope inside the current one for the length of the block."""
        scope, token = self.inner(
            message, endpoint_id, channel, collecting=collecting, attempt=attempt
        )
        try:
            yield scope
        finally:
            self._current.reset(token)

    def inner(
        self,
        message: Message | None,
        endpoint_id: str | None,
        channel: str | None,
        *,
        collecting: bool = True,
        attempt: AttemptState | None = None,
    ) -> tuple[Scope, Token[Scope | None]]:
        """Enter a scope inside the current one; pass the token to :meth:`leave` in a ``finally``.

        :meth:`opened` without the generator, for the asyncio driver's once-per-message paths.
        """
        parent = self._current.get()
        scope = Scope(
            message, endpoint_id, channel, collecting=collecting, parent=parent, attempt=attempt
        )
        return scope, self._current.set(scope)
