"""Replays and deletes of one Redis dead letter, in threads and in processes, 20 trials each.

The letter is claimed (read and delete in one script) before its message is sent, so of many
replays exactly one sends it, and a delete racing a replay ends in exactly one of the two.
"""

from __future__ import annotations

import pytest

from pytest_conveyor.dead_letter_races import check_races

APP = "redis_replay_race_app:build"


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_concurrent_replays_send_once(redis_url: str, prefix: str, processes: bool) -> None:
    outcomes = check_races(APP, f"{redis_url} {prefix}", ["replay"] * 3, processes=processes)

    assert all(o.replayed == 1 for o in outcomes)


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_a_replay_racing_a_delete_ends_in_one(redis_url: str, prefix: str, processes: bool) -> None:
    outcomes = check_races(APP, f"{redis_url} {prefix}", ["replay", "delete"], processes=processes)

    assert len(outcomes) == 20
