"""Translation of ``sqlite3`` exceptions into Conveyor's errors (DESIGN rule 8).

No bare ``sqlite3`` exception leaves this package: the kernel and the user see a
:class:`~conveyor.core.errors.TransportError` that names the database file, what was being done, the
cause in plain words and the fix. SQLite's own message is kept at the end, and the original
exception stays chained as ``__cause__``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import TYPE_CHECKING

from conveyor.core.errors import ConfigurationError, ConnectionFailed, TransportError

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "translate",
    "missing_directory",
    "newer_schema",
    "unwritable",
    "read_only",
    "is_a_directory",
    "is_environmental",
]

# SQLite primary result codes (https://sqlite.org/rescode.html); the extended code's low byte.
_BUSY = 5
_LOCKED = 6
_READONLY = 8
_IOERR = 10
_CORRUPT = 11
_FULL = 13
_CANTOPEN = 14
_NOTADB = 26
_PERM = 3
_NOMEM = 7
_INTERRUPT = 9
_PROTOCOL = 15

# Codes that say something about the file, the disk or the process, never about one row: a
# failure with one of these is raised, not blamed on the row being read.
_ENVIRONMENTAL = frozenset(
    (
        _PERM,
        _BUSY,
        _LOCKED,
        _NOMEM,
        _READONLY,
        _INTERRUPT,
        _IOERR,
        _CORRUPT,
        _FULL,
        _CANTOPEN,
        _PROTOCOL,
        _NOTADB,
    )
)


def translate(
    error: sqlite3.Error, *, path: str, action: str, busy_timeout: timedelta, locked_hint: str = ""
) -> TransportError:
    """The Conveyor error for ``error``, raised while doing ``action`` on the database ``path``.

    Args:
        error: what ``sqlite3`` raised.
        path: the database file, as the user gave it.
        action: what was being done, as a phrase ("sending to channel 'orders'").
        busy_timeout: how long SQLite waited for a lock, to name it when a lock was the cause.
        locked_hint: a sentence added when a lock was the cause, naming a likelier culprit
            than another process.
    """
    code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
    detail = f"(sqlite3: {error})"
    if code in (_BUSY, _LOCKED) or "locked" in str(error):
        ms = busy_timeout // timedelta(milliseconds=1)
        hint = f" {locked_hint}" if locked_hint else ""
        return ConnectionFailed(
            f"the SQLite database {path!r} stayed locked for longer than busy_timeout "
            f"({ms} ms) while {action}: another connection held its write lock that long. Find "
            f"the long transaction (another process, or an open BEGIN in your own code), or pass "
            f"a longer busy_timeout=timedelta(...) {detail}.{hint}"
        )
    if code == _NOTADB or "not a database" in str(error):
        return ConnectionFailed(
            f"{path!r} is not a SQLite database (found while {action}): the file belongs to "
            f"another program or is damaged. Point Conveyor at a new path, or restore the file "
            f"from a backup {detail}."
        )
    if code == _CORRUPT:
        return ConnectionFailed(
            f"the SQLite database {path!r} is corrupt (found while {action}). Restore it from a "
            f"backup, or try `sqlite3 {path} .recover` {detail}."
        )
    if code == _READONLY or "readonly" in str(error):
        return ConnectionFailed(
            f"the SQLite database {path!r} is read-only for this process ({action} needs to "
            f"write): {_access_problem(path)}. Make the file and its directory writable by this "
            f"user (for example chmod u+w), or choose another path {detail}."
        )
    if code == _CANTOPEN or "unable to open" in str(error):
        return ConnectionFailed(
            f"cannot open the SQLite database {path!r} while {action}: "
            f"{_access_problem(path)}. Fix the permissions or choose another path {detail}."
        )
    if code == _FULL:
        return ConnectionFailed(
            f"the disk holding the SQLite database {path!r} is full (while {action}). Free "
            f"space, then retry {detail}."
        )
    if code == _IOERR:
        return ConnectionFailed(
            f"the operating system reported an I/O error on the SQLite database {path!r} while "
            f"{action}. Check the disk and the file system (network file systems do not support "
            f"SQLite's locking) {detail}."
        )
    return TransportError(f"SQLite failed on {path!r} while {action} {detail}.")


def is_environmental(error: BaseException) -> bool:
    """Whether ``error`` is about the database file or the process rather than one row.

    A lock, a full disk, an I/O error, a corrupt or read-only file, or a memory error: moving the
    row being read aside would not help, and would hide the real trouble.
    """
    if isinstance(error, MemoryError | KeyboardInterrupt | SystemExit):
        return True
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:
        return False
    return (code & 0xFF) in _ENVIRONMENTAL or "locked" in str(error)


def missing_directory(path: str, directory: str) -> ConnectionFailed:
    """The error for a database path whose directory does not exist.

    SQLite would only say "unable to open database file"; naming the directory saves a search.
    """
    return ConnectionFailed(
        f"cannot open the SQLite database {path!r}: the directory {directory!r} does not exist. "
        f"Create it first (os.makedirs({directory!r}, exist_ok=True), or mkdir -p), or choose "
        f"a path in an existing directory."
    )


def is_a_directory(path: str) -> ConnectionFailed:
    """The error for a path that names a directory: a common slip when configuring a data dir."""
    example = os.path.join(path, "conveyor.db")
    return ConnectionFailed(
        f"cannot open the SQLite database {path!r}: it is a directory. Pass the path of a file, "
        f"for example {example!r}."
    )


def newer_schema(path: str, found: int, known: int) -> ConfigurationError:
    """The error for a database written by a newer release: changing it could lose messages."""
    return ConfigurationError(
        f"the SQLite database {path!r} has Conveyor schema version {found}, but this "
        f"conveyor-sqlite knows versions up to {known}: it was written by a newer release. "
        f"Upgrade conveyor-sqlite in this environment, or point it at another file."
    )


def unwritable(path: str) -> str | None:
    """Why this process cannot write the database or its directory, or None if it can.

    Checked before opening because SQLite opens a read-only file without complaint and fails
    only at the first write, far from the cause. The directory must be writable too: SQLite
    creates the ``-wal`` and ``-shm`` files next to the database.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return f"the file {path!r} is not writable"
    if not os.access(directory, os.W_OK):
        return f"the directory {directory!r} is not writable (SQLite creates files there)"
    return None


def read_only(path: str, problem: str) -> ConnectionFailed:
    """The error for a database this process cannot write: every receive and ack writes."""
    return ConnectionFailed(
        f"cannot use the SQLite database {path!r}: {problem}, and Conveyor writes on every "
        f"send, receive and ack. Make the file and its directory writable by this user (for "
        f"example chmod u+w), or choose another path."
    )


def _access_problem(path: str) -> str:
    return unwritable(path) or "the file or its directory is not writable, or is locked"
