"""``sqlite_transaction``: the application's SQLite transaction around Conveyor's units of work.

``Messaging(transaction=sqlite_transaction(conn))`` wraps every top-level send, publish and
query, and every attempt at handling a consumed message, in a transaction on the application's
connection (Ecotone's DBAL transaction, reference section 8.12). What a handler writes through
``conn``, and every message it sends through a ``SqliteChannel(connection=conn)``, then commits
together or not at all; each instant retry starts afresh, because the kernel asks the factory
for a new scope per attempt.

A connection already inside a transaction is joined, not nested: the code that began it decides
whether it commits. Beware that Python's ``sqlite3`` (3.11, default ``isolation_level``) begins
a transaction only at the first write, so inside ``with conn:`` nothing is open until then; a
send made before that write runs in its own transaction here. Write first, or begin explicitly.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING

from conveyor.core.errors import ConfigurationError
from conveyor_sqlite.application import ConnectionSource, translate_application

if TYPE_CHECKING:
    import sqlite3

__all__ = ["sqlite_transaction", "SqliteTransaction"]


def sqlite_transaction(
    connection: ConnectionSource,
) -> Callable[[], AbstractContextManager[object]]:
    """A transaction factory for ``Messaging(transaction=...)`` on the application's connection.

    Args:
        connection: the application's ``sqlite3.Connection``, or a zero-argument callable
            returning it (read at the start of every scope, so a connection per thread works).
            Both ``isolation_level`` styles work: the default (implicit ``BEGIN`` before a
            write) and ``None`` (explicit transactions).

    Returns:
        A zero-argument callable making one :class:`SqliteTransaction` per unit of work.
    """
    import sqlite3

    if isinstance(connection, sqlite3.Connection):
        _refuse_pep249_autocommit(connection)
        fixed = connection

        def resolve() -> sqlite3.Connection:
            return fixed

    elif callable(connection):
        resolve = connection
    else:
        raise ConfigurationError(
            f"sqlite_transaction() takes the application's sqlite3.Connection or a callable "
            f"returning it, got {connection!r}."
        )

    def transaction() -> SqliteTransaction:
        return SqliteTransaction(resolve())

    return transaction


class SqliteTransaction(AbstractContextManager["SqliteTransaction"]):
    """One scope: ``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` if the block raises.

    ``BEGIN IMMEDIATE`` takes SQLite's write lock up front and waits for it (busy timeout).
    A deferred ``BEGIN`` that reads and then writes can instead fail at once with "database is
    locked" when another process wrote in between, which would turn ordinary contention between
    consumers into handler failures.

    Attributes:
        joined: True when the connection was already in a transaction, which this scope joined
            and leaves to its owner to commit or roll back.
    """

    __slots__ = ("_connection", "joined")

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self.joined = False

    def __enter__(self) -> SqliteTransaction:
        import sqlite3

        connection = self._connection
        try:
            if connection.in_transaction:
                self.joined = True
                return self
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise translate_application(connection, error, "beginning a transaction") from error
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        import sqlite3

        if self.joined:
            return
        connection = self._connection
        if exc is None:
            try:
                connection.commit()
            except sqlite3.Error as error:
                if connection.in_transaction:
                    connection.rollback()
                raise translate_application(
                    connection, error, "committing a transaction"
                ) from error
            return
        try:
            if connection.in_transaction:  # SQLite may have rolled back already (disk full)
                connection.rollback()
        except sqlite3.Error as error:
            # The block's own exception is what the caller must see; the failed rollback is
            # noted on it rather than raised in its place.
            exc.add_note(f"conveyor_sqlite: rolling back the transaction also failed: {error}")

    def __repr__(self) -> str:
        state = "joined" if self.joined else "own"
        return f"SqliteTransaction({state})"


def _refuse_pep249_autocommit(connection: sqlite3.Connection) -> None:
    """Refuse ``autocommit=False`` (Python 3.12+), where a transaction is always open.

    Such a connection always reports ``in_transaction``, so every scope would join and none
    would ever commit: the messages and the handler's writes would wait for a commit that never
    comes.
    """
    if getattr(connection, "autocommit", None) is False:
        raise ConfigurationError(
            "sqlite_transaction() needs a connection that is not always in a transaction; this "
            "one has autocommit=False (PEP 249 mode), so every scope would join and none "
            "commit. Open it with the default isolation_level or isolation_level=None."
        )
