"""``SqsTransport.stats`` against a real SQS-compatible server: SQS's approximate counts.

Pending is ApproximateNumberOfMessages plus ...Delayed, in flight ...NotVisible; the age of
the oldest message is a CloudWatch metric, not a queue attribute, so it stays unknown.
"""

from __future__ import annotations

from collections.abc import Callable

from conveyor_sqs import SqsTransport
from pytest_conveyor.channel_stats import check_channel_stats


def test_stats_tell_pending_and_in_flight(
    transport: SqsTransport, unique: Callable[[str], str]
) -> None:
    check_channel_stats(transport, unique("stats"), knows={"pending", "in_flight"})
