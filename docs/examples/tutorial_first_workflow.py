"""Tutorial 1: a first workflow of machine steps, a condition on an edge, and a run in memory.

Run it: ``python docs/examples/tutorial_first_workflow.py``.
"""

from __future__ import annotations

import asyncio

# --8<-- [start:steps]
from flowstar import (
    BaseMachineStep,
    Edge,
    LocalExecutionEngine,
    StepStatus,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowRegistry,
    WorkflowStatus,
)


class Receive(BaseMachineStep):
    """Normalise the submitted report: amounts arrive as text from forms and e-mails."""

    name = "receive"

    async def execute(self, context: WorkflowContext) -> None:
        context.set("amount", round(float(context.get("amount")), 2))


class AutoApprove(BaseMachineStep):
    name = "auto_approve"

    async def execute(self, context: WorkflowContext) -> None:
        context.set("decision", "approved")
        context.set("decided_by", "policy: under 100")


class Flag(BaseMachineStep):
    name = "flag"

    async def execute(self, context: WorkflowContext) -> None:
        context.set("decision", "needs review")


class Pay(BaseMachineStep):
    name = "pay"

    async def execute(self, context: WorkflowContext) -> None:
        if context.get("decision") == "approved":
            context.set("paid", context.get("amount"))


# --8<-- [end:steps]


# --8<-- [start:definition]
definition = WorkflowDefinition(
    name="expense_report",
    version="1.0.0",
    steps={"receive": Receive(), "auto_approve": AutoApprove(), "flag": Flag(), "pay": Pay()},
    edges=[
        Edge("receive", "auto_approve", condition="context.get('amount') < 100"),
        Edge("receive", "flag", condition="context.get('amount') >= 100"),
        Edge("auto_approve", "pay"),
        Edge("flag", "pay"),
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
    small = await engine.start_workflow("expense_report", {"employee": "alice", "amount": "42.5"})
    big = await engine.start_workflow("expense_report", {"employee": "alice", "amount": "1200"})

    assert small.status is WorkflowStatus.COMPLETED
    assert small.context.get("paid") == 42.5
    assert big.context.get("decision") == "needs review"
    assert big.context.get("paid") is None

    history = await engine.get_history(small.id)
    assert [(r.step_name, r.status) for r in history] == [
        ("receive", StepStatus.SUCCEEDED),
        ("auto_approve", StepStatus.SUCCEEDED),
        ("pay", StepStatus.SUCCEEDED),
    ]
    await engine.close()
    # --8<-- [end:run]

    # --8<-- [start:diagram]
    print(definition.to_mermaid(current_step="flag"))
    # --8<-- [end:diagram]
    assert "receive" in definition.to_mermaid()


if __name__ == "__main__":
    asyncio.run(main())
