"""Where a Redis server is, read from its URL once, and said without the password.

Every error and log line of the adapter names the server through :class:`RedisAddress`
(``Redis at 127.0.0.1:6379, database 0``), never through the URL, so a password in the URL
never reaches a log. A URL that cannot work is refused when the channel is defined, with what
was wrong and the form that works.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from conveyor.core.errors import ConfigurationError

__all__ = ["RedisAddress", "parse_url"]

_SCHEMES = ("redis", "rediss", "unix")
_FORM = (
    "redis://[[user]:password@]host[:port][/database], rediss://... for TLS, or "
    "unix:///path/to/redis.sock[?db=N]"
)


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """A parsed Redis URL.

    Attributes:
        url: the URL as given (it may hold a password: never print it; ``repr`` leaves it out).
        host: the host name, or the socket path for ``unix://``.
        port: the TCP port (0 for a unix socket).
        database: the logical database number.
        password: the password from the URL, if any; used only to scrub error texts.
    """

    url: str = field(repr=False)
    host: str
    port: int
    database: int
    password: str | None = field(default=None, repr=False)

    def where(self) -> str:
        """How errors and logs name the server: host, port and database, never credentials."""
        place = self.host if self.port == 0 else f"{self.host}:{self.port}"
        return f"Redis at {place}, database {self.database}"

    def scrub(self, text: str) -> str:
        """``text`` with the password replaced, should a client library ever echo it."""
        if self.password:
            return text.replace(self.password, "***")
        return text


def parse_url(url: str) -> RedisAddress:
    """Check a Redis URL and read where it points.

    Raises:
        ConfigurationError: the URL is not a string, has another scheme, no host, a port
            that is not a number from 1 to 65535, or a database that is not a whole number.
            The message shows the URL with its password masked.
    """
    if not isinstance(url, str) or not url:
        raise ConfigurationError(
            f"a Redis URL must be a non-empty string, got {url!r}; use {_FORM}."
        )
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise ConfigurationError(
            f"Redis URL {_masked(url)!r} cannot be read ({error}); use {_FORM}."
        ) from None
    shown = _masked(url)
    if parts.scheme not in _SCHEMES:
        raise ConfigurationError(
            f"Redis URL {shown!r} has scheme {parts.scheme!r}; Conveyor's Redis channel takes "
            f"redis://, rediss:// or unix://: {_FORM}."
        )
    password = unquote(parts.password) if parts.password else None
    query = parse_qs(parts.query)
    database_text = query.get("db", [""])[0]
    if parts.scheme == "unix":
        if not parts.path:
            raise ConfigurationError(f"Redis URL {shown!r} names no socket path; use {_FORM}.")
        host, port = parts.path, 0
    else:
        if not parts.hostname:
            raise ConfigurationError(
                f"Redis URL {shown!r} names no host; use {_FORM}, e.g. redis://127.0.0.1:6379/0."
            )
        try:
            port = parts.port or 6379
        except ValueError:
            raise ConfigurationError(
                f"Redis URL {shown!r} has a port that is not a number from 1 to 65535; use {_FORM}."
            ) from None
        host = parts.hostname
        path = parts.path.strip("/")
        if path:
            database_text = path
    try:
        database = int(database_text) if database_text else 0
    except ValueError:
        raise ConfigurationError(
            f"Redis URL {shown!r} names database {database_text!r}; a database is a whole number "
            f"(0 to 15 on a default server), as in redis://host:6379/0."
        ) from None
    if database < 0:
        raise ConfigurationError(f"Redis URL {shown!r} names database {database}; use 0 or more.")
    return RedisAddress(url, host, port, database, password)


def _masked(url: str) -> str:
    """The URL with any password replaced by ``***``, for error messages."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unreadable URL>"
    if not password:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()
