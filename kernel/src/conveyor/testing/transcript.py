"""Transcripts: a flow as text that is the same on every run, for snapshot tests.

One line per journal record. Times are relative to the start of the test, message ids are
renumbered in order of first appearance (``m1``, ``m2``, ...) wherever they occur, including
dead-letter ids, so a transcript does not depend on the id generator. Two runs of a
deterministic flow give the same transcript, character for character;
:func:`assert_deterministic` checks exactly that.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from conveyor.core.journal import Record, RecordKind
from conveyor.testing.flow import BUS_KINDS
from conveyor.testing.formatting import format_duration, format_offset
from conveyor.testing.matching import short_repr
from conveyor.testing.report import FlowAssertionError

if TYPE_CHECKING:
    from conveyor.testing.harness import Harness

__all__ = ["transcript", "assert_deterministic", "transcript_difference"]


def transcript(records: Iterable[Record], origin: datetime, *, payloads: bool = True) -> str:
    """The flow as stable text: one line per record, ids renumbered, times since ``origin``.

    Args:
        records: journal records, in order.
        origin: the instant shown as ``+0s`` (the start of the test).
        payloads: show each sent, published or asked message's ``repr``.
    """
    records = list(records)
    names: dict[str, str] = {}
    for record in records:
        for found in (record.message_id, record.causation_id):
            if found is not None and found not in names:
                names[found] = f"m{len(names) + 1}"
    pattern = (
        re.compile("|".join(re.escape(i) for i in sorted(names, key=len, reverse=True)))
        if names
        else None
    )

    def rename(text: str) -> str:
        return pattern.sub(lambda m: names[m.group(0)], text) if pattern is not None else text

    return "\n".join(_line(r, origin, names, rename, payloads) for r in records)


def _line(
    r: Record, origin: datetime, names: dict[str, str], rename: Callable[[str], str], payloads: bool
) -> str:
    parts = [format_offset(r.at, origin), r.kind.value, r.message_type, names[r.message_id]]
    if r.causation_id is not None:
        parts.append(f"<- {names[r.causation_id]}")
    if r.channel:
        parts.append(f"on {r.where}")
    if r.endpoint_id:
        parts.append(f"-> {r.endpoint_id}")
    if r.attempt != 1:
        parts.append(f"attempt {r.attempt}")
    if r.delay is not None:
        parts.append(f"delay {format_duration(r.delay)}")
    if r.exception is not None:
        parts.append(f"!! {r.exception}")
    if r.detail and r.kind is not RecordKind.TICKED:
        parts.append(f"({rename(r.detail)})")
    if payloads and r.kind in BUS_KINDS:
        parts.append(f"= {short_repr(r.payload, 200)}")
    return " ".join(parts)


def assert_deterministic(
    build: Callable[[], Harness], flow: Callable[[Harness], object], *, runs: int = 2
) -> str:
    """Run ``flow`` on ``runs`` fresh harnesses and fail when their transcripts differ.

    Nondeterminism a second run exposes: state kept between runs (module globals, class
    attributes, caches), unseeded randomness, wall-clock reads, ids from ``uuid``. Returns the
    transcript, for a snapshot.
    """
    __tracebackhide__ = True
    first: str | None = None
    for run in range(1, runs + 1):
        harness = build()
        flow(harness)
        text = harness.transcript()
        if first is None:
            first = text
            continue
        difference = transcript_difference(first, text, run)
        if difference is not None:
            raise FlowAssertionError(difference)
    return first or ""


def transcript_difference(first: str, other: str, run: int = 2) -> str | None:
    """None when two runs' transcripts agree; otherwise the failure text with a diff."""
    if first == other:
        return None
    diff = difflib.unified_diff(
        first.splitlines(), other.splitlines(), "run 1", f"run {run}", lineterm="", n=2
    )
    return (
        f"The flow is not deterministic: run {run}'s transcript differs from run 1's.\n"
        "Look for state kept between runs (globals, class attributes, caches), unseeded\n"
        "randomness, wall-clock reads or uuids.\n\n" + "\n".join(diff)
    )
