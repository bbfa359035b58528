"""``Database``: one psycopg connection pool to one server, with Conveyor's schema in place.

Opening it makes one direct connection first, so a wrong host, port, database, role or password
is reported at once with libpq's own reason (a pool would only say that it timed out), and
creates or checks the schema on it. Then a pool in autocommit mode serves every call: each
statement of the transports is atomic on its own, and a pool shares a handful of connections
among every channel and thread of one ``Messaging``.

A restarted server leaves every pooled connection broken. :meth:`Database.run` notices a broken
connection, has the pool check (and replace) its idle connections, and runs the call once more,
so the first call after a restart succeeds instead of failing once per pooled connection. A
call that fails twice raises ``ConnectionFailed`` naming the server, never its password.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from conveyor.core.errors import TransportClosed
from conveyor_postgres.errors import Server, describe, translate
from conveyor_postgres.schema import check_schema_name, ensure_schema

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = ["Database", "connect_kwargs"]

T = TypeVar("T")


def connect_kwargs(connect_timeout: timedelta) -> dict[str, Any]:
    """Options of every connection Conveyor opens itself."""
    seconds = max(1, round(connect_timeout.total_seconds()))
    return {"autocommit": True, "connect_timeout": seconds, "application_name": "conveyor"}


class Database:
    """A thread-safe pool of autocommit connections to the server ``dsn`` names.

    Args:
        dsn: a PostgreSQL URL or libpq string.
        owner: the class using it, named in errors ("PostgresTransport").
        schema: the PostgreSQL schema holding Conveyor's tables.
        create_schema: create or upgrade the tables if missing or older; False only checks.
        min_connections: connections the pool keeps open.
        max_connections: the most it opens (consumers waiting in a long poll hold one each).
        connect_timeout: how long to wait for the server, and for a free pooled connection.
    """

    __slots__ = (
        "_closed",
        "_error",
        "_kwargs",
        "_lock",
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
        import psycopg
        from psycopg_pool import ConnectionPool

        self.server: Server = describe(dsn)
        self.schema = check_schema_name(schema)
        if not 0 <= min_connections <= max_connections or max_connections < 1:
            raise ValueError(
                f"min_connections={min_connections} and max_connections={max_connections} must "
                f"satisfy 0 <= min_connections <= max_connections, max_connections >= 1."
            )
        self._owner = owner
        self._error = psycopg.Error
        self._timeout = connect_timeout.total_seconds()
        self._kwargs = connect_kwargs(connect_timeout)
        self._lock = threading.Lock()
        self._closed = False
        try:
            with psycopg.connect(dsn, **self._kwargs) as first:
                ensure_schema(first, schema, server=self.server, create=create_schema)
        except psycopg.Error as error:
            raise translate(error, self.server, "connecting") from None
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            dsn,
            min_size=min_connections,
            max_size=max_connections,
            kwargs=self._kwargs,
            timeout=self._timeout,
            reconnect_timeout=max(self._timeout, 60.0),
            open=True,
            name=f"conveyor-{owner}",
        )

    def run(self, action: str, call: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``call`` on a pooled connection; retried once on a fresh one if the first was broken.

        Args:
            action: what the call does, as a phrase for error messages.
        """
        from psycopg_pool import PoolTimeout

        self.check_open(action)
        for attempt in (1, 2):
            connection: psycopg.Connection[Any] | None = None
            try:
                with self._pool.connection() as connection:
                    return call(connection)
            except self._error as error:
                if attempt == 1 and connection is not None and connection.broken:
                    self._pool.check()  # drop every idle connection the restart broke too
                    continue
                raise translate(error, self.server, action) from None
            except PoolTimeout as error:
                self.check_open(action)
                raise translate(error, self.server, action) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def run_on(self, connection: psycopg.Connection[Any], action: str, call: Callable[[], T]) -> T:
        """``call`` on a connection the application owns (never retried: its transaction is
        the application's), with psycopg's errors translated."""
        self.check_open(action)
        try:
            return call()
        except self._error as error:
            raise translate(error, self.server, action) from None

    def connection(self) -> psycopg_pool.ConnectionPool[psycopg.Connection[Any]]:
        """The pool itself, for a call that holds a connection across statements (LISTEN)."""
        return self._pool

    def translate(self, error: Exception, action: str) -> Exception:
        """``error`` as Conveyor's error, naming this server."""
        return translate(error, self.server, action)

    def check_open(self, action: str) -> None:
        """Raise ``TransportClosed`` after :meth:`close`."""
        if self._closed:
            raise TransportClosed(
                f"{self._owner} on {self.server} is closed, so it cannot be used for {action}. "
                f"Create a new {self._owner} to continue."
            )

    def close(self) -> None:
        """Close the pool; closing twice is allowed, any other later use is refused."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._pool.close(timeout=1.0)

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"Database({self.server}, {'closed' if self._closed else 'open'})"
