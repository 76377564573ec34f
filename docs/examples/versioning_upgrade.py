"""Concepts (versions): a new version beside the old; running instances finish on theirs."""

from __future__ import annotations

import asyncio

from flowstar import Edge, LocalExecutionEngine, WorkflowDefinition, WorkflowRegistry, WorkflowStatus

from tutorial_first_workflow import AutoApprove, Pay, Receive
from tutorial_human_task import ManagerReview
from tutorial_human_task import definition as v2

# --8<-- [start:v3]
# 3.0.0 renames the review step: instances parked at 2.0.0's manager_review must still finish.
v3 = WorkflowDefinition(
    name="expense_report",
    version="3.0.0",
    steps={"receive": Receive(), "auto_approve": AutoApprove(), "review": ManagerReview(name="review"), "pay": Pay()},
    edges=[
        Edge("receive", "auto_approve", condition="context.get('amount') < 500"),  # a new limit
        Edge("receive", "review", condition="context.get('amount') >= 500"),
        Edge("auto_approve", "pay"),
        Edge("review", "pay"),
    ],
    initial_step="receive",
    terminal_steps={"pay"},
)

registry = WorkflowRegistry()
registry.register_definition(v2)  # keep the old version registered while instances run it
registry.register_definition(v3)  # new starts take the latest active version
# --8<-- [end:v3]


async def main() -> None:
    engine = LocalExecutionEngine(registry)
    old = await engine.start_workflow("expense_report", {"amount": "300"}, version="2.0.0")
    new = await engine.start_workflow("expense_report", {"amount": "300"})
    assert (old.workflow_version, old.current_step) == ("2.0.0", "manager_review")
    assert (new.workflow_version, new.status) == ("3.0.0", WorkflowStatus.COMPLETED)  # under the new limit

    # --8<-- [start:versions]
    usage = {(v.version, v.registered, v.active, v.running) for v in await engine.definition_versions()}
    assert usage == {("2.0.0", True, True, 1), ("3.0.0", True, True, 0)}

    registry.deactivate("expense_report", "2.0.0")  # no new starts on 2.0.0; its instance goes on
    (task,) = await engine.get_tasks(instance_id=old.id)
    done = await engine.complete_task(task.id, "bob", {"decision": "approved"})
    assert (done.workflow_version, done.status) == ("2.0.0", WorkflowStatus.COMPLETED)
    # running is now 0 for 2.0.0: it may be dropped from the code
    # --8<-- [end:versions]
    assert {v.version: v.running for v in await engine.definition_versions()} == {"2.0.0": 0, "3.0.0": 0}
    await engine.close()


if __name__ == "__main__":
    asyncio.run(main())
