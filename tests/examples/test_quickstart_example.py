"""examples/quickstart.py: the README quick start."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

from flowstar import LocalExecutionEngine, TaskStatus, WorkflowStatus
from tests.examples.conftest import run_example


async def test_main_approves_and_processes(load_example: Callable[[str], ModuleType]) -> None:
    quickstart = load_example("quickstart")
    done = await quickstart.main()
    assert done.status is WorkflowStatus.COMPLETED
    assert done.context.get("status") == "processed"
    assert done.context.data == {
        "request_id": "REQ-001",
        "amount": 500.0,
        "submitted": True,
        "submitted_by": "alice@example.com",
        "approved": True,
        "comments": "Looks good!",
        "status": "processed",
    }


async def test_main_rejects(load_example: Callable[[str], ModuleType]) -> None:
    done = await load_example("quickstart").main(approved=False)
    assert done.status is WorkflowStatus.COMPLETED
    assert done.context.get("status") == "rejected"


async def test_the_workflow_waits_for_the_manager(load_example: Callable[[str], ModuleType]) -> None:
    quickstart = load_example("quickstart")
    assert quickstart.definition.validate() == []
    engine = LocalExecutionEngine(quickstart.registry)
    try:
        instance = await engine.start_workflow("approval_workflow", initial_data={"request_id": "REQ-2"})
        assert instance.status is WorkflowStatus.WAITING
        assert instance.current_step == "manager_approval"
        task = (await engine.get_tasks(instance_id=instance.id))[0]
        assert (task.title, task.status) == ("Approve Request", TaskStatus.PENDING)
        with pytest.raises(Exception, match="approved"):
            await engine.complete_human_task(instance.id, "manager_approval", "m", {"comments": "no decision"})
    finally:
        await engine.close()


def test_runs_as_a_script() -> None:
    result = run_example("quickstart")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "Current step: manager_approval"
    assert lines[2] == "Status: waiting"
    assert lines[-1] == "Status: completed, result: processed"
