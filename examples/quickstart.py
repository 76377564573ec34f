"""The README quick start: a request, a manager's approval, then processing.

Run it: ``python examples/quickstart.py``.
"""

from __future__ import annotations

import asyncio

from flowstar import (
    BaseHumanStep,
    BaseMachineStep,
    Edge,
    LocalExecutionEngine,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowInstance,
    WorkflowRegistry,
)


# Define automated steps
class SubmitRequest(BaseMachineStep):
    """Initial submission step - runs automatically."""

    name = "submit"
    description = "Submit a new request for processing"

    async def execute(self, context: WorkflowContext) -> None:
        # Record submission timestamp
        context.set("submitted", True)
        context.set("submitted_by", context.user_id)


# Define human approval steps
class ManagerApproval(BaseHumanStep):
    """Human task - waits for manager input."""

    name = "manager_approval"
    title = "Approve Request"
    description = "Manager reviews and approves or rejects the request"
    form_schema = {
        "type": "object",
        "properties": {
            "approved": {"type": "boolean", "title": "Approve this request?"},
            "comments": {"type": "string", "title": "Comments"},
        },
        "required": ["approved"],
    }


class ProcessRequest(BaseMachineStep):
    """Final processing step - runs after approval."""

    name = "process"
    description = "Process the approved request"

    async def execute(self, context: WorkflowContext) -> None:
        if context.get("approved"):
            context.set("status", "processed")
            # Perform actual processing here
        else:
            context.set("status", "rejected")


# Create workflow definition
definition = WorkflowDefinition(
    name="approval_workflow",
    version="1.0.0",
    description="Simple request approval workflow",
    steps={
        "submit": SubmitRequest(),
        "manager_approval": ManagerApproval(),
        "process": ProcessRequest(),
    },
    edges=[
        Edge("submit", "manager_approval"),
        Edge("manager_approval", "process"),
    ],
    initial_step="submit",
    terminal_steps={"process"},
)

# Register
registry = WorkflowRegistry()
registry.register_definition(definition)


async def main(approved: bool = True) -> WorkflowInstance:
    """Start a request, approve (or reject) it as the manager, and return the finished instance."""
    engine = LocalExecutionEngine(registry)
    try:
        # Start a new workflow instance
        instance = await engine.start_workflow(
            "approval_workflow",
            initial_data={"request_id": "REQ-001", "amount": 500.00},
            created_by="alice@example.com",
        )
        print(f"Workflow started: {instance.id}")
        print(f"Current step: {instance.current_step}")  # "manager_approval"
        print(f"Status: {instance.status.value}")  # "waiting"

        # Later, when a manager completes the approval...
        await engine.complete_human_task(
            instance_id=instance.id,
            step_name="manager_approval",
            user_id="manager@example.com",
            data={"approved": approved, "comments": "Looks good!" if approved else "Not this quarter"},
        )
        done = await engine.get_instance(instance.id)
        print(f"Status: {done.status.value}, result: {done.context.get('status')}")
        return done
    finally:
        await engine.close()


if __name__ == "__main__":
    asyncio.run(main())
