"""``Setup``: how to build the ``Messaging`` of one test, as a value.

The pytest plugin reads a ``Setup`` from ini options, lets ``conftest.py`` replace it (the
``conveyor_setup`` fixture) and applies the ``conveyor`` marker's options on top; Hypothesis
state machines and plain scripts use it directly. Building is cheap and repeatable: a fresh
``VirtualClock`` at a fixed start, ``SequentialIds`` and a fixed seed, so the same test prints
the same failure output every time.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from conveyor.core.clock import VirtualClock, ensure_aware
from conveyor.core.errors import ConfigurationError
from conveyor.core.ids import IdGenerator, SequentialIds
from conveyor.drivers.async_messaging import AsyncMessaging
from conveyor.drivers.messaging import Messaging
from conveyor.testing.async_harness import AsyncHarness
from conveyor.testing.harness import Harness
from conveyor.transports.channels import Channel

__all__ = ["Setup", "Strictness", "DEFAULT_START"]

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
"""Where a test's virtual clock starts unless told otherwise."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_STRICT_SWITCHES = {
    "allow_failures": "failures",
    "allow_dead_letters": "dead_letters",
    "allow_pending": "pending",
}
_K = TypeVar("_K", Messaging, AsyncMessaging)
_OWN = ("clock", "ids", "seed", "mode", "handlers", "channels")


@dataclass(frozen=True, slots=True)
class Strictness:
    """Which teardown checks run (all by default; each one switches off on its own).

    Attributes:
        failures: fail a test that leaves failed attempts or expiries it did not assert.
        dead_letters: fail a test that leaves dead letters it did not assert.
        pending: fail a test that leaves messages waiting that it neither settled nor inspected.
    """

    failures: bool = True
    dead_letters: bool = True
    pending: bool = True

    @property
    def any(self) -> bool:
        return self.failures or self.dead_letters or self.pending


@dataclass(frozen=True, slots=True)
class Setup:
    """Everything needed to build one test's ``Messaging`` and its harness.

    Attributes:
        handlers: handler functions and objects. A class is instantiated for each test, so
            ``handlers=[Orders]`` gives every test a fresh ``Orders()``.
        channels: channel definitions or names.
        mode: "queued" (asynchronous handlers wait for settling or a consumer run) or
            "inline" (they run at send time, still through the codec).
        advance_time: whether settling before assertions jumps the clock to due retries and
            delayed messages. Off by default: time moves only when a test says so.
        seed: seeds retry jitter.
        start: the instant the virtual clock starts at.
        strict: the strict teardown checks.
        options: other ``Messaging`` keyword arguments (``retry=``, ``types=``, ...).
        build: a factory to use instead of ``Messaging(...)``, for apps that build their own;
            it is called with ``clock``, ``ids``, ``seed``, ``mode`` and ``options``.
        build_async: the same for ``AsyncMessaging(...)`` (the ``async_messaging`` fixture).
        width: the widest line of failure output.
    """

    handlers: Sequence[object] = ()
    channels: Sequence[Channel | str] = ()
    mode: Literal["queued", "inline"] = "queued"
    advance_time: bool = False
    seed: int = 0
    start: datetime = DEFAULT_START
    strict: Strictness = field(default_factory=Strictness)
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    build: Callable[..., Messaging] | None = None
    build_async: Callable[..., AsyncMessaging] | None = None
    width: int = 92

    def replace(self, **changes: Any) -> Setup:
        """A copy with changes; accepts the marker's vocabulary.

        Besides the attributes: ``strict=False`` (or True) switches every teardown check,
        ``allow_failures=``, ``allow_dead_letters=`` and ``allow_pending=`` switch one each,
        ``start=`` takes an ISO string too, and any other ``Messaging`` keyword goes into
        ``options``.
        """
        own: dict[str, Any] = {}
        options = dict(self.options)
        strict = self.strict
        for name, value in changes.items():
            if name == "strict" and isinstance(value, bool):
                strict = Strictness(value, value, value)
            elif name in _STRICT_SWITCHES:
                strict = replace(strict, **{_STRICT_SWITCHES[name]: not value})
            elif name == "options":
                options.update(value)
            elif name == "start":
                own[name] = _instant(value)
            elif name in _FIELDS:
                own[name] = tuple(value) if name in ("handlers", "channels") else value
            elif name in _messaging_keywords():
                options[name] = value
            else:
                known = sorted({*_FIELDS, *_STRICT_SWITCHES, *_messaging_keywords()})
                raise TypeError(
                    f"unknown conveyor option {name!r}; known options: {', '.join(known)}."
                )
        if "strict" not in own:
            own["strict"] = strict
        return replace(self, **own, options=MappingProxyType(options))

    def messaging(self, *, clock: VirtualClock, ids: IdGenerator) -> Messaging:
        """A new ``Messaging`` on ``clock`` and ``ids``."""
        return self._kernel(Messaging, self.build, clock, ids)

    def async_messaging(self, *, clock: VirtualClock, ids: IdGenerator) -> AsyncMessaging:
        """A new ``AsyncMessaging`` on ``clock`` and ``ids``, from the same options."""
        return self._kernel(AsyncMessaging, self.build_async, clock, ids)

    def _kernel(
        self,
        kernel: Callable[..., _K],
        build: Callable[..., _K] | None,
        clock: VirtualClock,
        ids: IdGenerator,
    ) -> _K:
        """Either driver, built the same way: by ``build`` when given, else from the options."""
        if build is not None:
            keywords = {"clock": clock, "ids": ids, "seed": self.seed, "mode": self.mode}
            keywords.update(self.options)
            _check_build(build, keywords)
            return build(**keywords)
        handlers = [_instance(h) if isinstance(h, type) else h for h in self.handlers]
        options: dict[str, Any] = {"log_failures": False, **self.options}
        return kernel(
            handlers, self.channels, clock=clock, ids=ids, seed=self.seed, mode=self.mode,
            **options,
        )  # fmt: skip

    def async_harness(
        self, *, clock: VirtualClock | None = None, ids: IdGenerator | None = None
    ) -> AsyncHarness:
        """A new ``AsyncHarness``: a fresh clock at ``start`` and sequential ids unless given."""
        messaging = self.async_messaging(
            clock=clock if clock is not None else VirtualClock(self.start),
            ids=ids if ids is not None else SequentialIds(),
        )
        return AsyncHarness(messaging, advance_time=self.advance_time, width=self.width)

    def harness(
        self, *, clock: VirtualClock | None = None, ids: IdGenerator | None = None
    ) -> Harness:
        """A new harness: a fresh clock at ``start`` and sequential ids unless given."""
        messaging = self.messaging(
            clock=clock if clock is not None else VirtualClock(self.start),
            ids=ids if ids is not None else SequentialIds(),
        )
        return Harness(messaging, advance_time=self.advance_time, width=self.width)


