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
    """How one handler names its deduplication key: from a header or from the payload."""

    header: str | None = None
    key: Callable[[object], str] | None = None


def deduplicated(
    *, header: str | None = None, key: Callable[[object], str] | None = None
) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """Deduplicate a handler by a header's value or ``key(payload)`` instead of the message id."""
    from conveyor.core.handlers import set_option

    if header is not None and key is not None:
        from conveyor.core.errors import ConfigurationError

        raise ConfigurationError(
            "@deduplicated takes header= or key=, not both; choose the one that names the "
            "business identity of the message."
        )
    return set_option("deduplication", DeduplicationKey(header=header, key=key))
