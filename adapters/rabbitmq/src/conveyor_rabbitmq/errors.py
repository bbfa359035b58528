"""Conveyor's errors for what goes wrong with a broker, worded for the person who must fix it.

Each names the broker by host, port, virtual host and user (:class:`BrokerAddress`), never by
password, says what was being done and what to check. The client library's own words are kept at
the end with any password scrubbed out (some clients print the URL they were given), and the
original exception is not chained, so no traceback can carry a credential either.
"""

from __future__ import annotations

from conveyor.core.errors import ConfigurationError, ConnectionFailed
from conveyor_rabbitmq.address import BrokerAddress

__all__ = [
    "scrub",
    "unreachable",
    "refused_login",
    "refused_vhost",
    "connection_lost",
    "inequivalent_queue",
]


def scrub(error: BaseException, password: str | None) -> str:
    """``Type: message`` of a client exception, with the password replaced by ``***``."""
    text = f"{type(error).__name__}: {error}".strip().rstrip(":")
    if password:
        text = text.replace(password, "***")
    return text


def unreachable(address: BrokerAddress, detail: str, *, tried_for: float) -> ConnectionFailed:
    """No AMQP connection to ``address`` could be opened within the reconnect budget."""
    return ConnectionFailed(
        f"cannot connect to RabbitMQ at {address.where} as user {address.username!r} "
        f"(tried for {tried_for:.1f} s): {detail}. Check that the broker is running and "
        f"listening there, and that the channel's url names the right host and port."
    )


def refused_login(address: BrokerAddress, detail: str) -> ConnectionFailed:
    """The broker refused the user name or password (never retried: it will not change)."""
    return ConnectionFailed(
        f"RabbitMQ at {address.where} refused the login of user {address.username!r}: the user "
        f"does not exist or the password is wrong (the password is not shown here). Fix the "
        f"credentials in the channel's url; note that RabbitMQ's 'guest' user may only connect "
        f"from localhost ({detail})."
    )


def refused_vhost(address: BrokerAddress, detail: str) -> ConnectionFailed:
    """The virtual host does not exist, or the user may not use it."""
    return ConnectionFailed(
        f"RabbitMQ at {address.host}:{address.port} refused access to virtual host "
        f"{address.vhost!r} for user {address.username!r}: it does not exist or the user has "
        f"no permissions on it. Create it (rabbitmqctl add_vhost) and grant permissions "
        f"(rabbitmqctl set_permissions), or fix the vhost at the end of the url ({detail})."
    )


def connection_lost(
    address: BrokerAddress, action: str, detail: str, *, tried_for: float
) -> ConnectionFailed:
    """The connection broke while doing ``action`` and could not be opened again in time."""
    return ConnectionFailed(
        f"lost the connection to RabbitMQ at {address.where} while {action}, and could not "
        f"reconnect within {tried_for:.1f} s: {detail}. Check the broker; raise the channel's "
        f"reconnect_timeout to wait longer for it."
    )


def inequivalent_queue(address: BrokerAddress, queue: str, detail: str) -> ConfigurationError:
    """The queue exists on the broker with other arguments than this channel asks for."""
    return ConfigurationError(
        f"the RabbitMQ queue {queue!r} at {address.where} already exists with other arguments "
        f"than this channel declares (queue type or x-max-priority): {detail}. A queue's type "
        f"cannot change: delete the queue (rabbitmqctl delete_queue {queue}) once it is "
        f"drained, or configure the channel as the queue was created."
    )
