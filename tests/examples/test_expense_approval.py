"""examples/expense_approval.py: automatic approval under a limit, a manager above it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from types import ModuleType
from typing import Any

import pytest

from flowstar import LocalExecutionEngine, TaskStatus, WorkflowRegistry, WorkflowStatus
from tests.examples.conftest import import_example, run_example


@pytest.fixture
def example() -> ModuleType:
    return import_example("expense_approval")


@pytest.fixture
async def engine(example: ModuleType) -> AsyncIterator[LocalExecutionEngine]:
    registry = WorkflowRegistry()
    registry.register_definition(example.build_definition())
    engine = LocalExecutionEngine(registry)
    yield engine
    await engine.close()


@pytest.mark.parametrize("amount", [0, 250, 999.99])
async def test_small_expenses_are_approved_by_the_system(engine: LocalExecutionEngine, amount: float) -> None:
    instance = await engine.start_workflow("expense_approval", {"amount": amount, "requester": "alice"})
    assert instance.status is WorkflowStatus.COMPLETED
    assert instance.context.get("approved") is True
    assert instance.context.get("approved_by") == "system"
    assert instance.context.get("status") == "approved"
    assert await engine.get_tasks(instance_id=instance.id) == []


@pytest.mark.parametrize("amount", [1000, 2500])
async def test_larger_expenses_wait_for_the_manager(engine: LocalExecutionEngine, amount: float) -> None:
    instance = await engine.start_workflow(
        "expense_approval", {"amount": amount, "requester": "bob", "manager": "carol"}
    )
    assert instance.status is WorkflowStatus.WAITING
    assert instance.current_step == "manager_approval"
    assert instance.context.get("approved_by") is None
    tasks = await engine.get_tasks(instance_id=instance.id)
    assert len(tasks) == 1
    assert tasks[0].assignee_id == "carol"  # from the `manager` context key
    assert tasks[0].title == "Approve expense"
    assert tasks[0].status is TaskStatus.PENDING


async def test_manager_approves(engine: LocalExecutionEngine) -> None:
    instance = await engine.start_workflow("expense_approval", {"amount": 2500, "requester": "bob", "manager": "carol"})
    done = await engine.complete_human_task(
        instance.id, "manager_approval", "carol", {"decision": "approve", "comments": "Looks good"}
    )
    assert done.status is WorkflowStatus.COMPLETED
    assert done.context.get("status") == "approved"
    assert done.context.get("approved") is True
    assert done.context.get("comments") == "Looks good"
    task = (await engine.get_tasks(instance_id=instance.id, status=None))[0]
    assert (task.status, task.completed_by) == (TaskStatus.COMPLETED, "carol")


async def test_manager_rejects(engine: LocalExecutionEngine) -> None:
    instance = await engine.start_workflow("expense_approval", {"amount": 5000, "requester": "bob", "manager": "carol"})
    done = await engine.complete_human_task(instance.id, "manager_approval", "carol", {"decision": "reject"})
    assert done.status is WorkflowStatus.COMPLETED
    assert done.context.get("status") == "rejected"
    assert done.context.get("approved") is False


async def test_the_form_only_takes_approve_or_reject(engine: LocalExecutionEngine) -> None:
    from flowstar import FormValidationError

    instance = await engine.start_workflow("expense_approval", {"amount": 5000, "manager": "carol"})
    with pytest.raises(FormValidationError) as info:
        await engine.complete_human_task(instance.id, "manager_approval", "carol", {"decision": "maybe"})
    assert list(info.value.field_errors) == ["decision"]


async def test_main_prints_both_paths(example: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    await example.main()
    out = capsys.readouterr().out
    assert "-> completed, approved_by=system" in out
    assert "-> waiting at manager_approval" in out
    assert "task 'Approve expense' assigned to carol" in out
    assert "-> completed, status=approved" in out
    assert "class s3 current" in out  # the chart highlights manager_approval


def test_definition_is_valid(load_example: Callable[[str], ModuleType]) -> None:
    definition: Any = load_example("expense_approval").build_definition()
    assert definition.validate() == []
    assert set(definition.steps) == {
        "submit_expense",
        "amount_router",
        "auto_approve",
        "manager_approval",
        "process_approved",
    }


def test_runs_as_a_script() -> None:
    result = run_example("expense_approval")
    assert result.returncode == 0, result.stderr
    assert "-> completed, approved_by=system" in result.stdout
    assert "-> completed, status=approved" in result.stdout
