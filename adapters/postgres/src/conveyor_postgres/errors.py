"""Where a PostgreSQL server is, said without its password, and psycopg's errors translated.

No bare psycopg exception leaves this package (DESIGN rule 8): the user sees a
:class:`~conveyor.core.errors.ConnectionFailed` or :class:`~conveyor.core.errors.TransportError`
naming host, port, database and user, what was being done and how to fix it. libpq's own
message is kept (it says "Connection refused" or "role does not exist" best), with any password
from the DSN blanked out of it, and the original exception stays chained as ``__cause__``.
"""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.core.errors import ConfigurationError, ConnectionFailed, TransportError

__all__ = ["Server", "describe", "translate", "newer_schema", "older_schema", "bad_dsn"]

# SQLSTATE classes that mean "the server or the connection", not "this statement".
_CONNECTION_CLASSES = ("08", "57", "53", "28", "3D")


@dataclass(frozen=True, slots=True)
class Server:
    """The parts of a DSN that may be shown: everything but the password.

    Attributes:
        host: host name, address or socket directory ("" for libpq's default).
        port: the port as given ("" for libpq's default, 5432).
        dbname: the database.
        user: the role.
        password: kept only to blank it out of messages; never shown.
    """

    host: str
    port: str
    dbname: str
    user: str
    password: str = ""

    def __str__(self) -> str:
        host = self.host or "the default host"
        port = self.port or "5432"
        database, user = self.dbname or "?", self.user or "?"
        return f"PostgreSQL at {host}:{port}, database {database!r}, user {user!r}"

    def scrub(self, text: str) -> str:
        """``text`` with the password, if any, replaced by ``***``."""
        if self.password and len(self.password) >= 1:
            return text.replace(self.password, "***")
        return text

    def __repr__(self) -> str:
        return f"Server({self})"


def describe(dsn: str) -> Server:
    """The :class:`Server` a DSN (URL or ``key=value`` string) names.

    Raises:
        ConfigurationError: the DSN cannot be parsed; the message never repeats it, since it
            may hold a password.
    """
    from psycopg.conninfo import conninfo_to_dict

    if not isinstance(dsn, str) or not dsn.strip():
        raise bad_dsn(f"it is {type(dsn).__name__ if not isinstance(dsn, str) else 'empty'}")
    try:
        parts = conninfo_to_dict(dsn)
    except Exception as error:  # psycopg.ProgrammingError, with the bad part in words
        password = _password_in(dsn)
        text = str(error).replace(password, "***") if password else str(error)
        raise bad_dsn(text) from None
    return Server(
        host=str(parts.get("host") or ""),
        port=str(parts.get("port") or ""),
        dbname=str(parts.get("dbname") or ""),
        user=str(parts.get("user") or ""),
        password=str(parts.get("password") or ""),
    )


def bad_dsn(why: str) -> ConfigurationError:
    """The error for a DSN psycopg cannot read."""
    return ConfigurationError(
        f"the PostgreSQL DSN is not valid ({why}). Give a URL such as "
        f"'postgresql://user:password@host:5432/dbname' or a libpq string such as "
        f"'host=... port=5432 dbname=... user=...'."
    )


def translate(error: Exception, server: Server, action: str) -> TransportError:
    """The Conveyor error for a psycopg (or psycopg_pool) ``error`` raised while ``action``."""
    import psycopg
    import psycopg_pool

    detail = server.scrub(" ".join(str(error).split()))
    sqlstate = getattr(error, "sqlstate", None) or ""
    if isinstance(error, psycopg_pool.PoolTimeout):
        return ConnectionFailed(
            f"no connection to {server} became available while {action}: the server is down, "
            f"unreachable or refusing this role, or every pooled connection is busy. Check that "
            f"PostgreSQL is running and reachable from here, or raise max_connections "
            f"(psycopg_pool: {detail})."
        )
    if isinstance(error, psycopg_pool.PoolClosed):
        return ConnectionFailed(f"the connection pool to {server} is closed ({action}).")
    # libpq reports a refused login at connect as an OperationalError without a SQLSTATE.
    if sqlstate[:2] == "28" or "authentication failed" in detail:
        return ConnectionFailed(
            f"{server} refused the credentials while {action}: check the user and password in "
            f"the DSN (and pg_hba.conf on the server) ({detail})."
        )
    if sqlstate == "3D000" or ("does not exist" in detail and "database" in detail):
        return ConnectionFailed(
            f"the database of {server} does not exist ({action}). Create it "
            f"(CREATE DATABASE ...) or fix dbname in the DSN ({detail})."
        )
    if "role" in detail and "does not exist" in detail:
        return ConnectionFailed(
            f"{server} has no such role ({action}). Create it (CREATE ROLE ... LOGIN) or fix the "
            f"user in the DSN ({detail})."
        )
    if isinstance(error, psycopg.OperationalError) or sqlstate[:2] in _CONNECTION_CLASSES:
        return ConnectionFailed(
            f"cannot reach {server} while {action}: check that the server runs and that host "
            f"and port are right; a restarted server is reconnected to on the next call "
            f"({detail})."
        )
    if sqlstate == "42P01":  # undefined table: someone dropped the schema under us
        return TransportError(
            f"Conveyor's tables are missing on {server} while {action}; they were dropped after "
            f"this process created them. Restart the process (it creates them on first use) or "
            f"run `python -m conveyor_postgres migrate --dsn ...` ({detail})."
        )
    return TransportError(f"PostgreSQL failed on {server} while {action} ({detail}).")


def newer_schema(server: Server, schema: str, found: int, known: int) -> ConfigurationError:
    """The error for tables written by a newer conveyor-postgres: changing them could lose data."""
    return ConfigurationError(
        f"the schema {schema!r} on {server} has Conveyor schema version {found}, but this "
        f"conveyor-postgres knows versions up to {known}: a newer release created it. Upgrade "
        f"conveyor-postgres here, or use another schema= for this application."
    )


def older_schema(server: Server, schema: str, found: int, known: int) -> ConfigurationError:
    """The error for tables of an older version when creating them on first use is turned off."""
    return ConfigurationError(
        f"the schema {schema!r} on {server} has Conveyor schema version {found}, older than "
        f"version {known} this conveyor-postgres needs. Run `python -m conveyor_postgres migrate "
        f"--dsn ... --schema {schema}` to upgrade it, or let the adapter create it on first use "
        f"(create_schema=True)."
    )


def _password_in(dsn: str) -> str:
    """The password of a DSN that could not be parsed, found by hand, to blank it out."""
    if "://" in dsn:
        authority = dsn.split("://", 1)[1].split("/", 1)[0]
        if "@" in authority:
            credentials = authority.rsplit("@", 1)[0]
            if ":" in credentials:
                return credentials.split(":", 1)[1]
    for part in dsn.split():
        if part.startswith("password="):
            return part[len("password=") :]
    return ""
