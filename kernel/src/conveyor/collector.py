"""The message collector: messages a handler sends leave only if it succeeds.

While a top-level send, publish or a consumed message is being handled, every message bound for
a channel is held in the innermost open scope's buffer. The outermost scope flushes on success
and discards on failure, so a failed handler (or a failed retry attempt) sends nothing, and no
consumer can see a message before the work that caused it is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from conveyor.message import Message
from conveyor.transport import WireMessage

__all__ = ["PendingSend", "Scope"]


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


@dataclass(slots=True)
class Scope:
    """One level of handling: the message being handled (None at top level) and held sends."""

    message: Message | None
    endpoint_id: str | None = None
    channel: str | None = None
    collecting: bool = True
    buffer: list[PendingSend] = field(default_factory=list)
