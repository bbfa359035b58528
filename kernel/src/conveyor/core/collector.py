"""The message collector: messages a handler sends leave only if it succeeds.

While a top-level send, publish or a consumed message is being handled, every message bound for
a channel is held in the innermost open collecting scope's buffer. The outermost scope flushes on
success and discards on failure, so a failed handler (or a failed retry attempt) sends nothing,
and no consumer can see a message before the work that caused it is done.

A :class:`Scope` is per-call state: one is opened for each handler call and travels with the
call (``conveyor.drivers.scopes`` keeps the innermost in a ``ContextVar``), so threads and asyncio
tasks sharing one ``Messaging`` never see each other's scopes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from conveyor.core.message import Message
from conveyor.core.wire import WireMessage

__all__ = ["PendingSend", "Scope", "AttemptState", "ManualAck"]


@dataclass(frozen=True, slots=True)
class PendingSend:
    """A message copy waiting for its scope to succeed before it goes to its channel."""

    channel: str
    wire: WireMessage
    message: Message
    endpoint_id: str
    available_at: datetime | None
    priority: int
    expires_at: datetime | None


class AttemptState:
    """What one handling attempt (or one top-level bus call) has journaled so far.

    A failure raised by a handler propagates through every enclosing handler and layer of the
    same attempt; it is recorded once, where it was raised. A new attempt (an instant retry, a
    redelivery) gets a new state, so the same exception object raised again is recorded again.
    """

    __slots__ = ("recorded",)

    def __init__(self) -> None:
        self.recorded: BaseException | None = None


class ManualAck(AttemptState):
    """The state of an attempt consumed from a channel with manual acknowledgement.

    ``acked`` is set by ``ctx.ack()``; the handler's call checks it when the handler returns. A
    subclass, so that the attempts of every other call (each ``send``) carry nothing more.
    """

    __slots__ = ("acked",)

    def __init__(self) -> None:
        super().__init__()
        self.acked = False


class Scope:
    """One level of handling: the message being handled (None at top level) and held sends.

    A plain slotted class rather than a dataclass: one is made for every handler call. Its
    attempt state is made on first use (a failure to record), as most calls never fail.
    """

    __slots__ = ("_attempt", "buffer", "channel", "collecting", "endpoint_id", "message", "parent")

    def __init__(
        self,
        message: Message | None,
        endpoint_id: str | None = None,
        channel: str | None = None,
        collecting: bool = True,
        parent: Scope | None = None,
        attempt: AttemptState | None = None,
    ) -> None:
        self.message = message
        self.endpoint_id = endpoint_id
        self.channel = channel
        self.collecting = collecting
        self.parent = parent
        self._attempt = attempt
        #: Held sends; None until the first (most calls send nothing through a collector).
        self.buffer: list[PendingSend] = []

    @property
    def attempt(self) -> AttemptState:
        """The attempt this scope belongs to: the one it was given, else its parent's (the
        same attempt), else a new one (a top-level call is an attempt of its own)."""
        state = self._attempt
        if state is None:
            parent = self.parent
            state = self._attempt = parent.attempt if parent is not None else AttemptState()
        return state

    def handled_message(self) -> Message | None:
        """The message being handled here or in the nearest enclosing scope that names one."""
        scope: Scope | None = self
        while scope is not None:
            if scope.message is not None:
                return scope.message
            scope = scope.parent
        return None

    def collector(self) -> Scope | None:
        """The innermost collecting scope, this one or an enclosing one."""
        scope: Scope | None = self
        while scope is not None:
            if scope.collecting:
                return scope
            scope = scope.parent
        return None
