"""Tutorial 5: the expense report again, written as a class whose steps say what comes next.

Run it: ``python docs/examples/tutorial_code_first.py``.
"""

from __future__ import annotations

import asyncio

# --8<-- [start:workflow]
from dataclasses import dataclass
from typing import Literal

from flowstar import LocalExecutionEngine, TaskStatus, WorkflowRegistry, WorkflowStatus
from flowstar.flow import FlowEngine, complete, get_context, goto, step, workflow

registry = WorkflowRegistry()


@workflow("expense_report_code_first", registry=registry)
class ExpenseReport:
    @dataclass
    class Context:
        employee: str
        amount: float
        decision: str = ""
        comment: str = ""
        paid: float = 0.0

    @step(start=True)
    def receive(self):
        ctx = get_context()
        ctx.amount = round(ctx.amount, 2)
        if ctx.amount < 100:
            ctx.decision = "approved"
            return goto(self.pay)
        return goto(self.manager_review)

    @step(title="Review an expense report", assignee_group="managers")
    def manager_review(self, decision: Literal["approved", "rejected"], comment: str = ""):
        # A step with parameters is a human task: its form asks for them.
        ctx = get_context()
        ctx.decision, ctx.comment = decision, comment
        return goto(self.pay)

    @step()
    def pay(self):
        ctx = get_context()
        if ctx.decision == "approved":
            ctx.paid = ctx.amount
        return complete()


# --8<-- [end:workflow]


async def main() -> None:
    # --8<-- [start:run]
    flow = FlowEngine(LocalExecutionEngine(registry))
    small = await flow.start("expense_report_code_first", employee="alice", amount=42.5)
    assert small.status is WorkflowStatus.COMPLETED and small.context.paid == 42.5

    big = await flow.start("expense_report_code_first", employee="alice", amount=1200)
    assert big.current_step == "manager_review"

    # The same task as in part 2: in the inbox, over REST, or from Python.
    (task,) = await flow.engine.get_tasks(instance_id=big.id, status=TaskStatus.PENDING)
    assert task.form_schema["properties"]["decision"]["enum"] == ["approved", "rejected"]
    await flow.engine.complete_task(task.id, "bob", {"decision": "approved"})

    big = await big.refresh()
    assert big.status is WorkflowStatus.COMPLETED
    assert (big.context.decision, big.context.paid) == ("approved", 1200.0)
    await flow.close()
    # --8<-- [end:run]


if __name__ == "__main__":
    asyncio.run(main())
