"""The application's own connection, which an outbox channel and the stores write through.

An outbox only works if the message is written by the same connection, in the same transaction,
as the business change. The application hands Conveyor one of:

- a psycopg ``Connection`` (or ``AsyncConnection`` for the asyncio transport);
- a SQLAlchemy ``Session`` or ``Connection`` on the ``postgresql+psycopg`` dialect;
- a zero-argument callable returning either, read again at every send (a connection or a
  session per thread or per request is common).

Conveyor writes through it only while it is in a transaction: for psycopg, while the connection
is inside one (``with conn.transaction():``, or after the first statement without autocommit);
for SQLAlchemy, while the session or connection has begun one. Otherwise the message is stored
and committed at once through Conveyor's own pool, as on a plain channel.

Before a connection is first written through, its database and port are compared with the
channel's: a message written to another database would commit on its own, which is the very
failure an outbox exists to prevent, and it would do so silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from conveyor.core.errors import ConfigurationError
from conveyor_postgres.errors import Server

__all__ = ["ApplicationConnection", "ConnectionSource"]

#: The application's connection (psycopg or SQLAlchemy), or a callable returning the one to use.
ConnectionSource: TypeAlias = "object | Callable[[], object]"

_INTRANS = 2  # psycopg.pq.TransactionStatus.INTRANS
_INERROR = 3  # psycopg.pq.TransactionStatus.INERROR


class ApplicationConnection:
    """Resolves a :data:`ConnectionSource` to the psycopg connection of an open transaction.

    Args:
        source: the application's connection or session, or a callable returning it.
        server: the server the channel is on, checked against each new connection.
        owner: what uses it, named in errors ("channel 'outbox'").
    """

    __slots__ = ("_call", "_checked", "_owner", "_server")

    def __init__(self, source: ConnectionSource, *, server: Server, owner: str) -> None:
        self._server = server
        self._owner = owner
        self._checked: set[int] = set()
        if _kind(source) is not None:
            fixed = source
            self._call: Callable[[], object] = lambda: fixed
        elif callable(source):
            self._call = source
        else:
            raise ConfigurationError(
                f"{owner} takes connection= as the application's psycopg Connection, a "
                f"SQLAlchemy Session or Connection, or a callable returning one; got "
                f"{type(source).__name__}."
            )

    def in_transaction(self) -> Any | None:
        """The application's psycopg connection if it is in a transaction now, else None.

        Raises:
            ConfigurationError: the source gave something else, or a connection to another
                database than the channel's.
        """
        source = self._call()
        kind = _kind(source)
        if kind is None:
            raise ConfigurationError(
                f"connection= of {self._owner} returned {type(source).__name__}; it must return "
                f"a psycopg Connection or a SQLAlchemy Session or Connection."
            )
        if kind == "psycopg":
            connection: Any = source
            status = connection.info.transaction_status
            if status not in (_INTRANS, _INERROR):
                return None
        else:
            if not source.in_transaction():  # type: ignore[attr-defined]
                return None
            connection = _driver_connection(source, kind)
        if id(connection) not in self._checked:
            self._check_same_database(connection)
            self._checked.add(id(connection))
        return connection

    def _check_same_database(self, connection: Any) -> None:
        info = connection.info
        port = str(info.port)
        wanted_port = self._server.port or "5432"
        if info.dbname != self._server.dbname or port != wanted_port:
            raise ConfigurationError(
                f"{self._owner} writes its messages through the application's connection, but "
                f"that connection is on database {info.dbname!r} (port {port}) and the channel "
                f"is on {self._server}. The message and the business change must be in one "
                f"database for one transaction to hold both: give the channel the DSN of the "
                f"application's database."
            )


def _kind(source: object) -> str | None:
    """ "psycopg", "session", "sqlalchemy" (a Connection), or None for anything else."""
    if hasattr(source, "pgconn") and hasattr(source, "info"):
        return "psycopg"
    module = type(source).__module__
    if module.startswith("sqlalchemy"):
        if hasattr(source, "get_bind"):
            return "session"
        if hasattr(source, "get_transaction"):
            return "sqlalchemy"
    return None


def _driver_connection(source: Any, kind: str) -> Any:
    """The psycopg connection under a SQLAlchemy Session or Connection, in its transaction."""
    connection = source.connection() if kind == "session" else source
    driver = connection.connection.driver_connection
    if _kind(driver) != "psycopg":
        raise ConfigurationError(
            f"the SQLAlchemy connection runs on {type(driver).__module__}, not psycopg 3; use "
            f"a 'postgresql+psycopg://' URL so the outbox can write in its transaction."
        )
    return driver
