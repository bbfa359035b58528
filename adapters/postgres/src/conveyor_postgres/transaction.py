"""``postgres_transaction``: the application's transaction around Conveyor's units of work.

``Messaging(transaction=postgres_transaction(conn))`` wraps every top-level send, publish and
query, and every attempt at handling a consumed message, in a transaction on the application's
psycopg connection (Ecotone's DBAL transaction). What a handler writes through ``conn``, and
every message it sends through a ``PostgresChannel(connection=conn)``, commit together or not at
all; each instant retry starts afresh, because the kernel asks for a new scope per attempt.

A connection already inside a transaction is joined, not nested: the code that began it decides
whether it commits.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from conveyor.core.errors import ConfigurationError

__all__ = ["postgres_transaction", "PostgresTransaction"]

_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE


def postgres_transaction(connection: object) -> Callable[[], AbstractContextManager[object]]:
    """A transaction factory for ``Messaging(transaction=...)`` on the application's connection.

    Args:
        connection: the application's psycopg ``Connection``, or a zero-argument callable
            returning it (read at the start of every scope, so a connection per thread works).

    Returns:
        A zero-argument callable making one :class:`PostgresTransaction` per unit of work.
    """
    if hasattr(connection, "pgconn"):
        fixed = connection

        def resolve() -> object:
            return fixed

    elif callable(connection):
        resolve = connection
    else:
        raise ConfigurationError(
            f"postgres_transaction() takes the application's psycopg Connection or a callable "
            f"returning it, got {type(connection).__name__}."
        )

    def transaction() -> PostgresTransaction:
        return PostgresTransaction(resolve())

    return transaction


class PostgresTransaction(AbstractContextManager["PostgresTransaction"]):
    """One scope: BEGIN ... COMMIT, or ROLLBACK if the block raises; joins an open transaction.

    Attributes:
        joined: True when the connection was already in a transaction, which this scope joined
            and leaves to its owner to commit or roll back.
    """

    __slots__ = ("_connection", "_inner", "joined")

    def __init__(self, connection: Any) -> None:
        if not hasattr(connection, "pgconn"):
            raise ConfigurationError(
                f"postgres_transaction()'s callable returned {type(connection).__name__}; it "
                f"must return the application's psycopg Connection."
            )
        self._connection = connection
        self._inner: Any = None
        self.joined = False

    def __enter__(self) -> PostgresTransaction:
        connection = self._connection
        if connection.info.transaction_status != _IDLE:
            self.joined = True
            return self
        self._inner = connection.transaction()
        self._inner.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.joined or self._inner is None:
            return
        self._inner.__exit__(exc_type, exc, traceback)

    def __repr__(self) -> str:
        return f"PostgresTransaction({'joined' if self.joined else 'own'})"
