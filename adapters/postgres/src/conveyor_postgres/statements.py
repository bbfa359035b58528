"""The SQL on the message table, as text per schema, and how rows become deliveries.

Shared by the sync and the asyncio transports so both run the very same statements. Every
statement is one round trip in autocommit: PostgreSQL makes each atomic on its own, and the
claim's ``FOR UPDATE SKIP LOCKED`` lets any number of consumers take different rows at once
without waiting for each other.

Sends and releases notify the schema's LISTEN channel (payload: the Conveyor channel), in the
same statement, so a consumer waiting in ``receive(wait=...)`` wakes at once; inside an
application's transaction the notification is delivered at commit, with the message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from conveyor.core.errors import SerializationError
from conveyor.transports.seam import Delivery, WireMessage
from conveyor_postgres.schema import check_schema_name, notify_channel

__all__ = [
    "Statements",
    "send_params",
    "to_deliveries",
    "split_receipt",
    "encode_body",
    "encode_headers",
    "decode_headers",
    "check_channel",
]

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True, slots=True)
class Statements:
    """Every statement the transports run, with the schema written in."""

    send: str
    claim: str
    ack: str
    release: str
    renew: str
    pending: str
    next_due: str
    stats: str
    listen: str
    unlisten: str
    notify_channel: str

    @classmethod
    def of(cls, schema: str) -> Statements:
        s = check_schema_name(schema)
        notify = notify_channel(s)
        return cls(
            # One row, then one notification for it: a single round trip.
            send=f"""
                WITH sent AS (
                    INSERT INTO {s}.messages
                        (channel, body, headers, priority, visible_at, expires_at)
                    VALUES (%s, %s, %s, %s, %s, %s)
                    RETURNING channel
                )
                SELECT pg_notify('{notify}', channel) FROM sent
            """,
            # Rows locked by another claim are skipped, not waited for; the lease is the row's
            # visible_at moved to the lease's end, with a token naming this delivery.
            claim=f"""
                WITH next AS (
                    SELECT id FROM {s}.messages
                    WHERE channel = %s AND visible_at <= %s
                    ORDER BY priority DESC, id
                    LIMIT %s
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE {s}.messages AS m
                SET visible_at = %s, lease_token = %s, delivery_count = m.delivery_count + 1
                FROM next WHERE m.id = next.id
                RETURNING m.id, m.priority, m.body, m.headers, m.delivery_count
            """,
            ack=f"DELETE FROM {s}.messages WHERE id = %s AND lease_token = %s",
            release=f"""
                WITH released AS (
                    UPDATE {s}.messages SET visible_at = %s, lease_token = NULL
                    WHERE id = %s AND lease_token = %s
                    RETURNING channel
                )
                SELECT pg_notify('{notify}', channel) FROM released
            """,
            renew=f"UPDATE {s}.messages SET visible_at = %s WHERE id = %s AND lease_token = %s",
            pending=f"SELECT count(*) FROM {s}.messages WHERE channel = %s",
            next_due=f"SELECT min(visible_at) FROM {s}.messages WHERE channel = %s",
            # In flight: leased, the lease not run out. Waiting: visible now (due, or its
            # lease ran out), receivable since visible_at.
            stats=f"""
                SELECT count(*),
                       count(*) FILTER (WHERE lease_token IS NOT NULL AND visible_at > %(now)s),
                       min(visible_at) FILTER (WHERE visible_at <= %(now)s)
                FROM {s}.messages WHERE channel = %(channel)s
            """,
            listen=f"LISTEN {notify}",
            unlisten=f"UNLISTEN {notify}",
            notify_channel=notify,
        )


def check_channel(channel: str) -> None:
    """Refuse what is not a channel name before it reaches SQL (where it is a parameter)."""
    if type(channel) is not str or not channel:
        raise ValueError(f"channel must be a non-empty string, got {channel!r}.")


def send_params(
    channel: str,
    message: WireMessage,
    *,
    visible_at: datetime,
    priority: int,
    expires_at: datetime | None,
) -> tuple[object, ...]:
    """The parameters of :attr:`Statements.send`, in order."""
    if type(priority) is not int:
        raise TypeError(f"priority must be an int, got {priority!r}.")
    return (
        channel,
        encode_body(message.body),
        encode_headers(message.headers),
        priority,
        visible_at,
        expires_at,
    )


def to_deliveries(channel: str, rows: list[tuple[Any, ...]], token: str) -> list[Delivery]:
    """Claimed rows as deliveries in receive order (RETURNING keeps no order of its own)."""
    if len(rows) > 1:
        rows.sort(key=lambda row: (-row[1], row[0]))
    return [
        Delivery(
            channel=channel,
            message=WireMessage(body=bytes(row[2]), headers=decode_headers(row[3])),
            receipt=f"{row[0]}:{token}",
            delivery_count=row[4],
        )
        for row in rows
    ]


def split_receipt(delivery: Delivery) -> tuple[int, str]:
    """The row id and lease token a receipt carries."""
    receipt = delivery.receipt
    row_id, _, token = receipt.partition(":")
    if not token or not row_id.isdigit():
        raise ValueError(
            f"receipt {receipt!r} of a delivery on channel {delivery.channel!r} was not made by "
            f"conveyor-postgres; settle a delivery on the transport that received it."
        )
    return int(row_id), token


def encode_body(body: object) -> bytes:
    """The body as bytes; anything but bytes-like is refused, as every broker does."""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    raise TypeError(
        f"WireMessage.body must be bytes, not {type(body).__name__}; encode it with the codec "
        f"first."
    )


def encode_headers(headers: Mapping[str, str]) -> str:
    """Headers as a JSON object of strings, stored as text (jsonb would refuse a NUL escape)."""
    for name, value in headers.items():
        if type(name) is not str or type(value) is not str:
            wrong = {k: v for k, v in headers.items() if type(k) is not str or type(v) is not str}
            raise TypeError(
                f"WireMessage headers must map strings to strings, which every broker takes; "
                f"got {wrong!r}. Convert the values with str() before sending."
            )
    return _dumps(headers if type(headers) is dict else dict(headers))


def decode_headers(text: str) -> dict[str, str]:
    """The headers stored by :func:`encode_headers`."""
    headers = json.loads(text)
    if not isinstance(headers, dict):
        raise SerializationError(
            f"stored headers {text[:80]!r} are not a JSON object; the row was not written by "
            f"conveyor-postgres. Remove or repair it.",
            raw=text.encode(),
        )
    for value in headers.values():
        if type(value) is not str:  # a row written by hand: make every value a string
            return {str(name): str(value) for name, value in headers.items()}
    return headers
