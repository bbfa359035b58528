"""``AsyncHarness``: an ``AsyncMessaging`` with the same assertions as ``Harness``, awaited.

Settling an ``AsyncMessaging`` awaits its consumers, so every query and assertion that settles
first must be awaited too: ``await messaging.assert_published(OrderPlaced)``. What they decide
is not written twice: after the awaited part (settling, or reading how many messages each
transport holds), the answer comes from a ``Harness`` reading the same journal, clock and stores
(``_SettledView``), whose own settling has nothing left to do. So the failure output, strict
teardown, transcripts and determinism checks are the sync harness's, record for record.

Assertions about pending work never settle, as in ``Harness``; they are awaited all the same
(they ask the transports what they hold), so a test awaits every assertion without having to
remember which ones settle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    ParamSpec,
    Self,
    TypeVar,
    cast,
    overload,
)

from conveyor.core.clock import Clock
from conveyor.core.journal import Journal
from conveyor.drivers.async_messaging import AsyncMessaging
from conveyor.drivers.async_replay import AsyncDeadLetters
from conveyor.drivers.driving import RunResult
from conveyor.testing.flow import Pending, fold_copies, pending_copies
from conveyor.testing.harness import Harness
from conveyor.testing.report import Snapshot

if TYPE_CHECKING:
    from conveyor.drivers.messaging import Messaging

__all__ = ["AsyncHarness"]

P = ParamSpec("P")
R = TypeVar("R")


class _SettledView(Harness):
    """The sync harness's queries and assertions over an ``AsyncMessaging`` settled just before.

    It reads only what both kernels have under the same names (clock, journal, dead-letter
    store, handlers, endpoints, the driver's schedules); settling and counting what transports
    hold are awaited by ``AsyncHarness`` before each call, so here they only read the result.
    """

    def __init__(self, messaging: AsyncMessaging, *, advance_time: bool, width: int) -> None:
        # Only the read side above is used; the sync verbs are never called on this view.
        super().__init__(cast("Messaging", messaging), advance_time=advance_time, width=width)
        self.held: dict[str, int] | None = None

    def settle(self, *, advance_time: bool | None = None, max_steps: int | None = None) -> int:
        return 0  # AsyncHarness settled before calling

    def _pending(self) -> list[Pending]:
        return pending_copies(fold_copies(self.journal.records), self.held)

    def close(self) -> None:
        return None  # AsyncHarness.aclose closes the transports, awaited


class _Settling(Generic[P, R]):
    """A harness method that settles first (awaited), then answers from the view."""

    def __init__(self, method: Callable[Concatenate[Harness, P], R], *, settles: bool) -> None:
        self.method = method
        self.settles = settles

    @overload
    def __get__(self, harness: None, owner: type) -> Self: ...
    @overload
    def __get__(self, harness: AsyncHarness, owner: type) -> Callable[P, Awaitable[R]]: ...
    def __get__(self, harness: AsyncHarness | None, owner: type) -> Any:
        if harness is None:
            return self
        method = self.method
        settles = self.settles

        async def call(*args: P.args, **kwargs: P.kwargs) -> R:
            __tracebackhide__ = True
            if settles:
                await harness.settle()
            else:
                await harness.refresh()
            return method(harness.view, *args, **kwargs)

        call.__name__ = method.__name__
        call.__doc__ = method.__doc__
        return call


def _settling(method: Callable[Concatenate[Harness, P], R]) -> _Settling[P, R]:
    return _Settling(method, settles=True)


def _looking(method: Callable[Concatenate[Harness, P], R]) -> _Settling[P, R]:
    return _Settling(method, settles=False)


def _loose(method: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """For overloaded and generic methods, which ``P`` would narrow to their first overload."""
    return cast("Callable[..., Awaitable[Any]]", _Settling(method, settles=True))


class AsyncHarness:
    """An ``AsyncMessaging`` under test: awaitable verbs, and ``Harness``'s assertions, awaited.

    Args:
        messaging: the kernel to drive.
        advance_time: whether settling jumps the clock to the next due message by default.
        width: the widest line failure output prints.
        replay: a line printed at the end of failure output (the plugin puts the rerun command).
    """

    def __init__(
        self,
        messaging: AsyncMessaging,
        *,
        advance_time: bool = False,
        width: int = 92,
        replay: str | None = None,
    ) -> None:
        self.messaging = messaging
        self.view = _SettledView(messaging, advance_time=advance_time, width=width)
        self.view.replay = replay
        self.origin = self.view.origin

    # ------------------------------------------------------------------ what the test reads

    @property
    def clock(self) -> Clock:
        return self.messaging.clock

    @property
    def journal(self) -> Journal:
        return self.messaging.journal

    @property
    def dead_letters(self) -> AsyncDeadLetters:
        return self.messaging.dead_letters

    @property
    def advance_time(self) -> bool:
        return self.view.advance_time

    def transcript(self, *, payloads: bool = True) -> str:
        """The flow so far as stable text, one line per journal record (no settling)."""
        return self.view.transcript(payloads=payloads)

    def snapshot(self) -> Snapshot:
        """What failure output shows, with the transports' counts as of the last await."""
        return self.view.snapshot()

    def schedules(self) -> list[tuple[str, datetime]]:
        """Each scheduled endpoint with its next planned tick."""
        return self.view.schedules()

    def consumers(self) -> list[str]:
        return self.messaging.consumers()

    def endpoint_of(self, handler: object) -> str:
        """The endpoint id of a handler given as a function, bound method or endpoint id."""
        return self.view.endpoint_of(handler)

    # ------------------------------------------------------------------ AsyncMessaging's verbs

    async def send(self, command: object, **options: Any) -> Any:
        """``AsyncMessaging.send``; a handler's exception that reaches the test counts as seen."""
        __tracebackhide__ = True
        with self.raising():
            return await self.messaging.send(command, **options)

    async def publish(self, event: object, **options: Any) -> None:
        __tracebackhide__ = True
        with self.raising():
            await self.messaging.publish(event, **options)

    async def ask(self, query: object, **options: Any) -> Any:
        __tracebackhide__ = True
        with self.raising():
            return await self.messaging.ask(query, **options)

    async def run(self, name: str, **limits: Any) -> RunResult:
        __tracebackhide__ = True
        with self.raising():
            return await self.messaging.run(name, **limits)

    async def run_until_idle(self, advance_time: bool = False, max_steps: int | None = None) -> int:
        __tracebackhide__ = True
        with self.raising():
            return await self.messaging.run_until_idle(
                advance_time=advance_time, max_steps=max_steps
            )

    async def advance(self, duration: timedelta, *, max_steps: int | None = None) -> int:
        """Move the clock forward, handling everything due on the way at its due time."""
        __tracebackhide__ = True
        with self.raising():
            return await self.messaging.advance(duration, max_steps=max_steps)

    async def advance_to(self, instant: datetime, *, max_steps: int | None = None) -> int:
        __tracebackhide__ = True
        with self.raising():
            return await self.messaging.advance_to(instant, max_steps=max_steps)

    async def settle(
        self, *, advance_time: bool | None = None, max_steps: int | None = None
    ) -> int:
        """Run every consumer until nothing is runnable; see ``Harness.settle``."""
        __tracebackhide__ = True
        jump = self.view.advance_time if advance_time is None else advance_time
        steps = await self.run_until_idle(advance_time=jump, max_steps=max_steps)
        await self.refresh()
        return steps

    async def refresh(self) -> None:
        """Read how many messages each inspectable transport holds (for pending work)."""
        held: dict[str, int] = {}
        for name, runtime in self.messaging.channels.items():
            if runtime.inspectable is not None:
                held[name] = await runtime.inspectable.pending(name)
        self.view.held = held

    async def aclose(self) -> None:
        await self.messaging.aclose()

    async def __aenter__(self) -> Self:
        await self.messaging.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        m = self.messaging
        return f"AsyncHarness(handlers={len(m.handlers)}, channels={list(m.channels)})"

    @contextmanager
    def raising(self) -> Iterator[None]:
        with self.view.raising():  # the same bookkeeping as the sync harness's verbs
            yield

    # ------------------------------------------------------------------ queries (settle first)

    sent = _loose(Harness.sent)
    published = _loose(Harness.published)
    asked = _loose(Harness.asked)
    handled = _loose(Harness.handled)
    failed = _loose(Harness.failed)
    retried = _loose(Harness.retried)
    expired = _loose(Harness.expired)
    dead_lettered = _loose(Harness.dead_lettered)

    # ------------------------------------------------------------------ assertions (settle first)

    assert_sent = _loose(Harness.assert_sent)
    assert_not_sent = _settling(Harness.assert_not_sent)
    assert_published = _loose(Harness.assert_published)
    assert_not_published = _settling(Harness.assert_not_published)
    assert_asked = _loose(Harness.assert_asked)
    assert_not_asked = _settling(Harness.assert_not_asked)
    assert_handled = _settling(Harness.assert_handled)
    assert_not_handled = _settling(Harness.assert_not_handled)
    assert_failed = _loose(Harness.assert_failed)
    assert_not_failed = _settling(Harness.assert_not_failed)
    assert_retried = _loose(Harness.assert_retried)
    assert_not_retried = _settling(Harness.assert_not_retried)
    assert_expired = _settling(Harness.assert_expired)
    assert_not_expired = _settling(Harness.assert_not_expired)
    assert_dead_lettered = _loose(Harness.assert_dead_lettered)
    assert_not_dead_lettered = _settling(Harness.assert_not_dead_lettered)
    assert_in_order = _settling(Harness.assert_in_order)
    assert_caused_by = _settling(Harness.assert_caused_by)

    # ------------------------------------------------------------------ pending work (no settling)

    pending = _looking(Harness.pending)
    assert_pending = _looking(Harness.assert_pending)
    assert_nothing_pending = _looking(Harness.assert_nothing_pending)
