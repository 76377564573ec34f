"""Code-first named action over HTTP: the guide's API integration of a step with inputs.

``await_review(self, reviewer_notes, priority)`` takes inputs, so it is a human step: the
instance waits at it with an open task whose form is ``ReviewInput`` (the guide's input
serializer).  ``@step(action="expense_submit_review")`` offers that task as a named action
of the REST API that ``WorkflowWebPlugin`` serves::

    POST /api/workflows/actions/expense_submit_review
    {"instance_id": "<the instance id>", "reviewer_notes": "Approved", "priority": "high"}

completes the task and runs the method with the fields; a body that breaks the form is
answered 422, naming each field.  (In process, ``engine.act("expense_submit_review",
run.id, reviewer_notes=..., priority=...)`` does the same.)  Here an in-process test client
sends the requests; ``uvicorn`` would serve ``create_app(engine)`` the same way.

Run it: ``python examples/code_first_review_action.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from litestar import Litestar
from litestar.testing import AsyncTestClient
from pydantic import BaseModel, Field

from flowstar import LocalExecutionEngine, WorkflowRegistry
from flowstar.engine.core import Engine
from flowstar.flow import FlowRun, complete, engine, get_context, goto, step, workflow
from flowstar.logs import configure_logging
from flowstar.web import WorkflowWebPlugin

__all__ = ["ACTION_URL", "PREFIX", "ExpenseApprovalWorkflow", "ReviewInput", "create_app", "main", "registry"]

PREFIX = "/api/workflows"
ACTION_URL = f"{PREFIX}/actions/expense_submit_review"

registry = WorkflowRegistry()


class ReviewInput(BaseModel):
    """The reviewer's notes and the expense's priority (the request names the instance beside them)."""

    reviewer_notes: str = Field(max_length=500)
    priority: Literal["low", "medium", "high"]


@workflow("expense_approval", registry=registry)
class ExpenseApprovalWorkflow:
    class Context(BaseModel):
        expense_id: int = 123
        reviewer_notes: str = ""
        priority: str = "medium"
        status: str = "pending"

    @step(start=True)
    def start_review(self):
        return goto(self.await_review)

    @step(action="expense_submit_review", form=ReviewInput, title="Review the expense")
    def await_review(self, reviewer_notes: str, priority: str):
        """Record the review: the step callable as the ``expense_submit_review`` action."""
        ctx = get_context()
        ctx.reviewer_notes = reviewer_notes
        ctx.priority = priority
        ctx.status = "reviewed"
        return complete()


def create_app(flow_engine: Engine) -> Litestar:
    """The web app: flowstar's REST API (its actions included) under ``PREFIX``."""
    return Litestar(plugins=[WorkflowWebPlugin(path_prefix=PREFIX, engine=flow_engine, enable_ui=False)])


async def main() -> tuple[FlowRun, dict[str, Any]]:
    """Start an expense review, send it a body without notes (422), then a whole one.

    Returns the completed run and the 422 answer's body.
    """
    engine.use(LocalExecutionEngine(registry))
    try:
        run = await engine.start("expense_approval", expense_id=42)
        print(f"expense 42: {run.status} at {run.current_step}")
        async with AsyncTestClient(create_app(engine.engine)) as client:
            refused = await client.post(ACTION_URL, json={"instance_id": str(run.id), "priority": "high"})
            problems = ", ".join(f"{e['pointer']} {e['message']}" for e in refused.json()["errors"])
            print(f"without reviewer_notes: {refused.status_code} ({problems})")
            body = {"instance_id": str(run.id), "reviewer_notes": "Approved", "priority": "high"}
            done = await client.post(ACTION_URL, json=body)
            print(f"with every field: {done.status_code}, the instance is {done.json()['status']}")
        run = await run.refresh()
        ctx = run.context
        print(f"expense 42: {run.status}, {ctx.status} with priority {ctx.priority}: {ctx.reviewer_notes}")
        return run, refused.json()
    finally:
        await engine.close()


if __name__ == "__main__":
    configure_logging()
    asyncio.run(main())
