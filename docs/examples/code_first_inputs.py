"""docs/code-first.md: a step with inputs is a human task, completed by its named action."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from flowstar import FormValidationError, LocalExecutionEngine, WorkflowRegistry, WorkflowStatus
from flowstar.flow import FlowEngine, complete, get_context, goto, step, workflow

registry = WorkflowRegistry()


@workflow("expense_submit", registry=registry)
class ExpenseSubmit:
    @dataclass
    class Context:
        amount: float
        notes: str = ""
        priority: str = ""

    @step(start=True)
    def submit(self):
        return goto(self.await_review)

    # --8<-- [start:step]
    @step(action="expense_submit_review", assignee_group="managers", title="Review the expense")
    def await_review(self, reviewer_notes: str, priority: Literal["low", "medium", "high"] = "medium"):
        get_context().notes = reviewer_notes
        get_context().priority = priority
        return goto(self.decide)

    # --8<-- [end:step]

    @step()
    def decide(self):
        return complete(reviewed=True)


async def main() -> None:
    engine = FlowEngine(LocalExecutionEngine(registry))
    run = await engine.start("expense_submit", amount=120.0)
    assert run.current_step == "await_review"
    (task,) = await engine.engine.get_tasks(instance_id=run.id)
    schema = task.form_schema
    assert schema["required"] == ["reviewer_notes"]
    assert sorted(schema["properties"]["priority"]["enum"]) == ["high", "low", "medium"]
    try:
        await engine.act("expense_submit_review", run.id, user_id="bob", reviewer_notes="ok", priority="urgent")
    except FormValidationError as error:
        assert list(error.field_errors) == ["priority"]
    else:
        raise AssertionError("a priority outside the choices was accepted")
    run = await engine.act("expense_submit_review", run.id, user_id="bob", reviewer_notes="ok", priority="high")
    assert run.status is WorkflowStatus.COMPLETED
    assert (run.context.notes, run.context.priority, run.data["reviewed"]) == ("ok", "high", True)
    await engine.close()


if __name__ == "__main__":
    asyncio.run(main())
