"""One SQLite connection, opened with checks, shared safely between threads.

Each transport or store owns one :class:`Database`. Opening diagnoses the usual mistakes up
front (a missing directory, a file that is not a database, a read-only file, a newer schema)
and says how to fix them. Every use goes through :meth:`Database.transaction`,
:meth:`Database.statement` or :meth:`Database.read`, which hold a lock (so one connection can
serve several threads), refuse use after :meth:`Database.close`, and translate ``sqlite3``
errors.

Transactions are explicit (``isolation_level=None``): writes of several statements run in
``BEGIN IMMEDIATE``, which takes SQLite's write lock before reading, so a claim's "pick a row,
lease it" cannot interleave with another process doing the same. A write of one statement runs
on its own, which SQLite makes just as atomic.

Under ``synchronous="FULL"``, only the commits that must survive a power cut are synced: those
that store a message. A lease or an acknowledgement lost to a power cut makes a message come
back, which at least once allows; syncing them would triple the fsyncs per message. SQLite's
WAL keeps commits in order, so the next synced commit makes every earlier one durable too.
"""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from conveyor.core.errors import TransportClosed, TransportError
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
#: commit that stores a message, so a sent message survives power loss (a lease or an ack may
#: not: the message is then delivered again); NORMAL survives a crash of the process, not of the
#: machine.
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
        "_level",
        "_lock",
        "_owner",
        "_sqlite_error",
        "_synchronous",
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
        self._synchronous: Synchronous = synchronous
        self._connection = self._open(synchronous)
        self._level: Synchronous = synchronous

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

    def transaction(self, action: str, *, durable: bool = True) -> _Use:
        """Run the block in ``BEGIN IMMEDIATE``; commit if it returns, roll back if it raises.

        Args:
            action: what the block does, as a phrase for error messages.
            durable: sync the commit to disk when the file is configured "FULL". False for
                writes whose loss after a power cut only delivers a message again (a lease, an
                acknowledgement): at least once still holds, and the commit skips an fsync.
        """
        return _Use(self, action, durable=durable, begin=True, locked_hint="")

    def statement(self, action: str, *, durable: bool = True, locked_hint: str = "") -> _Use:
        """Run one statement in autocommit mode: SQLite makes it atomic on its own.

        A single write statement takes the write lock before it reads anything, so it needs no
        ``BEGIN``/``COMMIT`` around it; skipping them saves two statements per operation.

        Args:
            action: what the statement does, as a phrase for error messages.
            durable: as for :meth:`transaction`.
            locked_hint: added to the error when the write lock stayed taken.
        """
        return _Use(self, action, durable=durable, begin=False, locked_hint=locked_hint)

    def read(self, action: str) -> _Use:
        """Run single-statement reads; each sees one consistent snapshot in autocommit."""
        return _Use(self, action, durable=None, begin=False, locked_hint="")

    def check_open(self, action: str) -> None:
        """Raise ``TransportClosed`` if closed; for calls that need no statement (declare)."""
        with self._lock:
            self._usable(action, None)

    def close(self) -> None:
        """Close the connection. Closing twice is allowed; any other later use is refused."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._connection.close()

    def _usable(self, action: str, durable: bool | None) -> sqlite3.Connection:
        """The connection under the lock, at the durability the next commit needs."""
        if self._closed:
            raise TransportClosed(
                f"{self._owner} on {self.path!r} is closed, so it cannot be used for {action}. "
                f"Create a new {self._owner} for the same path to continue."
            )
        if durable is not None and self._synchronous == "FULL":
            level: Synchronous = "FULL" if durable else "NORMAL"
            if level != self._level:
                self._connection.execute(f"PRAGMA synchronous = {level}")
                self._level = level
        return self._connection

    def _translate(
        self, error: sqlite3.Error, action: str, locked_hint: str = ""
    ) -> TransportError:
        return translate(
            error,
            path=self.path,
            action=action,
            busy_timeout=self._busy_timeout,
            locked_hint=locked_hint,
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"Database({self.path!r}, {state})"


class _Use:
    """One use of a :class:`Database`: the lock, a usable connection, errors translated.

    A class rather than a generator context manager: it runs two or three times per message,
    and a generator costs over a microsecond more each time.
    """

    __slots__ = ("_action", "_begin", "_connection", "_db", "_durable", "_hint")

    def __init__(
        self, db: Database, action: str, *, durable: bool | None, begin: bool, locked_hint: str
    ) -> None:
        self._db = db
        self._action = action
        self._durable = durable
        self._begin = begin
        self._hint = locked_hint

    def __enter__(self) -> sqlite3.Connection:
        db = self._db
        db._lock.acquire()
        try:
            connection = self._connection = db._usable(self._action, self._durable)
            if self._begin:
                connection.execute("BEGIN IMMEDIATE")
        except db._sqlite_error as error:
            db._lock.release()
            raise db._translate(error, self._action, self._hint) from error
        except BaseException:
            db._lock.release()
            raise
        return connection

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        db = self._db
        connection = self._connection
        try:
            if self._begin:
                if exc is None:
                    connection.execute("COMMIT")
                elif connection.in_transaction:  # SQLite may have rolled back already
                    connection.execute("ROLLBACK")
        except db._sqlite_error as error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise db._translate(error, self._action, self._hint) from error
        finally:
            db._lock.release()
        if isinstance(exc, db._sqlite_error):
            raise db._translate(exc, self._action, self._hint) from exc
