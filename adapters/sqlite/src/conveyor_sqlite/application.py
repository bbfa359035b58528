"""The application's own ``sqlite3`` connection, as an outbox channel and a transaction use it.

An outbox only works if the message is written by the same connection, in the same transaction,
as the business change. The application therefore hands Conveyor its connection, or a callable
returning it (a connection per thread or per request is common, and a callable is read again at
each use). Before a connection is first written through, it is checked to be on the channel's
file: a message written to another file would commit on its own, which is the very failure an
outbox exists to prevent, and it would do so silently.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, TypeAlias

from conveyor.core.errors import ConfigurationError, TransportError
from conveyor_sqlite.errors import translate

if TYPE_CHECKING:
    import sqlite3

__all__ = ["ApplicationConnection", "ConnectionSource", "main_file", "translate_application"]

#: The application's connection, or a callable returning the one to use now.
ConnectionSource: TypeAlias = "sqlite3.Connection | Callable[[], sqlite3.Connection]"


class ApplicationConnection:
    """Resolves a :data:`ConnectionSource` and checks each new connection is on ``path``.

    Args:
        source: the connection, or a zero-argument callable returning it.
        path: the database file the connection must be on.
        owner: what uses it, named in errors ("channel 'outbox'").
    """

    __slots__ = ("_call", "_checked", "_connection_type", "_owner", "_path", "_sqlite_error")

    def __init__(self, source: ConnectionSource, *, path: str, owner: str) -> None:
        import sqlite3  # here, not at module level: importing the adapter opens nothing

        self._connection_type = sqlite3.Connection
        self._sqlite_error = sqlite3.Error
        self._path = path
        self._owner = owner
        self._checked: sqlite3.Connection | None = None
        if isinstance(source, sqlite3.Connection):
            connection = source
            self._call: Callable[[], sqlite3.Connection] = lambda: connection
            self.get()  # a connection given directly is checked at bootstrap
        elif callable(source):
            self._call = source
        else:
            raise ConfigurationError(
                f"{owner} takes connection= as the application's sqlite3.Connection or a "
                f"callable returning it, got {source!r}."
            )

    def get(self) -> sqlite3.Connection:
        """The application's connection now, checked to be on the channel's file."""
        connection = self._call()
        if connection is self._checked:
            return connection
        if not isinstance(connection, self._connection_type):
            raise ConfigurationError(
                f"connection= of {self._owner} returned {connection!r}; it must return the "
                f"application's sqlite3.Connection."
            )
        try:
            found = main_file(connection)
        except self._sqlite_error as error:
            raise translate_application(
                connection, error, f"checking the application's connection of {self._owner}"
            ) from error
        if not _same_file(found, self._path):
            where = repr(found) if found else "an in-memory or temporary database"
            raise ConfigurationError(
                f"{self._owner} writes its messages through the application's connection, but "
                f"that connection is on {where} and the channel is on {self._path!r}. The "
                f"message and the business change must be in one file for one transaction to "
                f"hold both: open the application's connection on {self._path!r}, or give the "
                f"channel path= of the application's database."
            )
        self._checked = connection
        return connection

    def forget(self) -> None:
        """Drop the reference to the last connection checked (the transport is closing)."""
        self._checked = None


def main_file(connection: sqlite3.Connection) -> str:
    """The file of the connection's ``main`` database; "" for an in-memory or temporary one."""
    for _, name, file in connection.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return str(file or "")
    return ""


def translate_application(
    connection: sqlite3.Connection, error: sqlite3.Error, action: str
) -> TransportError:
    """The Conveyor error for a failure on the application's connection, naming its file."""
    try:
        path = main_file(connection) or ":memory:"
        timeout_ms = int(connection.execute("PRAGMA busy_timeout").fetchone()[0])
    except Exception:  # a closed or broken connection: say what we can
        path, timeout_ms = "the application's database", 0
    return translate(
        error, path=path, action=action, busy_timeout=timedelta(milliseconds=timeout_ms)
    )


def _same_file(found: str, path: str) -> bool:
    if not found or path == ":memory:":
        return False
    try:
        return os.path.samefile(found, path)
    except OSError:
        return os.path.realpath(found) == os.path.realpath(path)
