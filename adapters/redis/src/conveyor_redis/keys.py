"""The Redis keys of one channel, named once and passed to every script.

Every key of a channel shares the hash tag ``{<channel>}``, so the channel's keys sit in one
cluster slot and each script names every key it touches in ``KEYS`` (cluster-safe; no key is
built inside Lua). The prefix keeps Conveyor's keys apart from the application's, and separate
test runs apart from each other.
"""

from __future__ import annotations

__all__ = ["ChannelKeys", "channel_keys", "KEY_NAMES"]

KEY_NAMES = (
    "messages",
    "ready",
    "delayed",
    "leased",
    "counts",
    "priorities",
    "expiries",
    "sequence",
    "wake",
)
"""In ``KEYS`` order, as the scripts read them:

messages: hash, id -> stored message (see ``envelope``).
ready: sorted set of due ids, score = -priority; equal scores order by id, and ids are
    fixed-width hex sequence numbers, so each priority level is first in, first out.
delayed: sorted set, score = not-before time in unix ms.
leased: sorted set, score = lease expiry in unix ms.
counts: hash, id -> delivery count; with membership in ``leased`` it fences acks (a receipt is
    ``<id>:<count>``, so an ack after the message was leased again finds another count).
priorities: hash, id -> priority, only for priorities other than 0.
expiries: hash, id -> expiry in unix ms, only for messages sent with one.
sequence: counter of ids.
wake: list a blocking receive waits on; every send and release pushes to it.
"""


class ChannelKeys:
    """The key names of one channel, as a tuple ready to pass as ``KEYS``."""

    __slots__ = ("all", "wake")

    def __init__(self, prefix: str, channel: str) -> None:
        base = f"{prefix}:{{{channel}}}:"
        self.all: tuple[str, ...] = tuple(base + name for name in KEY_NAMES)
        self.wake = self.all[-1]


def channel_keys(prefix: str, channel: str) -> ChannelKeys:
    """The keys of ``channel`` under ``prefix``."""
    if not isinstance(channel, str) or not channel:
        raise ValueError(f"channel name {channel!r} must be a non-empty string.")
    return ChannelKeys(prefix, channel)
