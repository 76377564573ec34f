"""Reminders and escalations of human tasks: durable timers, driven by the manual clock."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flowstar import (
    BaseHumanStep,
    Escalation,
    ManualClock,
    TaskStatus,
    User,
    ValidationError,
    WorkflowRegistry,
    WorkflowStatus,
)
from flowstar.db import PersistentExecutionEngine, create_database_engine
from flowstar.events import HumanTaskEscalated, HumanTaskReassigned
from flowstar.redis.notifications import notifications_for
from tests.unit.helpers import RecordingBus, Set, eventually, linear, next_due_at

HOUR = timedelta(hours=1)


def _flow(*escalations: Escalation, **step: Any) -> Any:
    approve = BaseHumanStep("approve", assignee="bob", escalations=list(escalations), **step)
    return linear("escalating", approve, Set("done", finished=True))


def _escalated(bus: RecordingBus) -> list[HumanTaskEscalated]:
    return [e for e in bus.events if isinstance(e, HumanTaskEscalated)]


async def _fire(engine: Any, clock: ManualClock, bus: RecordingBus, delay: timedelta, count: int, iid: Any) -> None:
    """Advance the clock, wait until ``count`` escalations have fired in all and their commit is done."""
    clock.advance(delay)
    await eventually(lambda: len(_escalated(bus)) >= count)
    await engine.settled(iid)


async def test_reminder_fires_once_after_its_delay(make_engine: Any, clock: ManualClock) -> None:
    bus = RecordingBus()
    engine = make_engine(_flow(Escalation(after=24 * HOUR)), clock=clock, event_bus=bus)
    start = clock.now()
    instance = await engine.start_workflow("escalating")
    assert await next_due_at(engine, instance.id) == start + 24 * HOUR
    (task,) = await engine.get_tasks(instance_id=instance.id)

    clock.advance(24 * HOUR - timedelta(seconds=1))
    await engine.settled(instance.id)
    assert _escalated(bus) == []

    await _fire(engine, clock, bus, timedelta(seconds=1), 1, instance.id)
    (event,) = _escalated(bus)
    assert (event.action, event.task_id, event.assignee, event.task_title) == ("reminded", task.id, "bob", "Approve")
    assert [(a.action, a.actor) for a in await engine.task_audit(task.id)] == [("created", None), ("reminded", None)]
    # The reminder leaves the task where it was, and the instance waiting on it.
    assert (await engine.get_task(task.id)).assignee_id == "bob"
    assert (await engine.get_instance(instance.id)).status is WorkflowStatus.WAITING
    assert await next_due_at(engine, instance.id) is None

    notes = notifications_for(event)
    assert [(n.audience, n.recipient, n.kind) for n in notes] == [("user", "bob", "task_reminder")]


async def test_repeating_reminder_fires_until_the_task_is_done(make_engine: Any, clock: ManualClock) -> None:
    bus = RecordingBus()
    engine = make_engine(_flow(Escalation(after=HOUR, every=2 * HOUR)), clock=clock, event_bus=bus)
    instance = await engine.start_workflow("escalating")
    (task,) = await engine.get_tasks(instance_id=instance.id)
    start = clock.now()
    await _fire(engine, clock, bus, HOUR, 1, instance.id)
    assert await next_due_at(engine, instance.id) == start + 3 * HOUR
    await _fire(engine, clock, bus, 2 * HOUR, 2, instance.id)
    assert [e.action for e in _escalated(bus)] == ["reminded", "reminded"]

    done = await engine.complete_task(task.id, "bob", {})
    done = await engine.wait_for_status(done.id, WorkflowStatus.COMPLETED, timeout=5)
    assert done.data == {"finished": True}
    # Completing the task dropped its timer: nothing is due, nothing fires later.
    assert await next_due_at(engine, instance.id) is None
    clock.advance(10 * HOUR)
    await engine.settled(instance.id)
    assert len(_escalated(bus)) == 2


async def test_escalation_reassigns_to_a_group(make_engine: Any, clock: ManualClock) -> None:
    bus = RecordingBus()
    engine = make_engine(_flow(Escalation(after=8 * HOUR, to_group="managers")), clock=clock, event_bus=bus)
    instance = await engine.start_workflow("escalating")
    (task,) = await engine.get_tasks(instance_id=instance.id)
    await engine.claim_task(task.id, user=User(id="bob"))

    await _fire(engine, clock, bus, 8 * HOUR, 1, instance.id)
    moved = await engine.get_task(task.id)
    assert (moved.assignee_id, moved.assignee_group, moved.claimed_by) == (None, "managers", None)
    (event,) = _escalated(bus)
    assert (event.action, event.assignee, event.assignee_group) == ("escalated", None, "managers")
    (reassigned,) = [e for e in bus.events if isinstance(e, HumanTaskReassigned)]
    assert (reassigned.old_assignee, reassigned.assignee_group) == ("bob", "managers")
    entry = (await engine.task_audit(task.id))[-1]
    assert (entry.action, entry.actor, entry.details["new_group"]) == ("escalated", None, "managers")
    assert "still open 8:00:00" in entry.details["reason"]

    # A manager now sees and completes it; bob no longer may.
    carol = User(id="carol", groups=frozenset({"managers"}))
    page = await engine.find_tasks(user=carol)
    assert [t.id for t in page.items] == [task.id]
    await engine.claim_task(task.id, user=carol)
    done = await engine.complete_task(task.id, "carol", {}, user=carol)
    final = await engine.wait_for_status(done.id, WorkflowStatus.COMPLETED, timeout=5)
    assert final.data == {"finished": True}


async def test_reminder_then_escalation_to_a_user(make_engine: Any, clock: ManualClock) -> None:
    bus = RecordingBus()
    flow = _flow(Escalation(after=HOUR), Escalation(after=3 * HOUR, to_user="carol"))
    engine = make_engine(flow, clock=clock, event_bus=bus)
    instance = await engine.start_workflow("escalating")
    (task,) = await engine.get_tasks(instance_id=instance.id)
    await _fire(engine, clock, bus, HOUR, 1, instance.id)
    assert (await engine.get_task(task.id)).assignee_id == "bob"
    await _fire(engine, clock, bus, 2 * HOUR, 2, instance.id)
    assert [(e.action, e.assignee) for e in _escalated(bus)] == [("reminded", "bob"), ("escalated", "carol")]
    assert (await engine.get_task(task.id)).assignee_id == "carol"


async def test_a_canceled_instance_drops_its_escalations(make_engine: Any, clock: ManualClock) -> None:
    bus = RecordingBus()
    engine = make_engine(_flow(Escalation(after=HOUR, to_user="carol")), clock=clock, event_bus=bus)
    instance = await engine.start_workflow("escalating")
    (task,) = await engine.get_tasks(instance_id=instance.id, status=None)
    await engine.cancel_workflow(instance.id, "not needed")
    clock.advance(2 * HOUR)
    await engine.settled(instance.id)
    assert _escalated(bus) == []
    canceled = await engine.get_task(task.id)
    assert (canceled.status, canceled.assignee_id) == (TaskStatus.CANCELED, "bob")
    # The task was canceled once: one audit entry, not one per timer.
    assert [a.action for a in await engine.task_audit(task.id)] == ["created", "canceled"]


async def test_escalations_survive_a_restart(sqlite_template: Path, tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "restart.db"
    shutil.copyfile(sqlite_template, path)
    registry = WorkflowRegistry()
    registry.register_definition(_flow(Escalation(after=HOUR, to_user="carol")))

    async def engine_on_file(bus: RecordingBus | None = None) -> tuple[PersistentExecutionEngine, Any]:
        database = create_database_engine(f"sqlite+aiosqlite:///{path}")
        return PersistentExecutionEngine(registry, engine=database, clock=clock, event_bus=bus), database

    first, database = await engine_on_file()
    instance = await first.start_workflow("escalating")
    await first.close()
    await database.dispose()

    bus = RecordingBus()
    second, database = await engine_on_file(bus)
    try:
        assert await second.recover() == 1
        await _fire(second, clock, bus, HOUR, 1, instance.id)
        (task,) = await second.get_tasks(instance_id=instance.id)
        assert task.assignee_id == "carol"
    finally:
        await second.close()
        await database.dispose()


@pytest.mark.parametrize(
    ("escalation", "message"),
    [
        (Escalation(after=timedelta(0)), "positive 'after'"),
        (Escalation(after=HOUR, every=timedelta(seconds=-1)), "'every' must be a positive"),
        (Escalation(after=HOUR, to_user="carol", every=HOUR), "cannot repeat"),
        (Escalation(after=HOUR, to_group=""), "'to_group' must be a non-empty"),
    ],
)
def test_bad_escalations_are_refused(escalation: Escalation, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _flow(escalation).validate()
