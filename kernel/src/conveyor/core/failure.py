"""What an error handler receives when a handler fails for good."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Failure"]


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed message copy, handed to an error handler after retries are exhausted.

    Attributes:
        message_id: the failed message's id.
        channel: the channel it was consumed from.
        endpoint_id: the handler that failed.
        message_type: its type name.
        payload: the decoded payload; an asynchronous error handler receives it as plain JSON
            (it crossed the error handler's channel inside the failure).
        headers: its wire headers.
        exception_type: the exception's qualified type name.
        exception_message: the exception's message.
        traceback: the formatted traceback.
        attempt: the delivery attempt that failed last.
        failed_at: when it failed.
        error: the exception itself, for an error handler that runs in the same process; None
            for an asynchronous error handler (exceptions do not cross the wire).
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
    # Annotated Any, not BaseException | None, so the codec can carry a Failure (with error=None)
    # to an asynchronous error handler.
    error: Any = field(default=None, compare=False, repr=False)
