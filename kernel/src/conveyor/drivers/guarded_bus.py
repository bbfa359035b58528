"""Failure tools for synchronous calls: a bus that retries at once and hands failures over.

``messaging.command_bus(retry=RetryPolicy(instant=3, on=StaleVersion), error_handler=on_failure)``
is Ecotone's gateway-level ``InstantRetry`` and ``ErrorChannel``: each attempt is a whole new call
(its own collecting scope and transaction, so nothing a failed attempt sent leaves), under one
message id; when the retries are spent, the error handler receives the ``Failure`` and the caller
gets None instead of the exception. Without an error handler the last exception is raised.

Bus interceptors (``conveyor.core.bus_calls``) are installed here too: once, when the root is
built, and only when there are some, so a ``Messaging`` without them pays nothing per call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, overload

from conveyor.core.bus_calls import BusCall, BusInterceptor, compose, retries_at_once
from conveyor.core.failure import Failure
from conveyor.core.journal import ExceptionInfo
from conveyor.core.queries import Answer, Query
from conveyor.core.retry import RetryPolicy

__all__ = ["GuardedBus", "install_bus_interceptors", "bus_failure"]

VERBS = ("send", "publish", "ask")


def install_bus_interceptors(root: object, interceptors: Sequence[BusInterceptor]) -> None:
    """Put the interceptors around ``root``'s ``send``, ``publish`` and ``ask``.

    The composed verbs shadow the methods on this one instance, so calls from handlers
    (``ctx.send``) and from bus views go through them as well.
    """
    for verb in VERBS:
        plain: Callable[..., Any] = getattr(root, verb)
        chain = compose(interceptors, _calling(plain))
        setattr(root, verb, _entry(verb, chain))


def _calling(plain: Callable[..., Any]) -> Callable[[BusCall], Any]:
    return lambda call: plain(call.message, **call.options)


def _entry(verb: str, chain: Callable[[BusCall], Any]) -> Callable[..., Any]:
    def entry(message: object, /, **options: Any) -> Any:
        return chain(BusCall(verb, message, options))  # type: ignore[arg-type]

    entry.__name__ = verb
    return entry


def bus_failure(
    bus: str, message: object, options: dict[str, Any], error: BaseException, *,
    message_id: str, attempt: int, now: datetime,
) -> Failure:  # fmt: skip
    """What a bus's error handler receives for a synchronous call that failed for good."""
    info = ExceptionInfo.capture(error)
    return Failure(
        message_id=message_id,
        channel="",
        endpoint_id=bus,
        message_type=type(message).__qualname__,
        payload=message,
        headers=dict(options.get("headers") or {}),
        exception_type=info.qualified_name,
        exception_message=info.message,
        traceback=info.traceback,
        attempt=attempt,
        failed_at=now,
        error=error,
    )


class GuardedBus:
    """A bus whose synchronous calls are retried at once, then handed to an error handler."""

    __slots__ = ("_bus", "_inner", "_new_id", "_now", "_on_failure", "_own_retry", "_retry")

    def __init__(
        self,
        inner: Any,
        bus: str,
        *,
        retry: RetryPolicy | None,
        on_failure: Callable[[Failure], None] | None,
        new_id: Callable[[], str],
        now: Callable[[], datetime],
        own_retry: Callable[[str, object, str | None], RetryPolicy | None] | None = None,
    ) -> None:
        self._inner = inner
        #: The called handler's own retry (``@command_handler(retry=...)``), which wins over
        #: the bus's: the most specific setting decides, and the handler has retried already.
        self._own_retry = own_retry
        self._bus = bus
        self._retry = retry
        self._on_failure = on_failure
        self._new_id = new_id
        self._now = now

    def send(self, command: object, **options: Any) -> Any:
        return self._guarded(self._inner.send, command, options, "send")

    def publish(self, event: object, **options: Any) -> None:
        self._guarded(self._inner.publish, event, options, "publish")

    @overload
    def ask(self, query: Query[Answer], **options: Any) -> Answer: ...
    @overload
    def ask(self, query: object, **options: Any) -> Any: ...
    def ask(self, query: object, **options: Any) -> Any:
        """As the bus's ``ask`` (typed for a ``Query[T]``), retried as the bus says."""
        return self._guarded(self._inner.ask, query, options, "ask")

    def _guarded(
        self, verb: Callable[..., Any], message: object, options: dict[str, Any], name: str
    ) -> Any:
        if options.get("message_id") is None:
            options = {**options, "message_id": self._new_id()}  # one id for every attempt
        retry = self._retry
        if (
            retry is not None
            and self._own_retry is not None
            and self._own_retry(name, message, options.get("routing_key")) is not None
        ):
            retry = None
        tried = 0
        while True:
            tried += 1
            try:
                return verb(message, **options)
            except Exception as error:
                if retries_at_once(retry, error, tried):
                    continue
                if self._on_failure is None:
                    raise
                self._on_failure(
                    bus_failure(
                        self._bus,
                        message,
                        options,
                        error,
                        message_id=options["message_id"],
                        attempt=tried,
                        now=self._now(),
                    )
                )
                return None
