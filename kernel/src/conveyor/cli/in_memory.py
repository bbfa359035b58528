"""Refusals for what a separate process cannot reach: in-memory channels and dead letters.

An in-memory channel and the in-memory dead-letter store live inside the process that built
them. ``conveyor run orders`` on an empty in-memory channel waits forever (nobody else can send
to it), and ``conveyor dead-letter list`` on an empty in-memory store says "no dead letters"
while the workers' stores are full. Both are refused with the reason and the fix. When the app
itself filled them (a demo, a test app), there is something to act on, and the command goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from conveyor.drivers.channel_runtime import AsyncChannelRuntime, ChannelRuntime
from conveyor.stores.dead_letters import DeadLetterStore, InMemoryDeadLetterStore
from conveyor.transports.seam import AsyncInspectableTransport, InspectableTransport

__all__ = ["empty_in_memory_channels", "in_memory_channel_error", "in_memory_letters_error"]


def empty_in_memory_channels(
    channels: Mapping[str, ChannelRuntime] | Mapping[str, AsyncChannelRuntime],
    names: Sequence[str],
) -> list[str]:
    """The channels among ``names`` that are not durable and hold nothing now."""
    found = []
    for name in names:
        runtime = channels.get(name)
        if runtime is None or runtime.transport.capabilities.durable:
            continue
        inspectable = runtime.inspectable
        if inspectable is None:
            continue  # it cannot say whether it is empty: let it run
        if isinstance(runtime, ChannelRuntime):
            assert isinstance(inspectable, InspectableTransport)
            pending = inspectable.pending(name)
        else:  # an asyncio transport, asked on a loop of its own before the worker's
            assert isinstance(inspectable, AsyncInspectableTransport)
            pending = asyncio.run(_pending(inspectable, name))
        if pending == 0:
            found.append(name)
    return found


async def _pending(transport: AsyncInspectableTransport, name: str) -> int:
    return await transport.pending(name)


def in_memory_channel_error(names: Sequence[str], kinds: Mapping[str, str]) -> str:
    """Why ``conveyor run`` refuses these channels, and the fix."""
    first = names[0]
    listed = ", ".join(f"{name!r} ({kinds[name]})" for name in names)
    return (
        f"channel {listed} {'is' if len(names) == 1 else 'are'} in memory: it lives in this "
        f"process only, so no other process can send to it, and it is empty, so this worker "
        f"would wait forever. Declare it on a durable transport (for example "
        f'SqliteChannel("{first}", path="app.db") from conveyor-sqlite, or a broker\'s channel), '
        f"or pass --in-memory if this process's own schedules feed it."
    )


def in_memory_letters_error(store: DeadLetterStore) -> str | None:
    """Why an empty in-memory store cannot answer for the workers, or None if it can."""
    if not isinstance(store, InMemoryDeadLetterStore) or store.count() > 0:
        return None
    return (
        "the dead-letter store is in memory (InMemoryDeadLetterStore): it holds only the dead "
        "letters of the process that built it, so this command cannot see your workers'. Give "
        "the workers and this command one durable store: Messaging(dead_letters="
        'SqliteDeadLetterStore("app.db")) from conveyor-sqlite, or a broker adapter\'s store.'
    )
