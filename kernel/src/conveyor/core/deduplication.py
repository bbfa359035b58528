"""How a handler names its deduplication key: ``@deduplicated(header=...)`` or ``key=...``.

The rule is read with the handler; the store that remembers keys is in
``conveyor.stores.deduplication``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DeduplicationKey", "deduplicated"]


@dataclass(frozen=True, slots=True)
class DeduplicationKey:
    """How one handler names its deduplication key: from a header or from the payload, and
    whose keys it shares (``tracking``; None: its own, under its endpoint id)."""

    header: str | None = None
    key: Callable[[object], str] | None = None
    tracking: str | None = None


def deduplicated(
    *,
    header: str | None = None,
    key: Callable[[object], str] | None = None,
    tracking: str | None = None,
) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """Deduplicate a handler by a header's value or ``key(payload)`` instead of the message id.

    ``tracking`` names the keys' scope: endpoints with the same tracking name share their keys,
    so a key one of them handled is a duplicate for all of them (Ecotone's ``trackingName``).
    Without it each endpoint keeps its own keys, under its endpoint id.
    """
    from conveyor.core.errors import ConfigurationError
    from conveyor.core.handlers import set_option

    if header is not None and key is not None:
        raise ConfigurationError(
            "@deduplicated takes header= or key=, not both; choose the one that names the "
            "business identity of the message."
        )
    if tracking is not None and (not isinstance(tracking, str) or not tracking):
        raise ConfigurationError(
            f"@deduplicated(tracking=...) takes a non-empty name shared by the endpoints whose "
            f"keys are one set, got {tracking!r}."
        )
    return set_option("deduplication", DeduplicationKey(header=header, key=key, tracking=tracking))
