"""Replays and deletes of one PostgreSQL dead letter, in threads and processes, 20 trials each.

The letter is claimed (one ``DELETE ... RETURNING``) before its message is sent, so of many
replays exactly one sends it, and a delete racing a replay ends in exactly one of the two.
"""

from __future__ import annotations

import pytest

from pytest_conveyor.dead_letter_races import check_races

APP = "postgres_replay_race_app:build"


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_concurrent_replays_send_once(dsn: str, schema: str, processes: bool) -> None:
    outcomes = check_races(APP, f"{dsn} {schema}", ["replay"] * 3, processes=processes)

    assert all(o.replayed == 1 for o in outcomes)


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_a_replay_racing_a_delete_ends_in_one(dsn: str, schema: str, processes: bool) -> None:
    outcomes = check_races(APP, f"{dsn} {schema}", ["replay", "delete"], processes=processes)

    assert len(outcomes) == 20
