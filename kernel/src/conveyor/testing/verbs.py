"""A ``Messaging`` under test, as the test sees it: its verbs, its attributes, its handlers.

To a test the harness *is* its ``Messaging``: ``send``, ``publish``, ``ask``, ``run``,
``advance`` and every other attribute reach the wrapped kernel unchanged. This bottom layer of
the harness adds only what must happen on the way through: a handler's exception that reaches
the test through a verb has been seen by the test, so strict teardown does not report it again;
and handlers are named the way tests name them (the function, the bound method or the endpoint
id). Settling, queries and assertions build on it (``settling``, ``querying``, ``harness``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Self, overload

from conveyor.core.clock import Clock
from conveyor.core.handlers import handler_mark
from conveyor.core.journal import Journal
from conveyor.core.queries import Answer, Query
from conveyor.drivers.driving import RunResult
from conveyor.drivers.messaging import Messaging
from conveyor.drivers.replay import DeadLetters
from conveyor.testing.acknowledgements import Acknowledgements

__all__ = ["HarnessVerbs"]


class HarnessVerbs:
    """A ``Messaging`` under test, passed through (see ``Harness`` for the full harness).

    Args:
        messaging: the kernel to drive; every attribute it has is reachable through the harness.
        advance_time: whether settling jumps the clock to the next due message (retries,
            delayed messages) by default; settling never moves the clock unless asked.
        width: the widest line failure output prints.
        replay: a line printed at the end of failure output (the plugin puts the rerun command).
    """

    def __init__(
        self,
        messaging: Messaging,
        *,
        advance_time: bool = False,
        width: int = 92,
        replay: str | None = None,
    ) -> None:
        self.messaging = messaging
        self.advance_time = advance_time
        self.width = width
        self.replay = replay
        self.origin: datetime = messaging.clock.now()
        self._acknowledged = Acknowledgements()

    # ------------------------------------------------------------------ Messaging's verbs

    @property
    def clock(self) -> Clock:
        return self.messaging.clock

    @property
    def journal(self) -> Journal:
        return self.messaging.journal

    @property
    def dead_letters(self) -> DeadLetters:
        return self.messaging.dead_letters

    def send(self, command: object, **options: Any) -> Any:
        """``Messaging.send``; a handler's exception that reaches the test counts as seen."""
        __tracebackhide__ = True
        with self.raising():
            return self.messaging.send(command, **options)

    def publish(self, event: object, **options: Any) -> None:
        __tracebackhide__ = True
        with self.raising():
            self.messaging.publish(event, **options)

    @overload
    def ask(self, query: Query[Answer], **options: Any) -> Answer: ...

    @overload
    def ask(self, query: object, **options: Any) -> Any: ...

    def ask(self, query: object, **options: Any) -> Any:
        """``Messaging.ask``: typed for a ``Query[T]``, like it."""
        __tracebackhide__ = True
        with self.raising():
            return self.messaging.ask(query, **options)

    def run(self, name: str, **limits: Any) -> RunResult:
        __tracebackhide__ = True
        with self.raising():
            return self.messaging.run(name, **limits)

    def run_until_idle(self, advance_time: bool = False, max_steps: int | None = None) -> int:
        __tracebackhide__ = True
        with self.raising():
            return self.messaging.run_until_idle(advance_time=advance_time, max_steps=max_steps)

    def advance(self, duration: timedelta, *, max_steps: int | None = None) -> int:
        __tracebackhide__ = True
        with self.raising():
            return self.messaging.advance(duration, max_steps=max_steps)

    def advance_to(self, instant: datetime, *, max_steps: int | None = None) -> int:
        __tracebackhide__ = True
        with self.raising():
            return self.messaging.advance_to(instant, max_steps=max_steps)

    def consumers(self) -> list[str]:
        return self.messaging.consumers()

    def close(self) -> None:
        self.messaging.close()

    def __getattr__(self, name: str) -> Any:
        # Everything else a Messaging has (channels, handlers, command_bus(), ...).
        if name == "messaging":
            raise AttributeError(name)
        return getattr(self.messaging, name)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        m = self.messaging
        return f"{type(self).__name__}(handlers={len(m.handlers)}, channels={list(m.channels)})"

    @contextmanager
    def raising(self) -> Iterator[None]:
        """Within it, an exception that reaches the test has been seen: strict teardown skips it."""
        try:
            yield
        except Exception as error:
            self._acknowledged.note_raised(error, self.journal.records)
            raise

    # ------------------------------------------------------------------ handlers

    def endpoint_of(self, handler: object) -> str:
        """The endpoint id of a handler given as a function, bound method or endpoint id."""
        endpoints = self.messaging.endpoints
        if isinstance(handler, str):
            if handler in endpoints:
                return handler
        else:
            target = getattr(handler, "__func__", handler)
            for spec in self.messaging.handlers:
                if (
                    spec.function == handler
                    or getattr(spec.function, "__func__", spec.function) is target
                ):
                    return spec.endpoint_id
        known = ", ".join(sorted(endpoints)) or "none"
        raise ValueError(
            f"{handler!r} is not a handler of this Messaging (endpoint ids: {known}); pass the "
            f"handler function, the bound method, or its endpoint id."
        )

    def is_handler(self, candidate: object) -> bool:
        """Whether ``candidate`` names one of this Messaging's handlers."""
        if isinstance(candidate, str):
            return candidate in self.messaging.endpoints
        if handler_mark(getattr(candidate, "__func__", candidate)) is None:
            return False
        try:
            self.endpoint_of(candidate)
        except ValueError:
            return False
        return True
