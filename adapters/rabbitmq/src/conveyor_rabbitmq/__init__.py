"""RabbitMQ for Conveyor: a durable channel with publisher confirms, sync (py-amqp) and asyncio.

``RabbitMQChannel("orders", url="amqp://user:password@host:5672/")`` works wherever a
``QueueChannel`` does. Importing this package imports no client library; py-amqp is imported when
a sync transport connects, aio-pika when an asyncio transport does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor_rabbitmq.address import BrokerAddress, parse_url
from conveyor_rabbitmq.channel import RabbitMQChannel
from conveyor_rabbitmq.topology import MAX_DELAY, QueueType

if TYPE_CHECKING:
    from conveyor_rabbitmq.async_transport import AsyncRabbitMQTransport
    from conveyor_rabbitmq.transport import RabbitMQTransport

__all__ = [
    "RabbitMQChannel",
    "RabbitMQTransport",
    "AsyncRabbitMQTransport",
    "QueueType",
    "MAX_DELAY",
    "BrokerAddress",
    "parse_url",
]


def __getattr__(name: str) -> object:
    # The transports import no client at module level either, but keeping them out of
    # the package import keeps `import conveyor_rabbitmq` as light as a channel definition.
    if name == "RabbitMQTransport":
        from conveyor_rabbitmq.transport import RabbitMQTransport

        return RabbitMQTransport
    if name == "AsyncRabbitMQTransport":
        from conveyor_rabbitmq.async_transport import AsyncRabbitMQTransport

        return AsyncRabbitMQTransport
    raise AttributeError(f"module 'conveyor_rabbitmq' has no attribute {name!r}")
