"""What a consumer decides about a delivery, shared by the sync and the asyncio driver.

Both drivers consume a delivery the same way; only how they wait differs (a call that blocks, or
an ``await``). Everything they decide before and after the handler runs lives here, once: where a
delivery goes (a channel sequence moves on, a message back early is held, an asynchronous bus
message is routed, an endpoint's copy is handled), how its payload is read, which plan follows a
rejection, a failure or a failing store, and the deduplication key. The plans themselves come from
the core (``conveyor.core.lifecycle``); nothing here does IO.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from conveyor.core.codec.serialization import Codec, UnknownMessageType
from conveyor.core.errors import SerializationError, StaleReceipt
from conveyor.core.journal import ExceptionInfo, Journal, RecordKind
from conveyor.core.lifecycle import (
    Plan,
    Record,
    Release,
    ResolvedPolicy,
    after_bus_failure,
    after_failure,
    reject,
)
from conveyor.core.message import Message
from conveyor.core.outcome import Outcome
from conveyor.core.registry import HandlerSpec
from conveyor.core.retry import RetryPolicy
from conveyor.core.wire import BUS_COMMAND, BUS_EVENT, Delivery, Envelope, H, WireMessage
from conveyor.drivers.plans import Consumed
from conveyor.stores.deduplication import Deduplication

__all__ = [
    "Route",
    "STORE_RETRY",
    "route_of",
    "decode",
    "rejection",
    "failure_plan",
    "bus_failure_plan",
    "store_failed_plan",
    "forwarded",
    "dedup_key",
    "tracking_detail",
    "record_stale",
    "log_undone",
]

_LOG = logging.getLogger("conveyor")

STORE_RETRY = timedelta(seconds=1)
"""How long a delivery whose store (deduplication, dead letters) failed waits to come back."""

Route = Literal["forward", "hold", "bus", "endpoint"]


def route_of(envelope: Envelope, now: datetime) -> Route:
    """Where a readable delivery goes next, before any handler is looked up."""
    if envelope.slip:
        return "forward"
    if envelope.not_before is not None and envelope.not_before > now:
        return "hold"
    if envelope.endpoint in (BUS_COMMAND, BUS_EVENT):
        return "bus"
    return "endpoint"


def decode(codec: Codec, delivery: Delivery, envelope: Envelope) -> Message | tuple[str, Exception]:
    """The delivered message, or why it cannot be read (a rejection reason and the error)."""
    try:
        payload = codec.decode(delivery.message.body, envelope.type_name)
    except UnknownMessageType as error:
        return "unknown type", error
    except SerializationError as error:
        return "undecodable", error
    headers = envelope.headers
    if delivery.delivery_count > 1 and headers.attempt < delivery.delivery_count:
        headers = headers.with_attempt(delivery.delivery_count)
    return Message(payload, headers, envelope.routing_key)


def rejection(
    consumed: Consumed[Any],
    reason: str,
    error: Exception | None,
    endpoints: Mapping[str, HandlerSpec],
    detail: str = "",
) -> Plan:
    """The plan for a delivery that cannot be handled here, with a reason a reader can act on."""
    if detail:
        info = ExceptionInfo.capture(error) if error is not None else None
        return reject(reason, detail, info, consumed.attempt)
    detail = reason
    channel = consumed.channel
    if reason == "no endpoint":
        known = [s.endpoint_id for s in endpoints.values() if channel in s.channels]
        detail = (
            f"no endpoint {consumed.endpoint_id!r} on channel {channel!r}; endpoints "
            f"here: {', '.join(known) or 'none'}"
        )
    info = ExceptionInfo.capture(error) if error is not None else None
    return reject(reason, detail, info, consumed.attempt)


def failure_plan(
    consumed: Consumed[Any],
    policy: ResolvedPolicy,
    error: Exception,
    rng: random.Random,
    now: datetime,
) -> Plan:
    """The plan once a handling attempt failed and its instant retries are spent."""
    assert consumed.message is not None
    assert consumed.endpoint_id is not None
    attempt = consumed.message.headers.attempt
    retry = policy.retry
    return after_failure(
        policy,
        endpoint_id=consumed.endpoint_id,
        error=error,
        attempt=attempt,
        retry_delay=retry.next_delay(error, attempt, rng) if retry else None,
        wire=consumed.delivery.message.headers,
        now=now,
    )


def bus_failure_plan(
    consumed: Consumed[Any],
    retry: RetryPolicy | None,
    error: Exception,
    rng: random.Random,
    now: datetime,
) -> Plan:
    """The plan once an asynchronous bus message's handlers failed."""
    attempt = consumed.attempt
    return after_bus_failure(
        error=error,
        attempt=attempt,
        retry_delay=retry.next_delay(error, attempt, rng) if retry else None,
        wire=consumed.delivery.message.headers,
        now=now,
    )


def store_failed_plan(error: Exception, what: str) -> Plan:
    """A store the kernel needs failed: release the delivery to come back later."""
    return Plan(
        (
            Record(
                RecordKind.RELEASED,
                exception=ExceptionInfo.capture(error),
                detail=f"{what} failed; released to come back",
            ),
            Release(),
        ),
        Outcome.RELEASED,
    )


def forwarded(delivery: Delivery, envelope: Envelope) -> tuple[str, WireMessage, bool]:
    """A channel sequence's next step: the next channel, its copy, and whether more follow."""
    next_channel, rest = envelope.slip[0], envelope.slip[1:]
    headers = dict(delivery.message.headers)
    if rest:
        headers[H.SLIP] = ",".join(rest)
    else:
        headers.pop(H.SLIP, None)
    return next_channel, WireMessage(delivery.message.body, headers), bool(rest)


def dedup_key(
    deduplication: Deduplication | None, spec: HandlerSpec, message: Message
) -> str | None:
    """What deduplication remembers a handled copy by (None: deduplication is off)."""
    if deduplication is None:
        return None
    rule = spec.deduplication
    if rule is None:
        return message.headers.id
    if rule.header is not None:
        value = message.headers.user.get(rule.header)
        return value if value is not None else message.headers.id
    if rule.key is not None:
        return rule.key(message.payload)
    return message.headers.id


def tracking_detail(spec: HandlerSpec) -> str:
    """A duplicate's journal detail: the tracking name whose keys it was found under, if shared."""
    scope = spec.dedup_scope
    return f"tracking {scope!r}" if scope != spec.endpoint_id else ""


def record_stale(
    journal: Journal, now: datetime, channel: str, delivery: Delivery, stale: StaleReceipt
) -> None:
    """Another consumer holds (or settled) the message since this lease ran out."""
    journal.append(
        now,
        RecordKind.STALE,
        delivery.message.headers.get(H.ID, delivery.receipt),
        delivery.message.headers.get(H.TYPE, "?"),
        channel=channel,
        endpoint_id=delivery.message.headers.get(H.ENDPOINT),
        detail="lease ran out before the handling finished; the message comes again",
    )
    _LOG.warning(
        "message %s on channel %s outlived its lease: %s",
        delivery.message.headers.get(H.ID, delivery.receipt),
        channel,
        stale,
    )


def log_undone(consumed: Consumed[Any], raised: Exception) -> None:
    """Carrying out a plan failed (a store that is down): the delivery was given back."""
    _LOG.error(
        "could not carry out the decision for message %s on channel %s (%s); "
        "released it to come back",
        consumed.message_id,
        consumed.channel,
        ExceptionInfo.capture(raised),
    )
