"""``RedisChannel``: a channel definition whose messages live on a Redis server."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import timedelta

from conveyor.core.clock import Clock
from conveyor.transports.channels import Channel
from conveyor.transports.seam import AsyncTransport, Transport
from conveyor_redis.address import parse_url
from conveyor_redis.reconnect import Reconnect

__all__ = ["RedisChannel"]


@dataclass(frozen=True, kw_only=True)
class RedisChannel(Channel):
    """A durable channel on Redis, usable wherever ``QueueChannel`` is, sync or asyncio.

    Channels with the same ``url`` and settings share one client (one connection pool) inside
    a ``Messaging``: ten channels on one server are one client. Several processes may consume
    one channel; a received message is leased and comes back if its consumer dies::

        RedisChannel("orders", url="redis://127.0.0.1:6379/0")

    Attributes:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS, or
            ``unix:///path.sock``; checked when the channel is defined. Never printed.
        prefix: the first part of every key of the channel.
        max_size: the largest message in bytes (body plus headers), or None.
        native_ttl: let Redis drop expired messages unseen (see ``RedisTransport``).
        connect_timeout: how long opening a connection may take.
        socket_timeout: how long any reply may take.
        reconnect: how a consumer waits out a lost connection.
    """

    url: str = field(repr=False)
    prefix: str = "conveyor"
    max_size: int | None = None
    native_ttl: bool = False
    connect_timeout: timedelta = timedelta(seconds=5)
    socket_timeout: timedelta = timedelta(seconds=10)
    reconnect: Reconnect = field(default_factory=Reconnect)

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_url(self.url)  # a URL that cannot work fails here, not at the first send

    def transport_key(self) -> Hashable:
        """Channels on one server with the same settings share one transport (one client)."""
        return (
            RedisChannel,
            self.url,
            self.prefix,
            self.max_size,
            self.native_ttl,
            self.connect_timeout,
            self.socket_timeout,
            self.reconnect,
        )

    def open(self, clock: Clock) -> Transport:
        from conveyor_redis.transport import RedisTransport

        return RedisTransport(
            self.url,
            clock=clock,
            prefix=self.prefix,
            max_size=self.max_size,
            native_ttl=self.native_ttl,
            connect_timeout=self.connect_timeout,
            socket_timeout=self.socket_timeout,
            reconnect=self.reconnect,
        )

    def open_async(self, clock: Clock) -> AsyncTransport:
        from conveyor_redis.aio import AsyncRedisTransport

        return AsyncRedisTransport(
            self.url,
            clock=clock,
            prefix=self.prefix,
            max_size=self.max_size,
            native_ttl=self.native_ttl,
            connect_timeout=self.connect_timeout,
            socket_timeout=self.socket_timeout,
            reconnect=self.reconnect,
        )
