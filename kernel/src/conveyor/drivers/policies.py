"""Failure policies, resolved once per endpoint and channel when a ``Messaging`` is built.

The precedence lives here and only here (the README's table says the same):

=================  ==============================================================
setting            resolved from, most specific first
=================  ==============================================================
retry              the handler's ``@asynchronous(retry=...)``, the channel's
                   ``retry=``, the ``Messaging``'s ``retry=``
error handler      the handler's ``error_handler=``, the channel's, the
                   ``Messaging``'s (never the failing handler itself)
dead letter        the handler's ``dead_letter=``, the channel's, the
                   ``Messaging``'s (default True)
final failure      the channel's ``final_failure`` (default "resend")
=================  ==============================================================

A message of an asynchronous bus (``messaging.command_bus("orders")``) has no endpoint of its own:
the channel's retry policy, then the ``Messaging``'s, decide, and what still fails is a dead letter.
"""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.core.lifecycle import ResolvedPolicy
from conveyor.core.registry import HandlerSpec
from conveyor.core.retry import RetryPolicy
from conveyor.drivers.channel_runtime import AnyRuntime

__all__ = ["Policies", "resolve_policies", "bus_retry"]

Policies = Mapping[tuple[str, str], ResolvedPolicy]
"""The resolved policy of each (endpoint id, channel name) an endpoint is consumed from."""


def resolve_policies(
    specs: tuple[HandlerSpec, ...],
    channels: Mapping[str, AnyRuntime],
    *,
    retry: RetryPolicy | None,
    dead_letter: bool,
    error_handler: HandlerSpec | None,
    channel_error_handlers: Mapping[str, HandlerSpec | None],
    endpoint_error_handlers: Mapping[str, HandlerSpec | None],
) -> dict[tuple[str, str], ResolvedPolicy]:
    """Every endpoint's policy on each of its channels, by the precedence above."""
    resolved: dict[tuple[str, str], ResolvedPolicy] = {}
    for spec in specs:
        for name in spec.channels:
            definition = channels[name].definition
            handler = (
                endpoint_error_handlers.get(spec.endpoint_id)
                or channel_error_handlers.get(name)
                or error_handler
            )
            resolved[(spec.endpoint_id, name)] = ResolvedPolicy(
                retry=spec.retry or definition.retry or retry,
                error_handler=handler.endpoint_id if handler is not None else None,
                dead_letter=_first_set(spec.dead_letter, definition.dead_letter, dead_letter),
                final_failure=definition.final_failure,
            )
    return resolved


def bus_retry(channel: AnyRuntime, retry: RetryPolicy | None) -> RetryPolicy | None:
    """The retry policy of an asynchronous bus's messages on ``channel``."""
    return channel.definition.retry or retry


def _first_set(*values: bool | None) -> bool:
    for value in values:
        if value is not None:
            return value
    return False
