"""``RabbitMQTransport.stats`` against a real broker: messages ready, from a passive declare.

AMQP tells a queue's ready messages only: in flight (unacknowledged) and the oldest's age stay
unknown, and the check holds the transport to saying so. Messages the broker pushed ahead to a
subscribed consumer are not ready, so they are not pending either.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conveyor.core.clock import SystemClock
from conveyor_rabbitmq import RabbitMQTransport
from pytest_conveyor.channel_stats import check_channel_stats


@pytest.mark.parametrize("queue_type", ["quorum", "classic"])
def test_stats_tell_the_messages_ready(
    amqp_url: str, queue_names: Callable[[], str], queue_type: str
) -> None:
    transport = RabbitMQTransport(amqp_url, clock=SystemClock(), queue_type=queue_type)  # type: ignore[arg-type]
    try:
        # a consumer that received once holds the next message pushed (prefetch 1), which
        # the broker no longer counts as ready
        check_channel_stats(transport, queue_names(), knows={"pending"}, pushed_ahead=1)
    finally:
        transport.close()
