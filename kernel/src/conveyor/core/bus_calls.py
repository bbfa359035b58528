"""Calls on the buses as values: what bus interceptors see, and the retry decision of a bus.

Handler interceptors (``conveyor.core.interceptors``) run around one handler, after routing. Some
concerns belong before routing, around the whole ``send``, ``publish`` or ``ask`` (Ecotone's
gateway interceptors): stamping a header on everything an application sends, auditing, refusing
a command early. A bus interceptor takes the :class:`BusCall` and ``proceed``; it may proceed with
a changed call (``call.with_headers({...})``) or not at all.

A bus may also retry a synchronous call at once when it raises (the optimistic-locking case: a
stale version, try again with fresh state), by a :class:`~conveyor.core.retry.RetryPolicy`'s
``instant`` count and exception filter; :func:`retries_at_once` is that decision.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

from conveyor.core.errors import ConfigurationError
from conveyor.core.retry import RetryPolicy

__all__ = ["BusCall", "BusInterceptor", "Verb", "compose", "retries_at_once", "check_bus_retry"]

Verb = Literal["send", "publish", "ask"]

_NONE: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class BusCall:
    """One call of a bus verb, before routing.

    Attributes:
        verb: "send", "publish" or "ask".
        message: the command, event or query.
        options: the keyword options of the call (``headers``, ``delay``, ``message_id``, ...).
    """

    verb: Verb
    message: object
    options: Mapping[str, Any] = field(default_factory=lambda: _NONE)

    @property
    def headers(self) -> Mapping[str, str]:
        headers = self.options.get("headers")
        return headers if headers is not None else _NONE

    def with_headers(self, headers: Mapping[str, str]) -> BusCall:
        """The same call with more user headers (the call's own win)."""
        return replace(self, options={**self.options, "headers": {**headers, **self.headers}})

    def with_options(self, **options: Any) -> BusCall:
        """The same call with these options replaced."""
        return replace(self, options={**self.options, **options})


BusInterceptor = Callable[[BusCall, Callable[[BusCall], Any]], Any]
"""``def audit(call: BusCall, proceed) -> object: ...; return proceed(call)``. Under
``AsyncMessaging``, ``proceed(call)`` is awaitable and the interceptor is ``async def``."""


def compose(
    interceptors: Sequence[BusInterceptor], verb: Callable[[BusCall], Any]
) -> Callable[[BusCall], Any]:
    """``verb`` wrapped by the interceptors, the first outermost; composed once, at build."""
    chain = verb
    for interceptor in reversed(interceptors):
        chain = _around(interceptor, chain)
    return chain


def _around(
    interceptor: BusInterceptor, proceed: Callable[[BusCall], Any]
) -> Callable[[BusCall], Any]:
    return lambda call: interceptor(call, proceed)


def check_bus_retry(retry: RetryPolicy | None, bus: str) -> None:
    """A bus retries a synchronous call at once only: its delayed retries have nowhere to wait."""
    if retry is not None and retry.delays is not None:
        raise ConfigurationError(
            f"{bus}(retry=...) retries a synchronous call at once (RetryPolicy(instant=...)); "
            f"it has no channel where a delayed retry could wait. Give the handler "
            f"@asynchronous(..., retry=RetryPolicy(delays=...)) for delayed retries."
        )


def retries_at_once(retry: RetryPolicy | None, error: BaseException, tried: int) -> bool:
    """Whether a call that failed its ``tried``-th time runs again at once."""
    return retry is not None and tried <= retry.instant and retry.retries(error)
