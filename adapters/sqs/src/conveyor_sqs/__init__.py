"""Amazon SQS for Conveyor: standard and FIFO queues as channels, on boto3.

``SqsChannel("orders")`` is used wherever ``QueueChannel`` is. Leases are visibility timeouts
(renewable), delays are SQS's own up to 15 minutes and completed by the kernel beyond, receives
long-poll and come in batches of up to 10, and every header travels in one message attribute.
Dead letters go to the store the application picks (``Messaging(dead_letters=...)``): see the
README for how an SQS redrive queue relates to it. Importing this package imports no boto3:
only opening a transport does.
"""

from __future__ import annotations

from conveyor_sqs.aio import AsyncSqsTransport
from conveyor_sqs.channel import SqsChannel
from conveyor_sqs.client import ClientSettings
from conveyor_sqs.transport import SQS_MAX_DELAY, SQS_MAX_VISIBILITY, SqsTransport

__all__ = [
    "SqsChannel",
    "SqsTransport",
    "AsyncSqsTransport",
    "ClientSettings",
    "SQS_MAX_DELAY",
    "SQS_MAX_VISIBILITY",
]