_FIELDS = frozenset(f.name for f in fields(Setup))


def _messaging_keywords() -> frozenset[str]:
    parameters = inspect.signature(Messaging.__init__).parameters
    return frozenset(name for name in parameters if name not in ("self", *_OWN))


def _instant(value: object) -> datetime:
    if isinstance(value, datetime):
        return ensure_aware(value, what="conveyor start")
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return ensure_aware(parsed, what="conveyor start")
    raise TypeError(f"conveyor start= takes a datetime or an ISO 8601 string, got {value!r}")


def _instance(cls: type) -> object:
    """A fresh instance of a handler class, or an error naming what its constructor needs."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):  # a builtin or C class: let the call say what is wrong
        return cls()
    needed = [
        p.name
        for p in parameters
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if needed:
        name = cls.__qualname__
        arguments = ", ".join(f"{n}=..." for n in needed)
        raise ConfigurationError(
            f"handlers=[{name}] lists a class, which is instantiated for each test as {name}(), "
            f"but its constructor needs {', '.join(needed)}. Pass an instance instead: "
            f"handlers=[{name}({arguments})], or build it in a conveyor_setup fixture."
        )
    return cls()


def _check_build(build: Callable[..., object], keywords: Mapping[str, object]) -> None:
    """``build=`` is called with keywords; say which it lacks before the call fails obscurely."""
    try:
        parameters = inspect.signature(build).parameters.values()
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return
    accepted = {p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    missing = [name for name in keywords if name not in accepted]
    if missing:
        name = getattr(build, "__qualname__", repr(build))
        raise ConfigurationError(
            f"build={name} is called with the keyword arguments {', '.join(keywords)}, but it "
            f"does not accept {', '.join(missing)}. Add them (def {name.split('.')[-1]}(*, clock, "
            f"ids, seed, mode, **options) -> Messaging), or take **_ for those it ignores."
        )
