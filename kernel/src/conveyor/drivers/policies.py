"""Failure policies, resolved once per endpoint and channel when a ``Messaging`` is built.

The precedence lives here and only here (the README's table says the same):

=================  ==============================================================
setting            resolved from, most specific first
=================  ==============================================================
retry              the handler's ``@asynchronous(retry=...)``, the channel's
                   ``retry=``, the ``Messaging``'s ``retry=``
where a failure    the first level (handler, channel, ``Messaging``) that sets
goes               ``error_handler=`` or ``dead_letter=``: its error handler if
                   it names one (never the failing handler itself), else its
                   dead-letter setting; the ``Messaging`` keeps dead letters
                   unless ``dead_letter=False``. If the error handler raises,
                   the first ``dead_letter=`` from that level down decides
final failure      the channel's ``final_failure`` (default "resend")
=================  ==============================================================

An error handler and the dead-letter setting are one decision, so a less specific level never
overrides a more specific one: ``@asynchronous(dead_letter=True)`` on a handler keeps its failures
in the dead-letter store even when ``Messaging(error_handler=...)`` names a default error handler.

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
            handler, keeps = _destination(
                (endpoint_error_handlers.get(spec.endpoint_id), spec.dead_letter),
                (channel_error_handlers.get(name), definition.dead_letter),
                (error_handler, dead_letter),
            )
            resolved[(spec.endpoint_id, name)] = ResolvedPolicy(
                retry=spec.retry or definition.retry or retry,
                error_handler=handler.endpoint_id if handler is not None else None,
                dead_letter=keeps,
                final_failure=definition.final_failure,
                collect=definition.collector,
                manual_ack=definition.ack == "manual",
            )
    return resolved


def _destination(
    *levels: tuple[HandlerSpec | None, bool | None],
) -> tuple[HandlerSpec | None, bool]:
    """Where a failure goes: the error handler and dead-letter setting of the most specific
    level that sets either (the last level always does).

    A level that names only an error handler leaves the dead-letter setting, used when that
    error handler raises, to be inherited from the levels below it.
    """
    for index, (handler, dead_letter) in enumerate(levels):
        if handler is not None:
            inherited = (d for _, d in levels[index:] if d is not None)
            return handler, next(inherited, True)
        if dead_letter is not None:
            return None, dead_letter
    return None, True


def bus_retry(channel: AnyRuntime, retry: RetryPolicy | None) -> RetryPolicy | None:
    """The retry policy of an asynchronous bus's messages on ``channel``."""
    return channel.definition.retry or retry
