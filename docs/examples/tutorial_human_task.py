"""Tutorial 2: a manager reviews the larger reports in a form; the workflow waits meanwhile.

Run it: ``python docs/examples/tutorial_human_task.py`` (it imports the steps of part 1 from
the file beside it).
"""

from __future__ import annotations

import asyncio

# --8<-- [start:step]
from datetime import timedelta

from flowstar import (
    BaseHumanStep,
    Edge,
    FormValidationError,
    LocalExecutionEngine,
    TaskStatus,
    WorkflowDefinition,
    WorkflowRegistry,
    WorkflowStatus,
)

from tutorial_first_workflow import AutoApprove, Pay, Receive


class ManagerReview(BaseHumanStep):
    name = "manager_review"
    title = "Review an expense report"
    assignee_group = "managers"  # any manager may claim it
    due_in = timedelta(days=2)
    form_schema = {
        "type": "object",
        "properties": {
            "decision": {"enum": ["approved", "rejected"], "title": "Decision"},
            "comment": {"type": "string", "title": "Comment"},
        },
        "required": ["decision"],
    }


# --8<-- [end:step]


# --8<-- [start:definition]
definition = WorkflowDefinition(
    name="expense_report",
    version="2.0.0",
    steps={
        "receive": Receive(),
        "auto_approve": AutoApprove(),
        "manager_review": ManagerReview(),
        "pay": Pay(),
    },
    edges=[
        Edge("receive", "auto_approve", condition="context.get('amount') < 100"),
        Edge("receive", "manager_review", condition="context.get('amount') >= 100"),
        Edge("auto_approve", "pay"),
        Edge("manager_review", "pay"),
    ],
    initial_step="receive",
    terminal_steps={"pay"},
)

registry = WorkflowRegistry()
registry.register_definition(definition)
# --8<-- [end:definition]


async def main() -> None:
    # --8<-- [start:run]
    engine = LocalExecutionEngine(registry)
    report = await engine.start_workflow("expense_report", {"employee": "alice", "amount": "1200"})
    assert report.status is WorkflowStatus.WAITING
    assert report.current_step == "manager_review"

    (task,) = await engine.get_tasks(instance_id=report.id, status=TaskStatus.PENDING)
    assert (task.title, task.assignee_group) == ("Review an expense report", "managers")

    try:  # the form is checked against its schema before anything changes
        await engine.complete_task(task.id, "bob", {"decision": "maybe"})
    except FormValidationError as error:
        assert list(error.field_errors) == ["decision"]
    else:
        raise AssertionError("a decision outside the form's choices was accepted")

    report = await engine.complete_task(task.id, "bob", {"decision": "approved", "comment": "ok"})
    assert report.status is WorkflowStatus.COMPLETED
    assert report.context.get("paid") == 1200.0
    history = await engine.get_history(report.id)
    assert [r.completed_by for r in history if r.step_name == "manager_review"] == ["bob"]
    await engine.close()
    # --8<-- [end:run]


if __name__ == "__main__":
    asyncio.run(main())
