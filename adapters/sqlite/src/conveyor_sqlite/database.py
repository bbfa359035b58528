"""One SQLite connection, opened with checks, shared safely between threads.

Each transport or store owns one :class:`Database`. Opening diagnoses the usual mistakes up
front (a missing directory, a file that is not a database, a read-only file, a newer schema)
and says how to fix them. Every use goes through :meth:`Database.transaction` or
:meth:`Database.read`, which hold a lock (so one connection can serve several threads),
refuse use after :meth:`Database.close`, and translate ``sqlite3`` errors.

Transactions are explicit (``isolation_level=None``): writes run in ``BEGIN IMMEDIATE``, which
takes SQLite's write lock before reading, so a claim's "pick a row, lease it" cannot interleave
with another process doing the same.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from conveyor.errors import TransportClosed, TransportError
from conveyor_sqlite.errors import (
    is_a_directory,
    missing_directory,
    newer_schema,
    read_only,
    translate,
    unwritable,
)
from conveyor_sqlite.schema import SCHEMA_VERSION, ensure_schema, schema_version

if TYPE_CHECKING:
    import sqlite3

__all__ = ["Database", "Synchronous"]

#: ``PRAGMA synchronous`` levels that keep a committed message. FULL syncs the WAL on every
#: commit and survives power loss; NORMAL survives a crash of the process, not of the machine.
Synchronous = Literal["FULL", "NORMAL"]


class Database:
    """A thread-safe SQLite connection to one file, with Conveyor's schema in place.

    Args:
        path: the database file; created if missing, but its directory must exist.
        owner: the class using it, named in errors ("SqliteTransport").
        busy_timeout: how long to wait for another connection's write lock before failing.
        synchronous: how hard SQLite pushes each commit to disk; see :data:`Synchronous`.
    """

    __slots__ = (
        "_busy_timeout",
        "_closed",
        "_connection",
        "_lock",
        "_owner",
        "_sqlite_error",
        "path",
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        owner: str,
        busy_timeout: timedelta,
        synchronous: Synchronous = "FULL",
    ) -> None:
        self.path = os.fspath(path)
        self._owner = owner
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._closed = False
        self._connection = self._open(synchronous)

    def _open(self, synchronous: Synchronous) -> sqlite3.Connection:
        import sqlite3  # here, not at module level: importing the adapter opens nothing (rule 4)

        self._sqlite_error = sqlite3.Error
        directory = os.path.dirname(os.path.abspath(self.path))
        if self.path != ":memory:" and not os.path.isdir(directory):
            raise missing_directory(self.path, directory)
        if os.path.isdir(self.path):
            raise is_a_directory(self.path)
        problem = None if self.path == ":memory:" else unwritable(self.path)
        if problem is not None:
            raise read_only(self.path, problem)
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(
                f"synchronous={synchronous!r} is not a level that keeps committed messages; "
                f"use 'FULL' (survives power loss) or 'NORMAL' (survives a process crash)."
            )
        timeout_ms = self._busy_timeout // timedelta(milliseconds=1)
        try:
            connection = sqlite3.connect(
                self.path,
                timeout=timeout_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as error:
            raise self._translate(error, "opening it") from error
        try:
            connection.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute(f"PRAGMA synchronous = {synchronous}")
            found = schema_version(connection)
            if found < SCHEMA_VERSION:  # only a new or older file needs the write lock
                connection.execute("BEGIN IMMEDIATE")
                try:
                    found = ensure_schema(connection)  # reads the version again, under the lock
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
        except sqlite3.Error as error:
            connection.close()
            raise self._translate(error, "opening it") from error
        if found > SCHEMA_VERSION:
            connection.close()
            raise newer_schema(self.path, found, SCHEMA_VERSION)
        return connection

    @contextmanager
    def transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """Run the block in ``BEGIN IMMEDIATE``; commit if it returns, roll back if it raises.

        Args:
            action: what the block does, as a phrase for error messages.
        """
        with self._lock:
            connection = self._usable(action)
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    yield connection
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
            except self._sqlite_error as error:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise self._translate(error, action) from error

    @contextmanager
    def read(self, action: str) -> Iterator[sqlite3.Connection]:
        """Run single-statement reads; each sees one consistent snapshot in autocommit."""
        with self._lock:
            connection = self._usable(action)
            try:
                yield connection
            except self._sqlite_error as error:
                raise self._translate(error, action) from error

    def check_open(self, action: str) -> None:
        """Raise ``TransportClosed`` if closed; for calls that need no statement (declare)."""
        with self._lock:
            self._usable(action)

    def close(self) -> None:
        """Close the connection. Closing twice is allowed; any other later use is refused."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._connection.close()

    def _usable(self, action: str) -> sqlite3.Connection:
        if self._closed:
            raise TransportClosed(
                f"{self._owner} on {self.path!r} is closed, so it cannot be used for {action}. "
                f"Create a new {self._owner} for the same path to continue."
            )
        return self._connection

    def _translate(self, error: sqlite3.Error, action: str) -> TransportError:
        return translate(error, path=self.path, action=action, busy_timeout=self._busy_timeout)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"Database({self.path!r}, {state})"
