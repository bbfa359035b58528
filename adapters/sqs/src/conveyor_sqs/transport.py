"""``SqsTransport``: Conveyor channels as SQS queues, on one boto3 client.

Each channel is one queue (``queue_prefix`` + channel name, ``.fifo`` on a FIFO transport).
The seam maps onto SQS almost verb for verb:

- ``send`` is ``SendMessage`` with ``DelaySeconds`` (whole seconds, rounded up, at most the
  declared ``max_delay``, 15 minutes: the kernel completes longer delays by sending the message
  on when it comes back early);
- ``receive`` is ``ReceiveMessage`` with ``VisibilityTimeout`` = the lease, a batch of up to 10
  and ``WaitTimeSeconds`` for a long poll; the delivery count is SQS's
  ``ApproximateReceiveCount``;
- ``ack`` is a delete, batched: waiting acks go in one ``DeleteMessageBatch`` of up to 10,
  sent in parallel with the next receive's call, or after ``ack_delay`` (50 ms) when none comes
  (:mod:`conveyor_sqs.deletes`); ``release`` and ``renew`` are ``ChangeMessageVisibility``.

A FIFO transport makes every queue a FIFO queue: messages of one group (the value of the
channel's ``fifo_group_header``; the whole channel when it has none) are received in send
order, one group's message at a time. FIFO queues refuse per-message delays, so a delayed
message is sent at once with its due time; the receive that meets it early hides it (a
visibility change) until then, which also holds back the later messages of its group.

Leases are SQS visibility timeouts, in whole seconds (at most 12 hours): a timed lease, and a
sent message is visible only eventually (SQS samples servers on a short poll).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from conveyor.core.clock import Clock
from conveyor.core.errors import (
    ConfigurationError,
    MessageTooLarge,
    StaleReceipt,
    TransportClosed,
    TransportError,
)
from conveyor.transports.seam import (
    Capabilities,
    ChannelOptions,
    ChannelStats,
    Delivery,
    WireMessage,
)
from conveyor_sqs import wire
from conveyor_sqs.client import ClientSettings, open_client, where_of
from conveyor_sqs.deletes import DEFAULT_ACK_DELAY, MAX_ACK_DELAY, DeleteBatcher
from conveyor_sqs.errors import translate
from conveyor_sqs.leases import LeaseBook
from conveyor_sqs.queues import Queue, QueueDirectory
from conveyor_sqs.seconds import (
    SQS_MAX_DELAY,
    SQS_MAX_VISIBILITY,
    SQS_MAX_WAIT,
    hiding_hops,
    lease_seconds,
    max_visibility,
    seconds_up,
)

__all__ = ["SqsTransport", "SQS_MAX_DELAY", "SQS_MAX_VISIBILITY"]

_MAX_BATCH = 10
_MAX_HIDING_ROUNDS = 10
_SYSTEM_ATTRIBUTES = [
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "MessageGroupId",
]


class SqsTransport:
    """A renewable transport on SQS queues (standard, or FIFO when ``fifo``).

    Args:
        clock: where "now" comes from for delays and due times (a ``SystemClock``: SQS keeps
            its own time for visibility).
        settings: the client's endpoint, region, profile and pool; see :class:`ClientSettings`.
        queue_prefix: put before every channel name to make its queue name (an application or
            environment name, "shop-prod-").
        fifo: every queue is a FIFO queue (names end in ``.fifo``).
        create_queues: create missing queues on declare; False only looks them up (queues made
            by Terraform or CloudFormation, credentials without ``sqs:CreateQueue``).
        queue_attributes: attributes for queues this transport creates
            (``{"MessageRetentionPeriod": "1209600"}``); an existing queue with other values
            is a ``ConfigurationError``.
        max_delay: the longest delay handed to SQS; longer ones come back early and the kernel
            sends them on. At most (and by default) SQS's 15 minutes.
        client: a boto3 SQS client to use instead of building one from ``settings``.
        ack_delay: how long an ack may wait for the acks that follow, so that up to 10 share
            one ``DeleteMessageBatch`` call (at most 500 ms, far under the shortest lease);
            ``timedelta(0)`` deletes each message in its own call as ``ack`` returns. FIFO
            transports always delete at once: a group's next message waits for the delete.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        settings: ClientSettings | None = None,
        queue_prefix: str = "",
        fifo: bool = False,
        create_queues: bool = True,
        queue_attributes: Mapping[str, str] | None = None,
        max_delay: timedelta = SQS_MAX_DELAY,
        client: Any = None,
        ack_delay: timedelta = DEFAULT_ACK_DELAY,
    ) -> None:
        if not timedelta(seconds=1) <= max_delay <= SQS_MAX_DELAY:
            raise ConfigurationError(
                f"max_delay={max_delay} is outside what SQS holds: choose between 1 second and "
                f"15 minutes; the kernel completes longer delays."
            )
        if not timedelta(0) <= ack_delay <= MAX_ACK_DELAY:
            raise ConfigurationError(
                f"ack_delay={ack_delay} is outside 0 to {MAX_ACK_DELAY.total_seconds():.1f} s: "
                f"an acknowledged message must be deleted well before its lease (at least a "
                f"second) runs out."
            )
        self._clock = clock
        self._settings = settings or ClientSettings()
        if client is None:
            client, self._where = open_client(self._settings)
        else:
            self._where = where_of(client)
        self._client = client
        self._fifo = fifo
        self._queues = QueueDirectory(
            client,
            self._where,
            prefix=queue_prefix,
            fifo=fifo,
            create=create_queues,
            attributes=queue_attributes or {},
        )
        self._closed = False
        self._leases = LeaseBook()
        self._deletes = (
            DeleteBatcher(client, self._where, ack_delay)
            if ack_delay > timedelta(0) and not fifo
            else None
        )
        self._capabilities = Capabilities(
            delay=True,
            max_delay=None if fifo else max_delay,
            delay_precision=timedelta(seconds=1),
            priority=False,
            ttl=False,
            ordering="fifo" if fifo else "none",
            max_size=self._queues.smallest_limit(),
            durable=True,
            lease="timed",
            visibility="eventual",
            max_batch=_MAX_BATCH,
        )

    @property
    def capabilities(self) -> Capabilities:
        """The smallest size limit of the queues declared so far (before any, of the
        ``MaximumMessageSize`` this transport creates queues with, SQS's 1 MiB by default)."""
        return self._capabilities

    @property
    def region(self) -> str:
        return self._where.region

    def queue_name(self, channel: str) -> str:
        """The SQS queue name of ``channel``."""
        return self._queues.name(channel)

    # ------------------------------------------------------------------ channels

    def declare(self, options: ChannelOptions) -> None:
        """Create the channel's queue if missing (or look it up), and read its size limit."""
        self._check_open(f"declaring channel {options.name!r}")
        self._queues.declare(options)
        limit = self._queues.smallest_limit()
        if limit < (self._capabilities.max_size or limit + 1):
            self._capabilities = replace(self._capabilities, max_size=limit)

    def _queue(self, channel: str) -> Queue:
        queue = self._queues.get(channel)
        if queue is None:
            self.declare(ChannelOptions(channel))
            queue = self._queues.get(channel)
            assert queue is not None
        return queue

    # ------------------------------------------------------------------ send

    def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        self._check_open(f"sending to channel {channel!r}")
        queue = self._queue(channel)
        request = self._send_request(queue, channel, message, available_at)
        try:
            self._client.send_message(QueueUrl=queue.url, **request)
        except Exception as error:
            raise self._translate(error, queue.name, f"sending to channel {channel!r}") from error

    def send_batch(
        self, channel: str, messages: Iterable[WireMessage], *, available_at: datetime | None = None
    ) -> None:
        """Send several messages in ``SendMessageBatch`` calls of up to 10: fewer round trips.

        Every message is checked before any is sent. SQS answers per entry; if any entry
        failed, a ``TransportError`` names how many, and the others were sent.
        """
        self._check_open(f"sending to channel {channel!r}")
        queue = self._queue(channel)
        entries = [
            {"Id": str(n), **self._send_request(queue, channel, message, available_at)}
            for n, message in enumerate(messages)
        ]
        action = f"sending a batch to channel {channel!r}"
        failed: list[str] = []
        for start in range(0, len(entries), _MAX_BATCH):
            try:
                answer = self._client.send_message_batch(
                    QueueUrl=queue.url, Entries=entries[start : start + _MAX_BATCH]
                )
            except Exception as error:
                raise self._translate(error, queue.name, action) from error
            failed += [f"{f.get('Code')}" for f in answer.get("Failed", [])]
        if failed:
            raise TransportError(
                f"{len(failed)} of {len(entries)} messages were not sent to "
                f"{self._where.queue(queue.name)} ({', '.join(sorted(set(failed)))}); the "
                f"others were. Send the failed ones again."
            )

    def _send_request(
        self, queue: Queue, channel: str, message: WireMessage, available_at: datetime | None
    ) -> dict[str, Any]:
        delay = 0 if available_at is None else seconds_up(available_at - self._clock.now())
        due_ms = None
        if delay and self._fifo:
            due_ms = math.ceil(available_at.timestamp() * 1000) if available_at else None
        encoded = wire.encode(message, due_ms=due_ms)
        self._check_size(queue, channel, message, encoded)
        body, attributes = encoded
        request: dict[str, Any] = {"MessageBody": body, "MessageAttributes": attributes}
        if self._fifo:
            value = message.headers.get(queue.group_header) if queue.group_header else None
            request["MessageGroupId"] = wire.group_id(value or queue.default_group)
            request["MessageDeduplicationId"] = wire.deduplication_id(message)
        elif delay:
            maximum = self._capabilities.max_delay or SQS_MAX_DELAY
            if delay > maximum.total_seconds():
                raise ValueError(
                    f"available_at is {delay} s away, but SQS holds a message at most "
                    f"{maximum.total_seconds():.0f} s (channel {channel!r}). Messaging completes "
                    f"longer delays itself; sending directly, send it again when it comes back."
                )
            request["DelaySeconds"] = delay
        return request

    def _check_size(
        self, queue: Queue, channel: str, message: WireMessage, encoded: wire.EncodedMessage
    ) -> None:
        limit = queue.limit
        size = wire.encoded_size(encoded)
        if message.size > limit or size > queue.maximum:
            raise MessageTooLarge(
                f"message of {message.size} bytes (body plus headers; {size} bytes as SQS "
                f"counts it) is too large for channel {channel!r}: "
                f"{self._where.queue(queue.name)} accepts {queue.maximum} bytes "
                f"(MaximumMessageSize), which leaves {limit} bytes for a message once "
                f"binary bodies are base64-encoded. Send a reference to the payload (an S3 key) "
                f"instead, or raise the queue's MaximumMessageSize (at most 1 MiB)."
            )

    # ------------------------------------------------------------------ receive

    def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        """Lease up to ``max_messages`` (at most 10) messages, long-polling up to ``wait``.

        SQS long-polls in whole seconds up to 20: a ``wait`` under a second is a short poll
        followed, when nothing came, by a sleep for the rest of ``wait`` on the clock, so a
        consumer loop never spins against the queue.
        """
        self._check_open(f"receiving from channel {channel!r}")
        if lease <= timedelta(0):
            raise ValueError(
                f"lease={lease} must be positive: it is how long the consumer has before the "
                f"message is delivered again."
            )
        if max_messages < 1:
            raise ValueError(f"max_messages={max_messages} must be at least 1.")
        queue = self._queue(channel)
        started = self._clock.now()
        seconds = 0 if wait is None else min(int(wait.total_seconds()), SQS_MAX_WAIT)
        deliveries: list[Delivery] = []
        for _ in range(_MAX_HIDING_ROUNDS):
            received = self._receive_batch(queue, channel, lease, max_messages, seconds)
            found = self._deliveries(queue, channel, received)
            now = self._clock.now()
            until = now + timedelta(seconds=lease_seconds(lease))
            ids = {m["ReceiptHandle"]: m["MessageId"] for m in received}
            self._leases.granted(((d.receipt, ids[d.receipt]) for d in found), until, now)
            deliveries += found
            # Delayed FIFO messages met early were hidden, not delivered: look past them.
            if len(found) == len(received) or len(deliveries) >= max_messages:
                break
            max_messages -= len(found)
            seconds = 0
        if not deliveries and wait is not None and seconds == 0:
            left = started + wait - self._clock.now()
            if left > timedelta(0):
                self._clock.sleep(left.total_seconds())
        return deliveries

    def _receive_batch(
        self, queue: Queue, channel: str, lease: timedelta, max_messages: int, seconds: int
    ) -> list[dict[str, Any]]:
        try:
            if self._deletes is not None:
                # The acks made before go in parallel with this call, and are done before
                # anything is handed out: a consumer killed holding the next message loses
                # nothing and handles nothing twice.
                with self._deletes.during():
                    answer = self._receive_call(queue, lease, max_messages, seconds)
            else:
                answer = self._receive_call(queue, lease, max_messages, seconds)
        except Exception as error:
            raise self._translate(
                error, queue.name, f"receiving from channel {channel!r}"
            ) from error
        messages: list[dict[str, Any]] = answer.get("Messages", [])
        return messages

    def _receive_call(
        self, queue: Queue, lease: timedelta, max_messages: int, seconds: int
    ) -> dict[str, Any]:
        answer: dict[str, Any] = self._client.receive_message(
            QueueUrl=queue.url,
            MaxNumberOfMessages=min(max_messages, _MAX_BATCH),
            WaitTimeSeconds=seconds,
            VisibilityTimeout=lease_seconds(lease),
            MessageAttributeNames=[wire.ATTRIBUTE],
            MessageSystemAttributeNames=_SYSTEM_ATTRIBUTES,
        )
        return answer

    def _deliveries(
        self, queue: Queue, channel: str, received: list[dict[str, Any]]
    ) -> list[Delivery]:
        deliveries: list[Delivery] = []
        held_groups: set[str] = set()
        now_ms = self._clock.now().timestamp() * 1000
        for sqs_message in received:
            message, due_ms = wire.decode(sqs_message["Body"], sqs_message.get("MessageAttributes"))
            attributes = sqs_message.get("Attributes", {})
            count = int(attributes.get("ApproximateReceiveCount", "1"))
            handle = sqs_message["ReceiptHandle"]
            if due_ms is not None:
                first_ms = int(attributes.get("ApproximateFirstReceiveTimestamp", now_ms))
                count = max(1, count - hiding_hops(first_ms, due_ms))
                if due_ms > now_ms:  # a FIFO message delayed: hide it, hold its group back
                    self._hide(queue, channel, handle, due_ms - now_ms)
                    held_groups.add(attributes.get("MessageGroupId", ""))
                    continue
            if self._fifo and attributes.get("MessageGroupId", "") in held_groups:
                self._hide(queue, channel, handle, 0)  # after a held message of its group
                continue
            deliveries.append(Delivery(channel, message, handle, count))
        return deliveries

    def _hide(self, queue: Queue, channel: str, handle: str, milliseconds: float) -> None:
        seconds = min(math.ceil(milliseconds / 1000), int(SQS_MAX_VISIBILITY.total_seconds()))
        try:
            self._client.change_message_visibility(
                QueueUrl=queue.url, ReceiptHandle=handle, VisibilityTimeout=seconds
            )
        except Exception as error:
            raise self._translate(
                error, queue.name, f"holding a delayed message on {channel!r}"
            ) from error

    # ------------------------------------------------------------------ settle

    def ack(self, delivery: Delivery) -> None:
        """Delete the message, within ``ack_delay``. SQS cannot fence a delete by lease: an
        expired receipt may still delete the message, so keep handlers idempotent (see the
        README)."""
        queue = self._settling(delivery, "acknowledging")
        if self._deletes is not None:
            self._leases.settled(delivery.receipt)
            self._deletes.add(queue.url, queue.name, delivery.receipt)
            return
        try:
            self._client.delete_message(QueueUrl=queue.url, ReceiptHandle=delivery.receipt)
            self._leases.settled(delivery.receipt)
        except Exception as error:
            raise self._translate(
                error, queue.name, f"acknowledging a message on {delivery.channel!r}"
            ) from error

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        """Make the message visible again now, or at ``available_at`` (at most 12 hours on)."""
        queue = self._settling(delivery, "releasing")
        seconds = 0 if available_at is None else seconds_up(available_at - self._clock.now())
        self._change_visibility(queue, delivery, min(seconds, max_visibility()), "releasing")
        self._leases.settled(delivery.receipt)

    def renew(self, delivery: Delivery, *, lease: timedelta) -> None:
        """Extend the lease to ``lease`` from now (SQS caps a message's total at 12 hours)."""
        queue = self._settling(delivery, "renewing the lease of")
        now = self._clock.now()
        self._leases.check_renewable(delivery, now)  # SQS itself does not fence a renewal
        self._change_visibility(queue, delivery, lease_seconds(lease), "renewing the lease of")
        self._leases.renewed(delivery.receipt, now + timedelta(seconds=lease_seconds(lease)))

    def _change_visibility(self, queue: Queue, delivery: Delivery, seconds: int, verb: str) -> None:
        try:
            self._client.change_message_visibility(
                QueueUrl=queue.url, ReceiptHandle=delivery.receipt, VisibilityTimeout=seconds
            )
        except Exception as error:
            translated = self._translate(
                error, queue.name, f"{verb} a message on {delivery.channel!r}"
            )
            if isinstance(translated, StaleReceipt):
                raise StaleReceipt(
                    f"cannot {verb.split(maxsplit=1)[0].removesuffix('ing')} delivery "
                    f"{delivery.delivery_count} of a message on channel {delivery.channel!r}: "
                    f"{translated}"
                ) from error
            raise translated from error

    def _settling(self, delivery: Delivery, verb: str) -> Queue:
        self._check_open(f"{verb} a message on channel {delivery.channel!r}")
        queue = self._queues.get(delivery.channel)
        if queue is None:
            raise TransportError(
                f"delivery on channel {delivery.channel!r} was not received by this "
                f"SqsTransport. Ack, release and renew a delivery with the transport that "
                f"received it."
            )
        return queue

    # ------------------------------------------------------------------ load

    def stats(self, channel: str) -> ChannelStats:
        """SQS's approximate counts: pending is visible plus delayed, in flight is not visible
        (received and not deleted, or hidden by this transport for a delay past SQS's own).
        The age of the oldest is a CloudWatch metric, not a queue attribute: unknown."""
        self._check_open(f"reading the load of channel {channel!r}")
        queue = self._queue(channel)
        self.flush()  # acks made here are deletes first: not counted in flight
        names = [f"ApproximateNumberOfMessages{part}" for part in ("", "Delayed", "NotVisible")]
        try:
            found = self._client.get_queue_attributes(QueueUrl=queue.url, AttributeNames=names)
        except Exception as error:
            raise self._translate(error, queue.name, f"reading the load of {channel!r}") from error
        counts = found.get("Attributes", {})
        visible, delayed, hidden = (
            int(counts[name]) if name in counts else None for name in names
        )  # an attribute the server leaves out is unknown, not 0
        pending = None if visible is None or delayed is None else visible + delayed
        return ChannelStats(pending=pending, in_flight=hidden)

    # ------------------------------------------------------------------ lifecycle

    def flush(self) -> None:
        """Send now the deletes of acknowledged messages that wait to share a call."""
        if self._deletes is not None:
            self._deletes.flush()

    def close(self) -> None:
        """Send the waiting deletes, close the client's connections. Closing again is a no-op;
        other calls then raise."""
        if self._closed:
            return
        self._closed = True
        if self._deletes is not None:
            self._deletes.close()
        close = getattr(self._client, "close", None)
        if close is not None:
            close()

    def _check_open(self, action: str) -> None:
        if self._closed:
            raise TransportClosed(
                f"SqsTransport in region {self.region!r} is closed (while {action}); build a "
                f"new Messaging, or open a new transport."
            )

    def _translate(self, error: Exception, queue: str, action: str) -> Any:
        return translate(error, where=self._where, queue=queue, action=action)

    def __repr__(self) -> str:
        kind = "FIFO " if self._fifo else ""
        return f"SqsTransport({kind}region={self.region!r}, endpoint={self._where.endpoint!r})"
