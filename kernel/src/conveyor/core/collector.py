"""The message collector: messages a handler sends leave only if it succeeds.

While a top-level send, publish or a consumed message is being handled, every message bound for
a channel is held in the innermost open scope's buffer. The outermost scope flushes on success
and discards on failure, so a failed handler (or a failed retry attempt) sends nothing, and no
consumer can see a message before the work that caused it is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from conveyor.core.message import Message
from conveyor.transports.seam import WireMessage

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


class Scope:
    """One level of handling: the message being handled (None at top level) and held sends.

    A plain slotted class rather than a dataclass: one is made for every handler call.
    """

    __slots__ = ("buffer", "channel", "collecting", "endpoint_id", "message")

    def __init__(
        self,
        message: Message | None,
        endpoint_id: str | None = None,
        channel: str | None = None,
        collecting: bool = True,
    ) -> None:
        self.message = message
        self.endpoint_id = endpoint_id
        self.channel = channel
        self.collecting = collecting
        self.buffer: list[PendingSend] = []
