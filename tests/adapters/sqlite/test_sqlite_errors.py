"""Bad files and paths give Conveyor errors that name the path, the cause and the fix.

No bare ``sqlite3`` exception escapes: each one is translated and kept as ``__cause__``.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from conveyor.core.clock import VirtualClock
from conveyor.core.errors import ConfigurationError, ConnectionFailed, TransportError
from conveyor.transports.seam import WireMessage
from conveyor_sqlite import (
    SCHEMA_VERSION,
    SqliteDeadLetterStore,
    SqliteDeduplication,
    SqliteTransport,
)
from pytest_conveyor.conformance import receive_one

OPENERS: dict[str, Callable[[Path], object]] = {
    "SqliteTransport": lambda path: SqliteTransport(path, clock=VirtualClock()),
    "SqliteDeadLetterStore": SqliteDeadLetterStore,
    "SqliteDeduplication": SqliteDeduplication,
}
running_as_root = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def holder(db_path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection that takes the file's write lock and keeps it."""
    SqliteTransport(db_path, clock=VirtualClock()).close()  # the schema exists
    connection = sqlite3.connect(db_path, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    yield connection
    connection.execute("ROLLBACK")
    connection.close()


@pytest.mark.parametrize("opener", OPENERS.values(), ids=OPENERS.keys())
def test_a_missing_directory_is_named_with_how_to_create_it(
    tmp_path: Path, opener: Callable[[Path], object]
) -> None:
    path = tmp_path / "missing" / "conveyor.db"

    with pytest.raises(ConnectionFailed) as raised:
        opener(path)

    directory = str(tmp_path / "missing")
    assert str(raised.value) == (
        f"cannot open the SQLite database {str(path)!r}: the directory {directory!r} does not "
        f"exist. Create it first (os.makedirs({directory!r}, exist_ok=True), or mkdir -p), or "
        f"choose a path in an existing directory."
    )
    assert not (tmp_path / "missing").exists()


def test_a_file_that_is_not_a_database_is_named_as_such(db_path: Path) -> None:
    db_path.write_bytes(random.Random(7).randbytes(8192))

    with pytest.raises(ConnectionFailed) as raised:
        SqliteTransport(db_path, clock=VirtualClock())

    assert str(raised.value) == (
        f"{str(db_path)!r} is not a SQLite database (found while opening it): the file belongs "
        f"to another program or is damaged. Point Conveyor at a new path, or restore the file "
        f"from a backup (sqlite3: file is not a database)."
    )
    assert isinstance(raised.value.__cause__, sqlite3.DatabaseError)


def test_a_directory_given_as_the_path_is_refused_with_an_example(tmp_path: Path) -> None:
    with pytest.raises(ConnectionFailed) as raised:
        SqliteTransport(tmp_path, clock=VirtualClock())

    assert str(raised.value) == (
        f"cannot open the SQLite database {str(tmp_path)!r}: it is a directory. Pass the path "
        f"of a file, for example {str(tmp_path / 'conveyor.db')!r}."
    )


def open_as_an_ordinary_user(path: Path) -> str:
    """Open a SqliteTransport on ``path`` in a child without root's power over permissions.

    Root ignores permission bits, and CI runs as root; there the child drops to ``nobody`` so
    the real permission check runs, not a simulation. The child is a fork of this process, not
    a new interpreter: ``nobody`` needs to reach nothing but the database, so the test passes
    in a clone under a private (0700) directory, where ``nobody`` could not run this checkout's
    interpreter or read its sources. Every module the child uses is imported before the fork.
    """
    warm_up = Path(tempfile.mkdtemp(prefix="conveyor-warm-up-"))
    try:
        SqliteTransport(warm_up / "conveyor.db", clock=VirtualClock()).close()
    finally:
        shutil.rmtree(warm_up, ignore_errors=True)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report through the pipe and never return into pytest
        code = 1
        try:
            os.close(read_end)
            if running_as_root:
                nobody = pwd.getpwnam("nobody")
                os.setgroups([])
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
            try:
                SqliteTransport(path, clock=VirtualClock()).close()
                said = "opened"
            except ConnectionFailed as error:
                said = str(error)
            os.write(write_end, said.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        said_bytes = reader.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the unprivileged child failed"
    return said_bytes.decode()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory an unprivileged child can enter (pytest's tmp_path is private to root)."""
    directory = Path(tempfile.mkdtemp(prefix="conveyor-perm-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_a_read_only_file_is_refused_when_opened(shared_dir: Path) -> None:
    db_path = shared_dir / "conveyor.db"
    SqliteTransport(db_path, clock=VirtualClock()).close()
    db_path.chmod(0o444)
    shared_dir.chmod(0o777 if running_as_root else 0o755)  # only the file is read-only

    assert open_as_an_ordinary_user(db_path) == (
        f"cannot use the SQLite database {str(db_path)!r}: the file {str(db_path)!r} is not "
        f"writable, and Conveyor writes on every send, receive and ack. Make the file and its "
        f"directory writable by this user (for example chmod u+w), or choose another path."
    )


def test_a_read_only_directory_is_refused_when_opened(shared_dir: Path) -> None:
    directory = shared_dir / "locked-down"
    directory.mkdir()
    directory.chmod(0o555)
    try:
        message = open_as_an_ordinary_user(directory / "conveyor.db")
    finally:
        directory.chmod(0o755)

    assert f"the directory {str(directory)!r} is not writable (SQLite creates files" in message


@pytest.mark.parametrize(
    ("unwritable", "problem"),
    [
        ("file", "the file {file!r} is not writable"),
        ("directory", "the directory {directory!r} is not writable (SQLite creates files there)"),
    ],
)
def test_read_only_access_is_refused_even_where_root_could_write(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, unwritable: str, problem: str
) -> None:
    # Root ignores permission bits, so the check is exercised by making os.access answer as it
    # does for an ordinary user (or for a read-only mount, where it answers the same for root).
    SqliteTransport(db_path, clock=VirtualClock()).close()
    target = str(db_path) if unwritable == "file" else str(db_path.parent)
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if str(p) == target else real_access(p, mode)
    )

    with pytest.raises(ConnectionFailed) as raised:
        SqliteDeadLetterStore(db_path)

    assert str(raised.value) == (
        f"cannot use the SQLite database {str(db_path)!r}: "
        + problem.format(file=str(db_path), directory=str(db_path.parent))
        + ", and Conveyor writes on every send, receive and ack. Make the file and its "
        "directory writable by this user (for example chmod u+w), or choose another path."
    )


def test_a_lock_held_beyond_busy_timeout_names_the_path_and_the_timeout(
    db_path: Path, clock: VirtualClock
) -> None:
    transport = SqliteTransport(db_path, clock=clock, busy_timeout=timedelta(milliseconds=50))
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(ConnectionFailed) as raised:
            transport.send("orders", WireMessage(b"x"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert str(raised.value) == (
        f"the SQLite database {str(db_path)!r} stayed locked for longer than busy_timeout "
        f"(50 ms) while sending to channel 'orders': another connection held its write lock "
        f"that long. Find the long transaction (another process, or an open BEGIN in your own "
        f"code), or pass a longer busy_timeout=timedelta(...) (sqlite3: database is locked). "
        f"If this process holds a transaction on this file (sqlite_transaction, or `with conn:` "
        f"after a write), the send waits for it in vain: give SqliteChannel('orders') "
        f"connection= so the message joins that transaction."
    )
    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
    transport.send("orders", WireMessage(b"x"))  # the lock is gone: usable again
    assert transport.pending("orders") == 1
    transport.close()


def test_reads_and_opening_an_existing_file_do_not_wait_for_the_write_lock(
    db_path: Path, holder: sqlite3.Connection
) -> None:
    transport = SqliteTransport(
        db_path, clock=VirtualClock(), busy_timeout=timedelta(milliseconds=20)
    )

    assert transport.pending("orders") == 0
    assert transport.next_due("orders") is None
    with pytest.raises(ConnectionFailed, match=r"\(20 ms\) while receiving from channel 'orders'"):
        receive_one(transport, "orders", lease=timedelta(seconds=1))
    transport.close()


def test_creating_the_schema_under_a_held_lock_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE app (x)")
    try:
        with pytest.raises(ConnectionFailed, match=r"\(20 ms\) while opening it"):
            SqliteDeduplication(path, busy_timeout=timedelta(milliseconds=20))
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_file_from_a_newer_release_is_refused_unchanged(db_path: Path) -> None:
    with sqlite3.connect(db_path) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    with pytest.raises(ConfigurationError) as raised:
        SqliteTransport(db_path, clock=VirtualClock())

    assert str(raised.value) == (
        f"the SQLite database {str(db_path)!r} has Conveyor schema version "
        f"{SCHEMA_VERSION + 1}, but this conveyor-sqlite knows versions up to {SCHEMA_VERSION}: "
        f"it was written by a newer release. Upgrade conveyor-sqlite in this environment, or "
        f"point it at another file."
    )
    with sqlite3.connect(db_path) as connection:
        assert connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone() == (0,)


def test_any_other_sqlite_failure_is_a_transport_error_naming_path_and_action(
    db_path: Path, clock: VirtualClock
) -> None:
    transport = SqliteTransport(db_path, clock=clock)
    with sqlite3.connect(db_path) as connection:
        connection.execute("DROP TABLE conveyor_messages")

    with pytest.raises(TransportError) as raised:
        transport.send("orders", WireMessage(b"x"))

    assert str(raised.value) == (
        f"SQLite failed on {str(db_path)!r} while sending to channel 'orders' "
        f"(sqlite3: no such table: conveyor_messages)."
    )
    assert not isinstance(raised.value, sqlite3.Error)
    transport.close()
