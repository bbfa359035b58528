"""``RedisTransport``: durable channels on a Redis server, shared by threads and processes.

Each channel is a few keys (see ``keys``) worked on by one Lua script per verb (see
``scripts``), so every step is atomic on the server: a receive leases what it returns in the
same step, an ack deletes only while the receipt's lease still holds, a delayed message moves to
the ready set when due. A consumer that dies leaves a lease that runs out: at least once,
nothing lost. A blocking receive waits on the channel's wake list (``BLPOP``) until a send, the
next due message, or its deadline.

One transport is one redis-py client with its connection pool, safe for many threads; channels
naming the same server share it (``RedisChannel.transport_key``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from conveyor.core.clock import Clock
from conveyor.core.errors import ConnectionFailed, TransportError
from conveyor.transports.seam import (
    Capabilities,
    ChannelOptions,
    ChannelStats,
    Delivery,
    WireMessage,
)
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
    from redis import Redis
    from redis.commands.core import Script

__all__ = ["RedisTransport"]

log = logging.getLogger("conveyor.redis")


class RedisTransport:
    """An inspectable, renewable, durable transport on one Redis server.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS) or
            ``unix:///path.sock``. The password is used to connect and never printed.
        clock: where due times, leases and expiries are read from.
        prefix: the first part of every key, keeping Conveyor's keys apart from others.
        max_size: the largest message in bytes (body plus headers), or None for no limit
            but the server's own (``proto-max-bulk-len``, 512 MB by default).
        native_ttl: drop a message whose ``expires_at`` passed on the server, without
            delivering it. Off by default: the kernel checks expiry on receipt, records it,
            and can dead-letter it (``dead_letter_expired``), which dropping would prevent.
        connect_timeout: how long to wait for a connection to open.
        socket_timeout: how long to wait for any reply; a blocking receive waits in steps
            shorter than it.
        reconnect: how a receive waits out a lost connection (see :class:`Reconnect`).
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
        "_stats",
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
        self._send: Script = register(scripts.SEND)
        self._receive: Script = register(scripts.RECEIVE)
        self._ack: Script = register(scripts.ACK)
        self._release: Script = register(scripts.RELEASE)
        self._renew: Script = register(scripts.RENEW)
        self._inspect: Script = register(scripts.INSPECT)
        self._stats: Script = register(scripts.STATS)

    @property
    def address(self) -> RedisAddress:
        """The server, as errors and logs name it."""
        return self._address

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def declare(self, options: ChannelOptions) -> None:
        """Check the name and that the server answers. Keys appear with the first message.

        The first declare also reads the server's ``appendonly`` setting and warns when it is
        off: then a restart of Redis loses what was sent since its last snapshot.
        """
        self._check_open("declare a channel")
        self._keys_of(options.name)
        if self._probed:
            return
        action = f"declaring channel {options.name!r}"
        try:
            self._client.ping()
            self._probed = True
            self._warn_if_not_durable()
        except Exception as error:
            raise self._translated(error, action) from error

    def _warn_if_not_durable(self) -> None:
        from redis.exceptions import ResponseError

        try:
            reply = self._client.config_get("appendonly")
        except ResponseError:  # CONFIG is often disabled on managed servers: nothing to say
            return
        setting = reply.get("appendonly", reply.get(b"appendonly"))  # type: ignore[call-overload]
        if setting in ("no", b"no"):
            log.warning(
                "%s runs with appendonly no: messages sent since its last snapshot are lost "
                "if Redis restarts. Turn on appendonly (appendfsync everysec or always) for "
                "durable channels.",
                self._address.where(),
            )

    def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        if self._closed:
            raise closed(self._address, f"send to channel {channel!r}")
        check_size(message, self._capabilities.max_size, self._address, channel)
        if priority:
            check_priority(priority)
        keys = self._keys.get(channel) or self._keys_of(channel)
        now_ms = to_ms(self._clock.now())
        due_ms = now_ms if available_at is None else to_ms(available_at, round_up=True)
        expiry = "" if expires_at is None else to_ms(expires_at, round_up=True)
        try:
            self._send(keys.all, (encode(message), now_ms, due_ms, priority, expiry))
        except Exception as error:
            raise self._translated(error, f"sending to channel {channel!r}") from error

    def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        """Lease up to ``max_messages`` due messages; with ``wait``, block for the first.

        A lost connection is retried as :class:`Reconnect` says, each attempt logged, before
        ``ConnectionFailed`` is raised.
        """
        if self._closed:
            raise closed(self._address, f"receive from channel {channel!r}")
        check_receive(lease, max_messages)
        keys = self._keys.get(channel) or self._keys_of(channel)
        lease_ms = duration_ms(lease)
        deadline_ms = None if wait is None else to_ms(self._clock.now() + wait)
        while True:
            now_ms = to_ms(self._clock.now())
            args = (now_ms, now_ms + lease_ms, max_messages, self._native_ttl)
            reply = self._consuming(channel, partial(self._receive, keys.all, args))
            if len(reply) > 1 or deadline_ms is None:
                return deliveries_of(channel, reply)
            block = block_seconds(now_ms, deadline_ms, int(reply[0]), self._longest_block)
            if block <= 0:
                return []
            self._consuming(channel, partial(self._client.blpop, [keys.wake], timeout=block))

    def _consuming(self, channel: str, call: Any) -> Any:
        """Run a consumer's call, waiting out lost connections as ``Reconnect`` says."""
        attempt = 0
        started = self._clock.now()
        while True:
            try:
                result = call()
            except Exception as error:
                if self._closed:
                    raise closed(self._address, f"receive from channel {channel!r}") from error
                failure = self._translated(error, f"receiving from channel {channel!r}")
                if not is_connection_error(error):
                    raise failure from error
                attempt += 1
                waited = self._clock.now() - started
                limit = self._reconnect.give_up_after
                if limit is not None and waited >= limit:
                    log.error("giving up on %s after %d attempts: %s", self._address.where(),
                              attempt, failure)  # fmt: skip
                    raise failure from error
                pause = self._reconnect.pause(attempt)
                log.warning(
                    "lost %s (attempt %d, receiving from channel %r); retrying in %.1f s",
                    self._address.where(), attempt, channel, pause.total_seconds(),
                )  # fmt: skip
                self._clock.sleep(pause.total_seconds())
                continue
            if attempt:
                log.info("reconnected to %s after %d failed attempts", self._address.where(),
                         attempt)  # fmt: skip
            return result

    def ack(self, delivery: Delivery) -> None:
        self._settle(self._ack, delivery, (), "ack")

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        now_ms = to_ms(self._clock.now())
        due_ms = now_ms if available_at is None else to_ms(available_at, round_up=True)
        self._settle(self._release, delivery, (now_ms, due_ms), "release")

    def renew(self, delivery: Delivery, *, lease: timedelta) -> None:
        """Extend the lease of ``delivery`` to ``lease`` from now (for long handlers)."""
        check_receive(lease, 1)
        until = to_ms(self._clock.now()) + duration_ms(lease)
        self._settle(self._renew, delivery, (until,), "renew")

    def _settle(
        self, script: Script, delivery: Delivery, extra: tuple[int, ...], verb: str
    ) -> None:
        if self._closed:
            raise closed(self._address, f"{verb} a delivery on channel {delivery.channel!r}")
        message_id, count = parse_receipt(delivery)
        keys = self._keys.get(delivery.channel) or self._keys_of(delivery.channel)
        try:
            result = script(keys.all, (message_id, count, *extra))
        except Exception as error:
            action = f"{verb} of message {message_id} on channel {delivery.channel!r}"
            raise self._translated(error, action) from error
        if result != 1:
            raise stale(delivery, self._address, result, verb)

    def pending(self, channel: str) -> int:
        """Messages stored on the channel: due, delayed or leased."""
        return int(self._inspected(channel)[0])

    def next_due(self, channel: str) -> datetime | None:
        """Now if a message is due, else the earliest delayed message or lease expiry."""
        _, due, delayed, leased = self._inspected(channel)
        if int(due) > 0:
            return self._clock.now()
        candidates = [int(float(v)) for v in (delayed, leased) if int(float(v)) >= 0]
        return from_ms(min(candidates)) if candidates else None

    def stats(self, channel: str) -> ChannelStats:
        """Pending and in flight; the age of the oldest is unknown (the ready set keeps no
        times, only priorities)."""
        if self._closed:
            raise closed(self._address, f"read the load of channel {channel!r}")
        keys = self._keys.get(channel) or self._keys_of(channel)
        try:
            stored, leased = self._stats(keys.all, (to_ms(self._clock.now()),))
        except Exception as error:
            raise self._translated(error, f"reading the load of channel {channel!r}") from error
        return ChannelStats(pending=int(stored) - int(leased), in_flight=int(leased))

    def _inspected(self, channel: str) -> list[Any]:
        if self._closed:
            raise closed(self._address, f"inspect channel {channel!r}")
        keys = self._keys.get(channel) or self._keys_of(channel)
        try:
            return list(self._inspect(keys.all, ()))
        except Exception as error:
            raise self._translated(error, f"inspecting channel {channel!r}") from error

    def close(self) -> None:
        """Close the connection pool. Closing again is allowed; every other later call raises."""
        if self._closed:
            return
        self._closed = True
        self._client.close()

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
        return f"RedisTransport({self._address.where()!r}, prefix={self._prefix!r})"


def _client(url: str, connect_timeout: timedelta, socket_timeout: timedelta) -> Redis:
    """A redis-py client that fails fast: one immediate retry (a pooled connection that went
    stale across a server restart), then the error, so a send to a dead server raises at once."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        socket_connect_timeout=connect_timeout.total_seconds(),
        socket_timeout=socket_timeout.total_seconds(),
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )
