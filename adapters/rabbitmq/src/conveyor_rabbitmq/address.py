"""Where the broker is, read from an AMQP URL, and how to name it in an error without secrets.

Every error and log line of this adapter names the broker through :class:`BrokerAddress`, which
keeps the user, host, port and virtual host but never the password: a URL pasted into a log or
an issue must not leak a credential.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from conveyor.core.errors import ConfigurationError

__all__ = ["BrokerAddress", "parse_url"]

_SCHEMES = {"amqp": 5672, "amqps": 5671}


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """The parts of an AMQP URL that are safe to print.

    Attributes:
        scheme: "amqp" or "amqps".
        host: the broker's host name or address.
        port: the AMQP port.
        vhost: the virtual host ("/" by default).
        username: the user; the password is deliberately not kept here.
    """

    scheme: str
    host: str
    port: int
    vhost: str
    username: str

    def __str__(self) -> str:
        vhost = "" if self.vhost == "/" else self.vhost
        return f"{self.scheme}://{self.username}@{self.host}:{self.port}/{vhost}"

    @property
    def where(self) -> str:
        """ "host:port (vhost '/')": the phrase errors use."""
        return f"{self.host}:{self.port} (vhost {self.vhost!r})"


def parse_url(url: str) -> BrokerAddress:
    """Check an AMQP URL and return its printable parts.

    Raises:
        ConfigurationError: the URL is not an ``amqp://`` or ``amqps://`` URL with a host and a
            numeric port; the message shows the URL with its password masked.
    """
    if not isinstance(url, str) or not url:
        raise ConfigurationError(
            f"RabbitMQ url must be a non-empty string such as "
            f"'amqp://user:password@localhost:5672/', got {url!r}."
        )
    shown = mask_password(url)
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ConfigurationError(
            f"RabbitMQ url {shown!r} has scheme {parts.scheme or 'none'!r}; use "
            f"'amqp://user:password@host:5672/vhost' (or 'amqps://' for TLS)."
        )
    try:
        port = parts.port or _SCHEMES[parts.scheme]
    except ValueError:
        raise ConfigurationError(
            f"RabbitMQ url {shown!r} has a port that is not a number between 0 and 65535; "
            f"write it as 'amqp://user:password@host:5672/'."
        ) from None
    if not parts.hostname:
        raise ConfigurationError(
            f"RabbitMQ url {shown!r} names no host; write it as 'amqp://user:password@host:5672/'."
        )
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    vhost = unquote(path) if path else "/"
    return BrokerAddress(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port,
        vhost=vhost,
        username=unquote(parts.username) if parts.username else "guest",
    )


def mask_password(url: str) -> str:
    """The URL with any password replaced by ``***``, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()
