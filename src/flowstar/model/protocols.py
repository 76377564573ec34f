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
    """Protocol for workflow execution engines (local, persistent, SAQ)."""

    async def start_workflow(
        self, workflow: Any, initial_data: Mapping[str, Any] | None = None, version: str | None = None
    ) -> WorkflowInstance:
        """Start a new workflow instance."""

    async def execute_step(self, step: Step, context: WorkflowContext, previous_result: Any = None) -> Any:
        """Execute a single step."""

    async def complete_human_task(
        self, instance_id: UUID | str, step_name: str, user_id: str, data: Mapping[str, Any]
    ) -> Any:
        """Complete a human task with user input."""

    async def cancel_workflow(self, instance_id: UUID | str, reason: str) -> None:
        """Cancel a running workflow."""

    async def retry(self, instance_id: UUID | str, from_step: str | None = None) -> Any:
        """Retry a failed workflow from a specific step."""

    async def get_instance(self, instance_id: UUID | str) -> WorkflowInstance:
        """The instance's current state."""
