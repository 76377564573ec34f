"""Human tasks: forms, assignment, due dates, completion rules and concurrency."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest

from flowstar import (
    BaseHumanStep,
    FormValidationError,
    InstanceNotFoundError,
    InvalidTransitionError,
    ManualClock,
    StepStatus,
    TaskAlreadyCompletedError,
    TaskNotFoundError,
    TaskStatus,
    ValidationError,
    WorkflowStatus,
)
from flowstar.events import HumanTaskReassigned
from tests.unit.helpers import RecordingBus, Set, linear

FORM = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean"},
        "amount": {"type": "number", "minimum": 0},
        "decision": {"type": "string", "enum": ["approve", "reject"]},
        "address": {
            "type": "object",
            "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
            "required": ["zip"],
        },
    },
    "required": ["approved", "decision"],
}


class Approval(BaseHumanStep):
    name = "approval"
    title = "Approve the request"
    description = "Check the numbers"
    form_schema = FORM
    assignee = "fallback@example.com"
    assignee_key = "manager"
    assignee_group = "managers"
    due_in = timedelta(hours=48)


def _definition() -> Any:
    return linear("approve", Set("submit", submitted=True), Approval(), Set("process", processed=True))


async def _waiting(make_engine: Any, data: dict[str, Any] | None = None, **kwargs: Any) -> tuple[Any, Any]:
    engine = make_engine(_definition(), **kwargs)
    instance = await engine.start_workflow("approve", data if data is not None else {"manager": "carol"})
    assert instance.status is WorkflowStatus.WAITING
    return engine, instance


async def test_task_is_created_with_its_fields(make_engine: Any, clock: ManualClock) -> None:
    engine, instance = await _waiting(make_engine, clock=clock)
    tasks = await engine.get_tasks(instance_id=instance.id)
    assert len(tasks) == 1
    task = tasks[0]
    assert task.step_name == "approval"
    assert task.title == "Approve the request"
    assert task.description == "Check the numbers"
    assert task.form_schema == FORM
    assert task.assignee_id == "carol"  # from the context key, over the fixed assignee
    assert task.assignee_group == "managers"
    assert task.created_at == clock.now()
    assert task.due_at == clock.now() + timedelta(hours=48)
    assert task.status is TaskStatus.PENDING
    assert task.instance_id == str(instance.id)
    assert task.workflow_name == "approve"
    assert instance.current_step == "approval"
    record = next(r for r in await engine.get_history(instance.id) if r.step_name == "approval")
    assert (record.status, record.assigned_to, record.id) == (StepStatus.WAITING, "carol", task.step_execution_id)


async def test_assignee_falls_back_to_the_fixed_one(make_engine: Any) -> None:
    engine, instance = await _waiting(make_engine, {})
    task = (await engine.get_tasks(instance_id=instance.id))[0]
    assert task.assignee_id == "fallback@example.com"


async def test_task_without_assignment_or_due_date(make_engine: Any) -> None:
    engine = make_engine(linear("plain", BaseHumanStep("ask")))
    instance = await engine.start_workflow("plain")
    task = (await engine.get_tasks(instance_id=instance.id))[0]
    assert (task.assignee_id, task.assignee_group, task.due_at, task.form_schema) == (None, None, None, None)
    assert task.title == "Ask"


async def test_due_date_follows_the_manual_clock(make_engine: Any) -> None:
    clock = ManualClock()
    clock.advance(timedelta(days=3))
    engine, instance = await _waiting(make_engine, clock=clock)
    task = (await engine.get_tasks(instance_id=instance.id))[0]
    assert task.due_at == clock.now() + timedelta(hours=48)


async def test_get_tasks_filters(make_engine: Any) -> None:
    engine, first = await _waiting(make_engine, {"manager": "carol"})
    second = await engine.start_workflow("approve", {"manager": "dave"})
    assert [t.instance_id for t in await engine.get_tasks(assignee_id="dave")] == [str(second.id)]
    assert len(await engine.get_tasks(assignee_group="managers")) == 2
    assert await engine.get_tasks(assignee_group="clerks") == []
    await engine.complete_human_task(first.id, "approval", "carol", {"approved": True, "decision": "approve"})
    assert [t.instance_id for t in await engine.get_tasks()] == [str(second.id)]
    completed = await engine.get_tasks(status=TaskStatus.COMPLETED)
    assert [t.instance_id for t in completed] == [str(first.id)]
    assert len(await engine.get_tasks(status=None)) == 2


async def test_completing_merges_the_form_and_continues(make_engine: Any) -> None:
    bus = RecordingBus()
    engine, instance = await _waiting(make_engine, event_bus=bus)
    task = (await engine.get_tasks(instance_id=instance.id))[0]
    form = {"approved": True, "decision": "approve", "amount": 12.5}
    done = await engine.complete_human_task(instance.id, "approval", "carol", form)
    assert done.status is WorkflowStatus.COMPLETED
    assert done.data == {"manager": "carol", "submitted": True, "processed": True, **form}
    stored = await engine.get_task(task.id)
    assert stored.status is TaskStatus.COMPLETED
    assert stored.completed_by == "carol"
    assert stored.data == form
    assert stored.completed_at is not None
    record = next(r for r in await engine.get_history(instance.id) if r.step_name == "approval")
    assert (record.status, record.completed_by, record.output_data) == (StepStatus.SUCCEEDED, "carol", form)
    completed_event = next(e for e in bus.events if e.type == "HumanTaskCompleted")
    assert (completed_event.task_id, completed_event.completed_by, completed_event.data) == (task.id, "carol", form)


@pytest.mark.parametrize(
    ("data", "field_errors"),
    [
        ({"decision": "approve"}, {"approved": ["this field is required"]}),
        ({}, {"approved": ["this field is required"], "decision": ["this field is required"]}),
        ({"approved": "yes", "decision": "approve"}, {"approved": ["'yes' is not of type 'boolean'"]}),
        ({"approved": True, "decision": "maybe"}, {"decision": ["'maybe' is not one of ['approve', 'reject']"]}),
        (
            {"approved": True, "decision": "approve", "amount": -1},
            {"amount": ["-1 is less than the minimum of 0"]},
        ),
        (
            {"approved": True, "decision": "approve", "address": {"zip": "abc"}},
            {"address/zip": ["'abc' does not match '^[0-9]{5}$'"]},
        ),
        ({"approved": True, "decision": "approve", "address": {}}, {"address/zip": ["this field is required"]}),
    ],
)
async def test_invalid_form_data_is_rejected_per_field_and_changes_nothing(
    make_engine: Any, data: dict[str, Any], field_errors: dict[str, list[str]]
) -> None:
    bus = RecordingBus()
    engine, instance = await _waiting(make_engine, event_bus=bus)
    events_before = len(bus.events)
    task_before = (await engine.get_tasks(instance_id=instance.id))[0]
    with pytest.raises(FormValidationError) as info:
        await engine.complete_human_task(instance.id, "approval", "carol", data)
    assert info.value.field_errors == field_errors
    assert isinstance(info.value, ValidationError)
    after = await engine.get_instance(instance.id)
    assert after.version == instance.version
    assert after.status is WorkflowStatus.WAITING
    assert after.data == instance.data
    assert await engine.get_task(task_before.id) == task_before
    assert len(bus.events) == events_before
    # The task can still be completed with valid data afterwards.
    done = await engine.complete_human_task(instance.id, "approval", "carol", {"approved": False, "decision": "reject"})
    assert done.status is WorkflowStatus.COMPLETED


async def test_form_data_must_be_an_object(make_engine: Any) -> None:
    engine, instance = await _waiting(make_engine)
    with pytest.raises(ValidationError, match="form data must be a JSON object"):
        await engine.complete_human_task(instance.id, "approval", "carol", ["approved"])  # type: ignore[arg-type]
    with pytest.raises(FormValidationError) as info:
        BaseHumanStep("x").validate_form(["not", "a", "dict"])
    assert info.value.field_errors == {"": ["form data must be an object"]}


async def test_completing_twice_raises_task_already_completed(make_engine: Any) -> None:
    engine, instance = await _waiting(make_engine)
    valid = {"approved": True, "decision": "approve"}
    await engine.complete_human_task(instance.id, "approval", "carol", valid)
    with pytest.raises(TaskAlreadyCompletedError) as info:
        await engine.complete_human_task(instance.id, "approval", "dave", valid)
    assert info.value.details["completed_by"] == "carol"
    assert "completed already" in str(info.value)
    assert isinstance(info.value, InvalidTransitionError)


async def test_wrong_step_and_unknown_instance(make_engine: Any) -> None:
    engine, instance = await _waiting(make_engine)
    with pytest.raises(TaskNotFoundError, match="has no step 'nope'") as info:
        await engine.complete_human_task(instance.id, "nope", "carol", {})
    assert isinstance(info.value, KeyError)
    with pytest.raises(InvalidTransitionError, match="'submit' is a machine step, not a human step"):
        await engine.complete_human_task(instance.id, "submit", "carol", {})
    with pytest.raises(InstanceNotFoundError) as missing:
        await engine.complete_human_task(uuid4(), "approval", "carol", {"approved": True, "decision": "approve"})
    assert isinstance(missing.value, KeyError)


async def test_human_step_not_reached_yet_has_no_task(make_engine: Any) -> None:
    engine = make_engine(linear("two", BaseHumanStep("first"), BaseHumanStep("second")))
    instance = await engine.start_workflow("two")
    with pytest.raises(TaskNotFoundError, match="is not waiting at step 'second'"):
        await engine.complete_human_task(instance.id, "second", "u", {})


async def test_fifty_concurrent_completions_succeed_exactly_once(make_engine: Any) -> None:
    process = Set("process", processed=True)
    engine = make_engine(linear("race", BaseHumanStep("approval", form_schema=FORM), process))
    instance = await engine.start_workflow("race")
    results = await asyncio.gather(
        *(
            engine.complete_human_task(instance.id, "approval", f"user{i}", {"approved": True, "decision": "approve"})
            for i in range(50)
        ),
        return_exceptions=True,
    )
    successes = [r for r in results if not isinstance(r, BaseException)]
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(successes) == 1
    assert len(failures) == 49
    assert all(isinstance(f, TaskAlreadyCompletedError) for f in failures)
    task = (await engine.get_tasks(instance_id=instance.id, status=None))[0]
    winner = results.index(successes[0])
    assert task.completed_by == f"user{winner}"
    assert process.runs == 1
    final = await engine.get_instance(instance.id)
    assert final.status is WorkflowStatus.COMPLETED
    assert [r.step_name for r in await engine.get_history(instance.id)].count("process") == 1


async def test_complete_task_by_id(make_engine: Any) -> None:
    engine, instance = await _waiting(make_engine)
    task = (await engine.get_tasks(instance_id=instance.id))[0]
    done = await engine.complete_task(task.id, "carol", {"approved": True, "decision": "approve"})
    assert done.status is WorkflowStatus.COMPLETED
    assert done.id == instance.id
    with pytest.raises(TaskAlreadyCompletedError):
        await engine.complete_task(task.id, "carol", {"approved": True, "decision": "approve"})
    with pytest.raises(TaskNotFoundError, match="no task with id"):
        await engine.complete_task(str(uuid4()), "carol", {})
    other = await engine.start_workflow("approve", {"manager": "carol"})
    other_task = (await engine.get_tasks(instance_id=other.id))[0]
    with pytest.raises(FormValidationError) as info:
        await engine.complete_task(other_task.id, "carol", {"approved": 1, "decision": "approve"})
    assert info.value.field_errors == {"approved": ["1 is not of type 'boolean'"]}
    assert (await engine.get_task(other_task.id)).status is TaskStatus.PENDING


async def test_reassign_task(make_engine: Any) -> None:
    bus = RecordingBus()
    engine, instance = await _waiting(make_engine, event_bus=bus)
    task = (await engine.get_tasks(instance_id=instance.id))[0]
    moved = await engine.reassign_task(task.id, "erin", reassigned_by="admin")
    assert moved.assignee_id == "erin"
    assert moved.assignee_group == "managers"  # kept when no new group is given
    assert [t.id for t in await engine.get_tasks(assignee_id="erin")] == [task.id]
    assert await engine.get_tasks(assignee_id="carol") == []
    event = bus.events[-1]
    assert isinstance(event, HumanTaskReassigned)
    assert (event.task_id, event.step_name, event.old_assignee, event.new_assignee, event.reassigned_by) == (
        task.id,
        "approval",
        "carol",
        "erin",
        "admin",
    )
    regrouped = await engine.reassign_task(task.id, None, assignee_group="directors")
    assert (regrouped.assignee_id, regrouped.assignee_group) == (None, "directors")
    # The instance is still waiting for the same task, which can be completed.
    assert (await engine.get_instance(instance.id)).status is WorkflowStatus.WAITING
    await engine.complete_task(task.id, "frank", {"approved": True, "decision": "approve"})
    with pytest.raises(TaskAlreadyCompletedError):
        await engine.reassign_task(task.id, "gina")
    with pytest.raises(TaskNotFoundError):
        await engine.reassign_task(str(uuid4()), "gina")


async def test_tasks_of_a_canceled_instance(make_engine: Any) -> None:
    engine, instance = await _waiting(make_engine)
    task = (await engine.get_tasks(instance_id=instance.id))[0]
    await engine.cancel_workflow(instance.id, "no longer needed")
    assert (await engine.get_task(task.id)).status is TaskStatus.CANCELED
    with pytest.raises(TaskAlreadyCompletedError, match="canceled already"):
        await engine.complete_human_task(instance.id, "approval", "carol", {"approved": True, "decision": "approve"})
    with pytest.raises(TaskAlreadyCompletedError):
        await engine.complete_task(task.id, "carol", {"approved": True, "decision": "approve"})
