"""``AsyncRedisTransport``: the asyncio twin of ``RedisTransport``, on ``redis.asyncio``.

The same scripts with the same arguments, so the same semantics (see ``transport``): atomic
leases, fenced acks, delays and priorities in sorted sets, a long poll on the wake list. Only
the waiting is awaited. Pauses between reconnect attempts go through the injected clock's
``sleep`` in a worker thread, so a virtual clock steps over them as it does in the sync driver.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from conveyor.core.clock import Clock
from conveyor.core.errors import ConnectionFailed, TransportError
from conveyor.transports.seam import Capabilities, ChannelOptions, Delivery, WireMessage
from conveyor_redis import scripts
from conveyor_redis.address import RedisAddress, parse_url
from conveyor_redis.envelope import encode
from conveyor_redis.errors import is_connection_error, translate
from conveyor_redis.instants import duration_ms, from_ms, to_ms
from conveyor_redis.keys import ChannelKeys, channel_keys
from conveyor_redis.reconnect import Reconnect
from conveyor_redis.replies import (
    block_seconds,
    capabilities_of,
    check_priority,
    check_receive,
    check_size,
    closed,
    deliveries_of,
    parse_receipt,
    stale,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["AsyncRedisTransport"]

log = logging.getLogger("conveyor.redis")


class AsyncRedisTransport:
    """The asyncio transport on one Redis server; the arguments are ``RedisTransport``'s.

    Safe for many tasks of one event loop; open one per loop.
    """

    __slots__ = (
        "_ack",
        "_address",
        "_capabilities",
        "_client",
        "_clock",
        "_closed",
        "_inspect",
        "_keys",
        "_longest_block",
        "_native_ttl",
        "_prefix",
        "_probed",
        "_receive",
        "_reconnect",
        "_release",
        "_renew",
        "_send",
    )

    def __init__(
        self,
        url: str,
        *,
        clock: Clock,
        prefix: str = "conveyor",
        max_size: int | None = None,
        native_ttl: bool = False,
        connect_timeout: timedelta = timedelta(seconds=5),
        socket_timeout: timedelta = timedelta(seconds=10),
        reconnect: Reconnect | None = None,
    ) -> None:
        self._address: RedisAddress = parse_url(url)
        self._capabilities = capabilities_of(max_size=max_size, native_ttl=native_ttl)
        self._clock = clock
        self._prefix = prefix
        self._native_ttl = "1" if native_ttl else "0"
        self._reconnect = reconnect or Reconnect()
        self._longest_block = min(socket_timeout.total_seconds() / 2, 5.0)
        self._keys: dict[str, ChannelKeys] = {}
        self._closed = False
        self._probed = False
        self._client = _client(url, connect_timeout, socket_timeout)
        register = self._client.register_script
        self._send: AsyncScript = register(scripts.SEND)
        self._receive: AsyncScript = register(scripts.RECEIVE)
        self._ack: AsyncScript = register(scripts.ACK)
        self._release: AsyncScript = register(scripts.RELEASE)
        self._renew: AsyncScript = register(scripts.RENEW)
        self._inspect: AsyncScript = register(scripts.INSPECT)

    @property
    def address(self) -> RedisAddress:
        return self._address

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def declare(self, options: ChannelOptions) -> None:
        """Check the name and that the server answers (see ``RedisTransport.declare``)."""
        self._check_open("declare a channel")
        self._keys_of(options.name)
        if self._probed:
            return
        try:
            await self._client.ping()
        except Exception as error:
            raise self._translated(error, f"declaring channel {options.name!r}") from error
        self._probed = True

    async def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        self._check_open(f"send to channel {channel!r}")
        check_size(message, self._capabilities.max_size, self._address, channel)
        if priority:
            check_priority(priority)
        keys = self._keys.get(channel) or self._keys_of(channel)
        now_ms = to_ms(self._clock.now())
        due_ms = now_ms if available_at is None else to_ms(available_at, round_up=True)
        expiry = "" if expires_at is None else to_ms(expires_at, round_up=True)
        try:
            await self._send(keys.all, (encode(message), now_ms, due_ms, priority, expiry))
        except Exception as error:
            raise self._translated(error, f"sending to channel {channel!r}") from error

    async def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        self._check_open(f"receive from channel {channel!r}")
        check_receive(lease, max_messages)
        keys = self._keys.get(channel) or self._keys_of(channel)
        lease_ms = duration_ms(lease)
        deadline_ms = None if wait is None else to_ms(self._clock.now() + wait)
        while True:
            now_ms = to_ms(self._clock.now())
            args = (now_ms, now_ms + lease_ms, max_messages, self._native_ttl)
            reply = await self._consuming(channel, partial(self._receive, keys.all, args))
            if len(reply) > 1 or deadline_ms is None:
                return deliveries_of(channel, reply)
            block = block_seconds(now_ms, deadline_ms, int(reply[0]), self._longest_block)
            if block <= 0:
                return []
            await self._consuming(channel, partial(self._client.blpop, [keys.wake], timeout=block))

    async def _consuming(self, channel: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """Await a consumer's call, waiting out lost connections as ``Reconnect`` says."""
        attempt = 0
        started = self._clock.now()
        while True:
            try:
                result = await call()
            except Exception as error:
                if self._closed:
                    raise closed(self._address, f"receive from channel {channel!r}") from error
                failure = self._translated(error, f"receiving from channel {channel!r}")
                if not is_connection_error(error):
                    raise failure from error
                attempt += 1
                limit = self._reconnect.give_up_after
                if limit is not None and self._clock.now() - started >= limit:
                    log.error("giving up on %s after %d attempts: %s", self._address.where(),
                              attempt, failure)  # fmt: skip
                    raise failure from error
                pause = self._reconnect.pause(attempt)
                log.warning(
                    "lost %s (attempt %d, receiving from channel %r); retrying in %.1f s",
                    self._address.where(), attempt, channel, pause.total_seconds(),
                )  # fmt: skip
                await asyncio.to_thread(self._clock.sleep, pause.total_seconds())
                continue
            if attempt:
                log.info("reconnected to %s after %d failed attempts", self._address.where(),
                         attempt)  # fmt: skip
            return result

    async def ack(self, delivery: Delivery) -> None:
        await self._settle(self._ack, delivery, (), "ack")

    async def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        now_ms = to_ms(self._clock.now())
        due_ms = now_ms if available_at is None else to_ms(available_at, round_up=True)
        await self._settle(self._release, delivery, (now_ms, due_ms), "release")

    async def renew(self, delivery: Delivery, *, lease: timedelta) -> None:
        check_receive(lease, 1)
        until = to_ms(self._clock.now()) + duration_ms(lease)
        await self._settle(self._renew, delivery, (until,), "renew")

    async def _settle(
        self, script: AsyncScript, delivery: Delivery, extra: tuple[int, ...], verb: str
    ) -> None:
        self._check_open(f"{verb} a delivery on channel {delivery.channel!r}")
        message_id, count = parse_receipt(delivery)
        keys = self._keys.get(delivery.channel) or self._keys_of(delivery.channel)
        try:
            result = await script(keys.all, (message_id, count, *extra))
        except Exception as error:
            action = f"{verb} of message {message_id} on channel {delivery.channel!r}"
            raise self._translated(error, action) from error
        if result != 1:
            raise stale(delivery, self._address, result, verb)

    async def pending(self, channel: str) -> int:
        return int((await self._inspected(channel))[0])

    async def next_due(self, channel: str) -> datetime | None:
        _, due, delayed, leased = await self._inspected(channel)
        if int(due) > 0:
            return self._clock.now()
        candidates = [int(float(v)) for v in (delayed, leased) if int(float(v)) >= 0]
        return from_ms(min(candidates)) if candidates else None

    async def _inspected(self, channel: str) -> list[Any]:
        self._check_open(f"inspect channel {channel!r}")
        keys = self._keys.get(channel) or self._keys_of(channel)
        try:
            return list(await self._inspect(keys.all, ()))
        except Exception as error:
            raise self._translated(error, f"inspecting channel {channel!r}") from error

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._client.aclose()

    def _keys_of(self, channel: str) -> ChannelKeys:
        keys = self._keys[channel] = channel_keys(self._prefix, channel)
        return keys

    def _check_open(self, action: str) -> None:
        if self._closed:
            raise closed(self._address, action)

    def _translated(self, error: Exception, action: str) -> TransportError:
        if isinstance(error, TransportError):
            return error
        from redis.exceptions import RedisError

        if isinstance(error, RedisError):
            return translate(error, self._address, action)
        if isinstance(error, OSError):
            return ConnectionFailed(f"cannot reach {self._address.where()} while {action}: {error}")
        raise error

    def __repr__(self) -> str:
        return f"AsyncRedisTransport({self._address.where()!r}, prefix={self._prefix!r})"


def _client(url: str, connect_timeout: timedelta, socket_timeout: timedelta) -> Redis:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return Redis.from_url(
        url,
        socket_connect_timeout=connect_timeout.total_seconds(),
        socket_timeout=socket_timeout.total_seconds(),
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )
