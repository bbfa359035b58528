"""Conveyor: a testing-first messaging kernel.

Command, event and query buses over plain handler functions; asynchronous handlers on named
channels; a scheduler and every due time driven by an injected clock; retries, error handlers,
dead letters and deduplication at the channel level.
"""

from __future__ import annotations

from conveyor.buses import CommandBus, EventBus, QueryBus
from conveyor.channels import Channel, QueueChannel
from conveyor.clock import Clock, SystemClock, VirtualClock
from conveyor.context import Context
from conveyor.deadletter import DeadLetter, DeadLetterStore, InMemoryDeadLetterStore
from conveyor.deduplication import (
    Deduplication,
    DeduplicationStore,
    InMemoryDeduplicationStore,
    deduplicated,
)
from conveyor.driving import RunResult
from conveyor.errors import (
    ConfigurationError,
    ConveyorError,
    NoHandlerError,
    RoutingError,
    SerializationError,
    SettleError,
    TransportError,
)
from conveyor.failure import Failure
from conveyor.handlers import (
    Marker,
    asynchronous,
    command_handler,
    delayed,
    event_handler,
    priority,
    query_handler,
    time_to_live,
)
from conveyor.headers import Headers
from conveyor.ids import SequentialIds, UuidV7Ids
from conveyor.interceptors import after, around, before
from conveyor.journal import Journal, Record, RecordKind
from conveyor.message import Message
from conveyor.messaging import Messaging
from conveyor.retry import Backoff, RetryPolicy
from conveyor.scheduling import scheduled

__all__ = [
    # the facade and its buses
    "Messaging",
    "CommandBus",
    "EventBus",
    "QueryBus",
    # marking handlers
    "command_handler",
    "event_handler",
    "query_handler",
    "asynchronous",
    "delayed",
    "priority",
    "time_to_live",
    "scheduled",
    "deduplicated",
    "before",
    "around",
    "after",
    "Marker",
    "Context",
    # values
    "Message",
    "Headers",
    "Failure",
    "Record",
    "RecordKind",
    "Journal",
    "RunResult",
    # channels and failure handling
    "Channel",
    "QueueChannel",
    "RetryPolicy",
    "Backoff",
    "DeadLetter",
    "DeadLetterStore",
    "InMemoryDeadLetterStore",
    "Deduplication",
    "DeduplicationStore",
    "InMemoryDeduplicationStore",
    # time and ids
    "Clock",
    "SystemClock",
    "VirtualClock",
    "SequentialIds",
    "UuidV7Ids",
    # errors
    "ConveyorError",
    "ConfigurationError",
    "RoutingError",
    "NoHandlerError",
    "SerializationError",
    "TransportError",
    "SettleError",
]
