"""What an error handler receives when a handler fails for good."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Failure"]


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed message copy, handed to an error handler after retries are exhausted.

    Attributes:
        message_id: the failed message's id.
        channel: the channel it was consumed from.
        endpoint_id: the handler that failed.
        message_type: its type name.
        payload: the decoded payload.
        headers: its wire headers.
        exception_type: the exception's qualified type name.
        exception_message: the exception's message.
        traceback: the formatted traceback.
        attempt: the delivery attempt that failed last.
        failed_at: when it failed.
    """

    message_id: str
    channel: str
    endpoint_id: str
    message_type: str
    payload: object
    headers: Mapping[str, str]
    exception_type: str
    exception_message: str
    traceback: str
    attempt: int
    failed_at: datetime
    error: BaseException | None = field(default=None, compare=False, repr=False)
