"""``SqsChannel``: a channel definition whose messages are SQS messages."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from conveyor.core.clock import Clock
from conveyor.transports.channels import Channel
from conveyor.transports.seam import AsyncTransport, ChannelOptions, Transport
from conveyor_sqs.client import ClientSettings
from conveyor_sqs.deletes import DEFAULT_ACK_DELAY
from conveyor_sqs.seconds import SQS_MAX_DELAY

__all__ = ["SqsChannel"]


@dataclass(frozen=True, kw_only=True)
class SqsChannel(Channel):
    """A channel on an SQS queue, usable wherever ``QueueChannel`` is.

    Credentials, region and endpoint come from the usual boto3 configuration unless given
    here. Channels with equal connection settings (endpoint, region, profile, prefix, FIFO or
    not, ...) share one transport and one boto3 client inside a ``Messaging``::

        SqsChannel("orders", region="eu-west-1", queue_prefix="shop-prod-")
        SqsChannel("payments", fifo=True, group_header="customer_id")

    Attributes:
        endpoint_url: an SQS-compatible endpoint (an emulator); None for AWS (or
            ``AWS_ENDPOINT_URL_SQS``).
        region: the AWS region; None for boto3's default (``AWS_DEFAULT_REGION``).
        profile: an AWS profile name; None for boto3's default credential chain.
        queue_prefix: put before the channel name to make the queue name.
        fifo: a FIFO queue (its name ends in ``.fifo``): messages of one group in send order.
        group_header: on a FIFO queue, the header whose value is the message group; messages
            without it, or every message when None, share one group named after the channel.
        create_queue: create the queue when missing; False only looks it up.
        queue_attributes: attributes of a queue the channel creates, such as
            ``{"MessageRetentionPeriod": "1209600", "MaximumMessageSize": "262144"}``.
        max_delay: the longest delay given to SQS (at most 15 minutes); the kernel sends a
            longer-delayed message on each time it comes back, until it is due.
        max_pool_connections: HTTP connections of the shared client; at least the number of
            consumers and async tasks receiving at once.
        async_threads: threads of the asyncio transport's executor (see ``AsyncSqsTransport``).
        ack_delay: how long an ack may wait so that up to 10 share one ``DeleteMessageBatch``
            (at most 500 ms); ``timedelta(0)`` deletes each message as it is acknowledged.
    """

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    queue_prefix: str = ""
    fifo: bool = False
    group_header: str | None = None
    create_queue: bool = True
    queue_attributes: Mapping[str, str] | None = None
    max_delay: timedelta = SQS_MAX_DELAY
    max_pool_connections: int = 20
    async_threads: int = 16
    ack_delay: timedelta = DEFAULT_ACK_DELAY

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.group_header is not None and not self.fifo:
            from conveyor.core.errors import ConfigurationError

            raise ConfigurationError(
                f"SqsChannel({self.name!r}) has group_header={self.group_header!r} but is not "
                f"FIFO; message groups exist only on FIFO queues. Pass fifo=True, or drop "
                f"group_header."
            )

    def settings(self) -> ClientSettings:
        return ClientSettings(
            endpoint_url=self.endpoint_url,
            region=self.region,
            profile=self.profile,
            max_pool_connections=self.max_pool_connections,
        )

    def transport_key(self) -> Hashable:
        """Channels with the same client and queue settings share one transport."""
        return (
            SqsChannel,
            self.settings(),
            self.queue_prefix,
            self.fifo,
            self.create_queue,
            tuple(sorted((self.queue_attributes or {}).items())),
            self.max_delay,
            self.ack_delay,
        )

    def channel_options(self) -> ChannelOptions:
        return ChannelOptions(self.name, lease=self.lease, fifo_group_header=self.group_header)

    def open(self, clock: Clock) -> Transport:
        from conveyor_sqs.transport import SqsTransport

        return SqsTransport(
            clock=clock,
            settings=self.settings(),
            queue_prefix=self.queue_prefix,
            fifo=self.fifo,
            create_queues=self.create_queue,
            queue_attributes=self.queue_attributes,
            max_delay=self.max_delay,
            ack_delay=self.ack_delay,
        )

    def open_async(self, clock: Clock) -> AsyncTransport:
        from conveyor_sqs.aio import AsyncSqsTransport

        return AsyncSqsTransport(self.open(clock), threads=self.async_threads)  # type: ignore[arg-type]
