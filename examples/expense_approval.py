"""Expense approval: small expenses are approved automatically, larger ones by a manager.

Run it: ``python examples/expense_approval.py``.
"""

from __future__ import annotations

import asyncio

from flowstar import (
    BaseHumanStep,
    BaseMachineStep,
    Edge,
    EventBus,
    ExclusiveGateway,
    LocalExecutionEngine,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowRegistry,
)
from flowstar.events import WorkflowEvent

AUTO_APPROVE_LIMIT = 1000


class SubmitExpense(BaseMachineStep):
    name = "submit_expense"
    description = "Record the expense report"

    async def execute(self, context: WorkflowContext) -> None:
        context.set("submitted", True)


class AutoApprove(BaseMachineStep):
    name = "auto_approve"
    description = "Approve small expenses without a person"

    async def execute(self, context: WorkflowContext) -> None:
        context.set("approved", True)
        context.set("approved_by", "system")


class ManagerApproval(BaseHumanStep):
    name = "manager_approval"
    title = "Approve expense"
    assignee_key = "manager"
    form_schema = {
        "type": "object",
        "properties": {
            "decision": {"type": "string", "enum": ["approve", "reject"]},
            "comments": {"type": "string"},
        },
        "required": ["decision"],
    }


class ProcessApproved(BaseMachineStep):
    name = "process_approved"
    description = "Pay out approved expenses"

    async def execute(self, context: WorkflowContext) -> None:
        approved = context.get("approved") or context.get("decision") == "approve"
        context.set("approved", bool(approved))
        context.set("status", "approved" if approved else "rejected")


def build_definition() -> WorkflowDefinition:
    """The expense approval workflow."""
    router = ExclusiveGateway(
        "amount_router",
        [(f"context.get('amount', 0) < {AUTO_APPROVE_LIMIT}", "auto_approve")],
        default="manager_approval",
    )
    return WorkflowDefinition(
        name="expense_approval",
        version="1.0.0",
        description="Auto-approve under a threshold, manager approval above",
        steps={
            "submit_expense": SubmitExpense(),
            "amount_router": router,
            "auto_approve": AutoApprove(),
            "manager_approval": ManagerApproval(),
            "process_approved": ProcessApproved(),
        },
        edges=[
            Edge("submit_expense", "amount_router"),
            Edge("amount_router", "auto_approve"),
            Edge("amount_router", "manager_approval"),
            Edge("auto_approve", "process_approved"),
            Edge("manager_approval", "process_approved"),
        ],
        initial_step="submit_expense",
        terminal_steps={"process_approved"},
    )


class PrintingBus(EventBus):
    async def emit(self, event: WorkflowEvent) -> None:
        step = getattr(event, "step_name", "")
        print(f"  event {event.type:<20} {step}")
        await super().emit(event)


async def main() -> None:
    registry = WorkflowRegistry()
    registry.register_definition(build_definition())
    engine = LocalExecutionEngine(registry, event_bus=PrintingBus())

    print("Expense of 250 (below the limit):")
    small = await engine.start_workflow("expense_approval", {"amount": 250, "requester": "alice"})
    print(f"-> {small.status.value}, approved_by={small.context.get('approved_by')}\n")

    print("Expense of 2500 (needs a manager):")
    big = await engine.start_workflow("expense_approval", {"amount": 2500, "requester": "bob", "manager": "carol"})
    print(f"-> {big.status.value} at {big.current_step}")
    task = (await engine.get_tasks(instance_id=big.id))[0]
    print(f"   task {task.title!r} assigned to {task.assignee_id}")
    done = await engine.complete_human_task(big.id, "manager_approval", "carol", {"decision": "approve"})
    print(f"-> {done.status.value}, status={done.context.get('status')}\n")
    print(build_definition().to_mermaid(current_step="manager_approval"))


if __name__ == "__main__":
    asyncio.run(main())
