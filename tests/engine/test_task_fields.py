"""Task fields: candidates, priority and follow-up dates, stored and read back by every store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flowstar import BaseHumanStep, ManualClock, ValidationError
from tests.unit.helpers import Set, linear

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Review(BaseHumanStep):
    name = "review"
    assignee_group = "reviewers"
    candidate_users = ["carol", "alice"]
    candidate_groups = ["legal", "reviewers", "finance"]
    candidates_key = "more_candidates"
    priority = 80
    follow_up = timedelta(days=2)


class Plain(BaseHumanStep):
    name = "plain"
    assignee = "bob"


async def test_open_task_fills_candidates_priority_follow_up(make_engine: Any) -> None:
    engine = make_engine(linear("review_flow", Set("a", a=1), Review()), clock=ManualClock(START))
    started = await engine.start_workflow(
        "review_flow", {"more_candidates": {"users": ["dave", "alice"], "groups": ["audit"]}}
    )
    (task,) = await engine.get_tasks(instance_id=started.id)
    # Sorted, no repeats; the assignee group counts once, as assignee_group.
    assert task.candidate_users == ["alice", "carol", "dave"]
    assert task.candidate_groups == ["audit", "finance", "legal"]
    assert task.assignee_group == "reviewers"
    assert task.priority == 80
    assert task.follow_up_at == START + timedelta(days=2)
    assert (task.claimed_by, task.claimed_at) == (None, None)
    # Read back by id the same way as in a list.
    assert await engine.get_task(task.id) == task


async def test_defaults_for_a_plain_task(make_engine: Any) -> None:
    engine = make_engine(linear("plain_flow", Plain()), clock=ManualClock(START))
    started = await engine.start_workflow("plain_flow", {})
    task = (await engine.get_tasks(instance_id=started.id))[0]
    assert (task.candidate_users, task.candidate_groups, task.priority, task.follow_up_at) == ([], [], 50, None)
    assert task.assignee_id == "bob"


async def test_reassign_moves_the_group_candidate(make_engine: Any) -> None:
    engine = make_engine(linear("review_flow", Review()), clock=ManualClock(START))
    started = await engine.start_workflow("review_flow", {})
    task = (await engine.get_tasks(instance_id=started.id))[0]
    moved = await engine.reassign_task(task.id, "erin", assignee_group="managers")
    assert (moved.assignee_id, moved.assignee_group) == ("erin", "managers")
    assert moved.candidate_groups == ["finance", "legal"]
    assert [t.id for t in await engine.get_tasks(assignee_group="managers")] == [task.id]


def test_invalid_priority_and_candidates_are_reported() -> None:
    step = Review(priority=101)
    assert any("priority" in p for p in step.problems())
    bad = Review(candidate_users="alice")
    assert any("candidate_users" in p for p in bad.problems())


def test_a_definition_with_a_bad_priority_is_refused() -> None:
    with pytest.raises(ValidationError, match="priority"):
        linear("bad_flow", Review(priority=-1))
