"""redis-py's exceptions in Conveyor's terms, naming the server and never a password.

The adapter translates (DESIGN rule 8): a server that cannot be reached, a refused password and
a database that does not exist are :class:`~conveyor.core.errors.ConnectionFailed`; a message
over the server's size limit is :class:`~conveyor.core.errors.MessageTooLarge`; anything else the
server refuses is a :class:`~conveyor.core.errors.TransportError`. Each says what was being done,
where, and what to check. redis-py is imported only when an error is translated.
"""

from __future__ import annotations

from conveyor.core.errors import ConnectionFailed, MessageTooLarge, TransportError
from conveyor_redis.address import RedisAddress

__all__ = ["translate", "is_connection_error"]

_AUTH_MARKERS = ("WRONGPASS", "NOAUTH", "invalid password", "invalid username-password", "AUTH")


def is_connection_error(error: BaseException) -> bool:
    """True when ``error`` means the server could not be reached or the connection broke,
    the kind of failure a consumer waits out by reconnecting."""
    from redis.exceptions import AuthenticationError, ConnectionError, TimeoutError

    return isinstance(error, ConnectionError | TimeoutError) and not isinstance(
        error, AuthenticationError
    )


def translate(error: Exception, address: RedisAddress, action: str) -> TransportError:
    """The Conveyor error for ``error``, raised while ``action`` (e.g. "sending to channel 'x'")."""
    from redis.exceptions import (
        AuthenticationError,
        ConnectionError,
        NoPermissionError,
        ResponseError,
        TimeoutError,
    )

    text = address.scrub(str(error)) or type(error).__name__
    where = address.where()
    if isinstance(error, AuthenticationError) or (
        isinstance(error, ResponseError | ConnectionError)
        and any(marker in str(error) for marker in _AUTH_MARKERS)
    ):
        return ConnectionFailed(
            f"{where} refused the credentials while {action}: {text}. Check the user name and "
            f"password in the URL (redis://user:password@host:port/db; only a password: "
            f"redis://:password@host:port/db) against the server's requirepass or ACL users."
        )
    if isinstance(error, NoPermissionError):
        return TransportError(
            f"{where} does not allow this user to do it while {action}: {text}. Grant the "
            f"user the commands EVALSHA, EVAL, SCRIPT, BLPOP, HGET and the keys of the prefix."
        )
    if isinstance(error, ResponseError) and "DB index is out of range" in str(error):
        return ConnectionFailed(
            f"{where}: the server has no database {address.database} ({text}) while "
            f"{action}. Use a database number below the server's `databases` setting (16 by "
            f"default) in the URL's path, e.g. redis://host:6379/0."
        )
    if isinstance(error, TimeoutError):
        return ConnectionFailed(
            f"{where} did not answer in time while {action}: {text}. Check that the server is "
            f"up and not overloaded, or raise the channel's socket_timeout."
        )
    if isinstance(error, ConnectionError):
        return ConnectionFailed(
            f"cannot reach {where} while {action}: {text}. Check that redis-server runs "
            f"there and that the host and port in the URL are right."
        )
    if isinstance(error, ResponseError) and (
        "maximum allowed size" in str(error) or "proto-max-bulk-len" in str(error)
    ):
        return MessageTooLarge(
            f"{where} refused a message as too large while {action}: {text}. Send a smaller "
            f"message (store large payloads elsewhere and send a reference)."
        )
    if isinstance(error, ResponseError) and "OOM" in str(error):
        return TransportError(
            f"{where} is out of memory (maxmemory) while {action}: {text}. Free memory or "
            f"raise maxmemory; a queue needs maxmemory-policy noeviction, never an evicting one."
        )
    return TransportError(f"{where} failed while {action}: {type(error).__name__}: {text}")
