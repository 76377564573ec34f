"""The ``ExecutionEngine`` protocol every engine satisfies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

if TYPE_CHECKING:
    from flowstar.engine.views import WorkflowInstance
    from flowstar.model.context import WorkflowContext
    from flowstar.model.steps import Step

__all__ = ["ExecutionEngine"]


class ExecutionEngine(Protocol):
    """Protocol for workflow execution engines (local, persistent, SAQ).

    ``start_workflow`` takes the documented keyword names (``workflow_name``, ``input_data``)
    beside the positional ``workflow`` (a name, a workflow class or a definition) and
    ``initial_data``.  The calls that change an instance return it as it is afterwards.
    """

    async def start_workflow(
        self,
        workflow: Any = None,
        initial_data: Mapping[str, Any] | None = None,
        version: str | None = None,
        *,
        workflow_name: str | None = None,
        input_data: Mapping[str, Any] | None = None,
    ) -> WorkflowInstance:
        """Start a new workflow instance."""

    async def execute_step(self, step: Step, context: WorkflowContext, previous_result: Any = None) -> Any:
        """Execute a single step."""

    async def complete_human_task(
        self, instance_id: UUID | str, step_name: str, user_id: str, data: Mapping[str, Any]
    ) -> WorkflowInstance:
        """Complete a human task with user input; the instance after the steps it unblocked."""

    async def cancel_workflow(self, instance_id: UUID | str, reason: str) -> WorkflowInstance:
        """Cancel a running workflow; the canceled instance."""

    async def retry(self, instance_id: UUID | str, from_step: str | None = None) -> WorkflowInstance:
        """Retry a failed workflow from a specific step."""

    async def get_instance(self, instance_id: UUID | str) -> WorkflowInstance:
        """The instance's current state."""
