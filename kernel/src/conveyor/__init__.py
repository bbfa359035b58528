"""Conveyor: a testing-first messaging kernel.

Command, event and query buses over plain handler functions; asynchronous handlers on named
channels; a scheduler and every due time driven by an injected clock; retries, error handlers,
dead letters and deduplication at the channel level.
"""

from __future__ import annotations

from conveyor.core.bus_calls import BusCall, BusInterceptor
from conveyor.core.clock import Clock, SystemClock, VirtualClock
from conveyor.core.deduplication import deduplicated
from conveyor.core.dynamic_routing import Outbound, by_header, round_robin, throttled
from conveyor.core.errors import (
    ConfigurationError,
    ConveyorError,
    MessageRejected,
    NoHandlerError,
    RoutingError,
    SendFailed,
    SerializationError,
    SettleError,
    TransportError,
)
from conveyor.core.failure import Failure
from conveyor.core.handlers import (
    Marker,
    asynchronous,
    command_handler,
    delayed,
    event_handler,
    priority,
    query_handler,
    time_to_live,
)
from conveyor.core.headers import Headers
from conveyor.core.ids import SequentialIds, UuidV7Ids
from conveyor.core.interceptors import after, around, before
from conveyor.core.journal import Journal, Record, RecordKind
from conveyor.core.message import Message
from conveyor.core.queries import Query
from conveyor.core.retry import Backoff, RetryPolicy
from conveyor.core.scheduling import scheduled
from conveyor.drivers.async_context import AsyncContext
from conveyor.drivers.async_messaging import AsyncMessaging
from conveyor.drivers.buses import CommandBus, EventBus, QueryBus
from conveyor.drivers.channel_view import ChannelView
from conveyor.drivers.context import Context
from conveyor.drivers.driving import ConsumerHooks, RunResult
from conveyor.drivers.messaging import Messaging
from conveyor.stores.dead_letters import DeadLetter, DeadLetterStore, InMemoryDeadLetterStore
from conveyor.stores.deduplication import (
    Deduplication,
    DeduplicationStore,
    InMemoryDeduplicationStore,
)
from conveyor.stores.schedules import InMemoryScheduleStore, ScheduleStore
from conveyor.transports.channels import Channel, ChannelAlias, QueueChannel
from conveyor.transports.dynamic import DynamicChannel
from conveyor.transports.memory_broker import MemoryBroker

__all__ = [
    # the facade and its buses
    "Messaging",
    "AsyncMessaging",
    "CommandBus",
    "EventBus",
    "QueryBus",
    "Query",
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
    "AsyncContext",
    # values
    "Message",
    "Headers",
    "Failure",
    "BusCall",
    "BusInterceptor",
    "Record",
    "RecordKind",
    "Journal",
    "RunResult",
    "ConsumerHooks",
    # channels and failure handling
    "Channel",
    "ChannelAlias",
    "QueueChannel",
    "MemoryBroker",
    "ChannelView",
    "DynamicChannel",
    "round_robin",
    "by_header",
    "throttled",
    "Outbound",
    "RetryPolicy",
    "Backoff",
    "DeadLetter",
    "DeadLetterStore",
    "InMemoryDeadLetterStore",
    "Deduplication",
    "DeduplicationStore",
    "InMemoryDeduplicationStore",
    "ScheduleStore",
    "InMemoryScheduleStore",
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
    "SendFailed",
    "MessageRejected",
    "SettleError",
]
