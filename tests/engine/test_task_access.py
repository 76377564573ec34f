"""Claims, completion rules, reassignment, comments and the audit trail, on every store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flowstar import (
    BaseHumanStep,
    InstanceNotFoundError,
    ManualClock,
    PermissionDeniedError,
    TaskAlreadyCompletedError,
    TaskNotFoundError,
    User,
    ValidationError,
    WorkflowStatus,
)
from flowstar.model.errors import TaskClaimedError
from flowstar.model.events import HumanTaskClaimed, HumanTaskCommented, HumanTaskUnclaimed
from flowstar.model.task_transitions import COMMENT_LIMIT
from tests.unit.helpers import RecordingBus, Set, linear

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ALICE = User(id="alice", groups=frozenset({"clerks"}), tenant_id="acme")
BOB = User(id="bob", groups=frozenset({"clerks"}), tenant_id="acme")
CAROL = User(id="carol", tenant_id="acme")
DAN = User(id="dan", tenant_id="acme")
ADMIN = User(id="root", tenant_id="acme", is_admin=True)
STRANGER = User(id="eve", groups=frozenset({"clerks"}), tenant_id="other", is_admin=True)


class Check(BaseHumanStep):
    name = "check"
    candidate_groups = ["clerks"]


class Sign(BaseHumanStep):
    name = "sign"
    assignee = "carol"


async def _task(make_engine: Any, step: BaseHumanStep, **kwargs: Any) -> tuple[Any, Any, Any]:
    clock = ManualClock(START)
    engine = make_engine(linear("flow", step, Set("after", done=True)), clock=clock, **kwargs)
    started = await engine.start_workflow("flow", {}, tenant_id="acme", created_by="root")
    (task,) = await engine.get_tasks(instance_id=started.id)
    return engine, task, clock


async def test_claim_then_complete(make_engine: Any) -> None:
    bus = RecordingBus()
    engine, task, clock = await _task(make_engine, Check(), event_bus=bus)
    with pytest.raises(PermissionDeniedError, match="claim the task first"):
        await engine.complete_task(task.id, data={}, user=ALICE)
    with pytest.raises(TypeError, match="claim_task needs the user who claims the task"):
        await engine.claim_task(task.id, user=None)  # type: ignore[arg-type]
    assert (await engine.get_task(task.id)).claimed_by is None
    clock.advance(timedelta(minutes=5))
    claimed = await engine.claim_task(task.id, user=ALICE)
    assert (claimed.claimed_by, claimed.claimed_at) == ("alice", START + timedelta(minutes=5))
    assert await engine.claim_task(task.id, user=ALICE) == claimed  # again: no change
    with pytest.raises(TaskClaimedError):
        await engine.claim_task(task.id, user=BOB)
    with pytest.raises(PermissionDeniedError):
        await engine.complete_task(task.id, data={}, user=BOB)
    with pytest.raises(PermissionDeniedError):
        await engine.complete_task(task.id, "bob", {}, user=ALICE)  # as somebody else
    done = await engine.complete_task(task.id, data={}, user=ALICE)
    assert done.status is WorkflowStatus.COMPLETED
    assert (await engine.get_task(task.id)).completed_by == "alice"
    with pytest.raises(TaskAlreadyCompletedError):
        await engine.complete_task(task.id, data={}, user=ALICE)
    assert [type(e) for e in bus.events if isinstance(e, HumanTaskClaimed)] == [HumanTaskClaimed]


async def test_unclaim_by_claimer_or_admin(make_engine: Any) -> None:
    bus = RecordingBus()
    engine, task, _clock = await _task(make_engine, Check(), event_bus=bus)
    await engine.claim_task(task.id, user=ALICE)
    with pytest.raises(PermissionDeniedError):
        await engine.unclaim_task(task.id, user=BOB)
    assert (await engine.unclaim_task(task.id, user=ADMIN)).claimed_by is None
    await engine.claim_task(task.id, user=BOB)
    assert (await engine.unclaim_task(task.id, user=BOB)).claimed_by is None
    unclaimed = [e for e in bus.events if isinstance(e, HumanTaskUnclaimed)]
    assert [(e.claimed_by, e.unclaimed_by) for e in unclaimed] == [("alice", "root"), ("bob", "bob")]


async def test_assigned_task_rules(make_engine: Any) -> None:
    engine, task, _clock = await _task(make_engine, Sign())
    with pytest.raises(PermissionDeniedError):
        await engine.get_task(task.id, user=ALICE)
    with pytest.raises(PermissionDeniedError):
        await engine.complete_task(task.id, data={}, user=ALICE)
    assert (await engine.get_task(task.id, user=CAROL)).id == task.id
    done = await engine.complete_task(task.id, data={}, user=CAROL)
    assert done.status is WorkflowStatus.COMPLETED


async def test_seed_call_still_works(make_engine: Any) -> None:
    engine, task, _clock = await _task(make_engine, Sign())
    done = await engine.complete_task(task.id, "someone", {})
    assert done.status is WorkflowStatus.COMPLETED
    assert (await engine.get_task(task.id)).completed_by == "someone"


async def test_tenants_do_not_see_each_other(make_engine: Any) -> None:
    engine, task, _clock = await _task(make_engine, Check())
    with pytest.raises(TaskNotFoundError):
        await engine.get_task(task.id, user=STRANGER)
    with pytest.raises(TaskNotFoundError):
        await engine.claim_task(task.id, user=STRANGER)
    with pytest.raises(InstanceNotFoundError):
        await engine.get_instance(task.instance_id, user=STRANGER)
    with pytest.raises(InstanceNotFoundError):
        await engine.cancel_workflow(task.instance_id, "no", user=STRANGER)


async def test_instance_visibility_and_admin_actions(make_engine: Any) -> None:
    engine, task, _clock = await _task(make_engine, Sign())
    assert str((await engine.get_instance(task.instance_id, user=CAROL)).id) == task.instance_id  # a task there
    with pytest.raises(PermissionDeniedError):
        await engine.get_instance(task.instance_id, user=ALICE)
    with pytest.raises(PermissionDeniedError):
        await engine.cancel_workflow(task.instance_id, "no", user=CAROL)
    with pytest.raises(PermissionDeniedError):
        await engine.retry(task.instance_id, user=CAROL)
    canceled = await engine.cancel_workflow(task.instance_id, "stop", user=ADMIN)
    assert canceled.status is WorkflowStatus.CANCELED
    actions = [e.action for e in await engine.task_audit(task.id)]
    assert actions == ["created", "canceled"]


async def test_reassign_with_reason_and_audit_trail(make_engine: Any) -> None:
    bus = RecordingBus()
    engine, task, clock = await _task(make_engine, Check(), event_bus=bus)
    await engine.claim_task(task.id, user=ALICE)
    clock.advance(timedelta(minutes=1))
    with pytest.raises(PermissionDeniedError):
        await engine.reassign_task(task.id, "carol", user=BOB)
    for to_user, to_group in (("", None), (None, " ")):
        # An empty name would leave the open task in nobody's inbox.
        with pytest.raises(ValidationError, match="reassigned to a user or group name"):
            await engine.reassign_task(task.id, to_user, assignee_group=to_group, user=ALICE)
    assert (await engine.get_task(task.id)).claimed_by == "alice"
    moved = await engine.reassign_task(task.id, "carol", reason="on holiday", user=ALICE)
    assert (moved.assignee_id, moved.claimed_by) == ("carol", None)
    clock.advance(timedelta(minutes=1))
    entry = await engine.comment_task(task.id, "  looks fine  ", user=CAROL)
    assert (entry.action, entry.actor, entry.details) == ("commented", "carol", {"text": "looks fine"})
    with pytest.raises(ValidationError):
        await engine.comment_task(task.id, "   ", user=CAROL)
    with pytest.raises(ValidationError):
        await engine.comment_task(task.id, "x" * (COMMENT_LIMIT + 1), user=CAROL)
    with pytest.raises(PermissionDeniedError):
        await engine.comment_task(task.id, "me too", user=DAN)  # neither assigned nor a candidate
    clock.advance(timedelta(minutes=1))
    await engine.complete_task(task.id, data={}, user=CAROL)
    trail = await engine.task_audit(task.id, user=ADMIN)
    assert [(e.action, e.actor) for e in trail] == [
        ("created", None),
        ("claimed", "alice"),
        ("reassigned", "alice"),
        ("commented", "carol"),
        ("completed", "carol"),
    ]
    assert trail[2].details["reason"] == "on holiday"
    assert trail[2].details["old_assignee"] is None
    assert [e.at for e in trail] == sorted(e.at for e in trail)
    assert {e.task_id for e in trail} == {task.id}
    assert trail[0].tenant_id == "acme"
    assert [e.entry_id for e in bus.events if isinstance(e, HumanTaskCommented)] == [entry.id]
    with pytest.raises(PermissionDeniedError):
        await engine.task_audit(task.id, user=DAN)
