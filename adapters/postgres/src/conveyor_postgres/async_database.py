"""``AsyncDatabase``: the asyncio twin of :class:`conveyor_postgres.database.Database`.

The same promises: the first use connects once directly (so a wrong DSN fails with libpq's
reason), creates or checks the schema, then serves calls from an ``AsyncConnectionPool`` in
autocommit mode, retrying a call once when its pooled connection turned out broken (a
restarted server). Opening is deferred to the first call, since a constructor cannot await;
the DSN is still parsed at once, so a malformed one fails when the channel is built.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from conveyor.core.errors import TransportClosed
from conveyor_postgres.database import connect_kwargs
from conveyor_postgres.errors import Server, describe, translate
from conveyor_postgres.schema import check_schema_name, ensure_schema_async

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = ["AsyncDatabase"]

T = TypeVar("T")


class AsyncDatabase:
    """A pool of autocommit ``AsyncConnection`` values; see ``Database`` for the arguments."""

    __slots__ = (
        "_closed",
        "_create",
        "_dsn",
        "_kwargs",
        "_max",
        "_min",
        "_opening",
        "_owner",
        "_pool",
        "_timeout",
        "schema",
        "server",
    )

    def __init__(
        self,
        dsn: str,
        *,
        owner: str,
        schema: str,
        create_schema: bool = True,
        min_connections: int = 1,
        max_connections: int = 10,
        connect_timeout: timedelta = timedelta(seconds=5),
    ) -> None:
        self.server: Server = describe(dsn)
        self.schema = check_schema_name(schema)
        if not 0 <= min_connections <= max_connections or max_connections < 1:
            raise ValueError(
                f"min_connections={min_connections} and max_connections={max_connections} must "
                f"satisfy 0 <= min_connections <= max_connections, max_connections >= 1."
            )
        self._dsn = dsn
        self._owner = owner
        self._create = create_schema
        self._min = min_connections
        self._max = max_connections
        self._timeout = connect_timeout.total_seconds()
        self._kwargs = connect_kwargs(connect_timeout)
        self._pool: psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._opening: asyncio.Lock | None = None
        self._closed = False

    async def pool(
        self, action: str
    ) -> psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
        """The pool, opened (and the schema checked) on first use."""
        self.check_open(action)
        if self._pool is not None:
            return self._pool
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                self._pool = await self._open()
            return self._pool

    async def _open(self) -> psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
        import psycopg
        from psycopg_pool import AsyncConnectionPool

        try:
            async with await psycopg.AsyncConnection.connect(self._dsn, **self._kwargs) as first:
                await ensure_schema_async(
                    first, self.schema, server=self.server, create=self._create
                )
        except psycopg.Error as error:
            raise translate(error, self.server, "connecting") from None
        pool: psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            self._dsn,
            min_size=self._min,
            max_size=self._max,
            kwargs=self._kwargs,
            timeout=self._timeout,
            reconnect_timeout=max(self._timeout, 60.0),
            open=False,
            name=f"conveyor-{self._owner}",
        )
        await pool.open()
        return pool

    async def run(
        self, action: str, call: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]
    ) -> T:
        """``call`` on a pooled connection; retried once on a fresh one if the first was broken."""
        import psycopg
        from psycopg_pool import PoolTimeout

        pool = await self.pool(action)
        for attempt in (1, 2):
            connection: psycopg.AsyncConnection[Any] | None = None
            try:
                async with pool.connection() as connection:
                    return await call(connection)
            except psycopg.Error as error:
                if attempt == 1 and connection is not None and connection.broken:
                    await pool.check()
                    continue
                raise translate(error, self.server, action) from None
            except PoolTimeout as error:
                self.check_open(action)
                raise translate(error, self.server, action) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def run_on(
        self,
        connection: psycopg.AsyncConnection[Any],
        action: str,
        call: Callable[[], Awaitable[T]],
    ) -> T:
        """``call`` on the application's connection, errors translated, never retried."""
        import psycopg

        self.check_open(action)
        try:
            return await call()
        except psycopg.Error as error:
            raise translate(error, self.server, action) from None

    def check_open(self, action: str) -> None:
        if self._closed:
            raise TransportClosed(
                f"{self._owner} on {self.server} is closed, so it cannot be used for {action}. "
                f"Create a new {self._owner} to continue."
            )

    async def close(self) -> None:
        """Close the pool; closing twice is allowed, any other later use is refused."""
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            await self._pool.close(timeout=1.0)
