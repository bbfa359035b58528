"""The redis-py client the stores share the shape of: fail fast, name the server on errors."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from conveyor.core.errors import TransportClosed, TransportError
from conveyor_redis.address import RedisAddress, parse_url
from conveyor_redis.errors import translate

if TYPE_CHECKING:
    from redis import Redis

__all__ = ["StoreClient"]


class StoreClient:
    """One client for a store, with its address and a closed flag."""

    __slots__ = ("address", "client", "closed", "owner")

    def __init__(self, url: str, owner: str, *, timeout: timedelta) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.address: RedisAddress = parse_url(url)
        self.owner = owner
        self.closed = False
        self.client: Redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout.total_seconds(),
            socket_timeout=timeout.total_seconds(),
            retry=Retry(NoBackoff(), 1),
        )

    def check_open(self, action: str) -> None:
        if self.closed:
            raise TransportClosed(
                f"cannot {action}: this {self.owner} on {self.address.where()} was closed."
            )

    def failed(self, error: Exception, action: str) -> TransportError:
        from redis.exceptions import RedisError

        if isinstance(error, RedisError):
            return translate(error, self.address, action)
        raise error

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.client.close()
