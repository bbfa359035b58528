"""Which SQS queue is a channel's: its name, its URL, and the size limit read from it.

A channel named ``orders`` is the queue ``<queue_prefix>orders`` (``.fifo`` added on a FIFO
transport). Declaring it creates the queue when missing, or only looks it up for queues made
elsewhere (Terraform, CloudFormation, credentials without ``sqs:CreateQueue``), and reads its
``MaximumMessageSize`` attribute: the limit is the queue's, never a constant, because an
operator may lower it below SQS's 1 MiB. Kept apart from the transport so that the verbs there
only move messages.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.core.errors import ConfigurationError
from conveyor.transports.seam import ChannelOptions
from conveyor_sqs import wire
from conveyor_sqs.errors import Where, translate

__all__ = ["Queue", "QueueDirectory", "DEFAULT_MAXIMUM"]

DEFAULT_MAXIMUM = 1_048_576
"""SQS's ``MaximumMessageSize`` for a queue created without one: 1 MiB."""

_QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")


@dataclass(frozen=True, slots=True)
class Queue:
    """A declared channel's queue.

    Attributes:
        name: the SQS queue name (errors name the queue by it, never by its URL, which holds
            the account id).
        url: what every call on the queue takes.
        maximum: its ``MaximumMessageSize`` in bytes, as SQS counts them.
        group_header: on a FIFO queue, the header whose value is the message group.
        default_group: the group of messages without that header: the channel's name.
    """

    name: str
    url: str
    maximum: int
    group_header: str | None
    default_group: str

    @property
    def limit(self) -> int:
        """The largest ``WireMessage.size`` promised to fit (see ``wire.wire_limit``)."""
        return wire.wire_limit(self.maximum)


class QueueDirectory:
    """The queues of one transport's channels, declared once each; safe for many threads.

    Args:
        client: the boto3 SQS client.
        where: region and endpoint, for error messages.
        prefix: put before every channel name.
        fifo: every queue is a FIFO queue.
        create: create missing queues; False only looks them up.
        attributes: attributes of the queues this directory creates.
    """

    def __init__(
        self,
        client: Any,
        where: Where,
        *,
        prefix: str,
        fifo: bool,
        create: bool,
        attributes: Mapping[str, str],
    ) -> None:
        self._client = client
        self._where = where
        self._prefix = prefix
        self._fifo = fifo
        self._create = create
        self._attributes = dict(attributes)
        if fifo:
            self._attributes["FifoQueue"] = "true"
        self._queues: dict[str, Queue] = {}
        self._lock = threading.Lock()

    def name(self, channel: str) -> str:
        """The SQS queue name of ``channel``."""
        return f"{self._prefix}{channel}{'.fifo' if self._fifo else ''}"

    def declare(self, options: ChannelOptions) -> Queue:
        """Create (or look up) the channel's queue and read its size limit."""
        name = self.name(options.name)
        if not _QUEUE_NAME.fullmatch(name.removesuffix(".fifo")):
            raise ConfigurationError(
                f"channel {options.name!r} makes the SQS queue name {name!r}, which SQS "
                f"refuses: up to 80 letters, digits, '-' and '_' (with the prefix, and '.fifo' "
                f"on FIFO queues). Rename the channel or change queue_prefix."
            )
        try:
            if self._create:
                url = self._client.create_queue(QueueName=name, Attributes=self._attributes)
            else:
                url = self._client.get_queue_url(QueueName=name)
            found = self._client.get_queue_attributes(
                QueueUrl=url["QueueUrl"], AttributeNames=["MaximumMessageSize"]
            )["Attributes"]
        except Exception as error:
            action = f"declaring channel {options.name!r}"
            raise translate(error, where=self._where, queue=name, action=action) from error
        queue = Queue(
            name=name,
            url=url["QueueUrl"],
            maximum=int(found.get("MaximumMessageSize", DEFAULT_MAXIMUM)),
            group_header=options.fifo_group_header,
            default_group=options.name,
        )
        with self._lock:
            self._queues[options.name] = queue
        return queue

    def get(self, channel: str) -> Queue | None:
        """The declared queue of ``channel``, or None."""
        return self._queues.get(channel)

    def smallest_limit(self) -> int:
        """The smallest message limit of the queues declared so far, or of the queues this
        directory would create when none is."""
        with self._lock:
            limits = [queue.limit for queue in self._queues.values()]
        maximum = int(self._attributes.get("MaximumMessageSize", DEFAULT_MAXIMUM))
        return min(limits, default=wire.wire_limit(maximum))
