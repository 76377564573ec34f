"""What engines return to callers: a read-only view of an instance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID, uuid5

from flowstar.model.context import StepExecution, WorkflowContext
from flowstar.model.enums import StepStatus, WorkflowStatus
from flowstar.model.state import InstanceState

__all__ = ["WorkflowInstance", "as_uuid", "definition_uuid", "instance_view"]

_NAMESPACE = UUID("6b1f5a52-7f0c-4c71-9d1e-0a3f2c6e8b10")


@lru_cache(maxsize=1024)
def definition_uuid(name: str, version: str) -> UUID:
    """A stable id for a definition version (the context's ``workflow_id``)."""
    return uuid5(_NAMESPACE, f"{name}@{version}")


@dataclass(frozen=True, slots=True)
class WorkflowInstance:
    """A snapshot of a workflow instance, as of the call that returned it."""

    id: UUID
    workflow_name: str
    workflow_version: str
    status: WorkflowStatus
    current_step: str | None
    context: WorkflowContext
    error: str | None
    failed_step: str | None
    tenant_id: str | None
    created_by: str | None
    started_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    version: int

    @property
    def data(self) -> dict[str, Any]:
        """The context data."""
        return self.context.data

    @property
    def definition_name(self) -> str:
        """Alias of ``workflow_name``."""
        return self.workflow_name


@lru_cache(maxsize=4096)
def as_uuid(value: str) -> UUID:
    """``UUID(value)``, cached: the same instance ids are parsed at every step."""
    return UUID(value)


# ``StepStatus(value)`` goes through the enum metaclass; a dict lookup gives the same member.
_STEP_STATUS: dict[str, StepStatus] = {status.value: status for status in StepStatus}


def instance_view(state: InstanceState) -> WorkflowInstance:
    """Build the public view of ``state``."""
    context = WorkflowContext(
        workflow_id=definition_uuid(state.workflow_name, state.workflow_version),
        instance_id=as_uuid(state.id),
        data=dict(state.data),
        metadata=state.metadata,
        current_step=state.current_step or "",
        step_history=[
            StepExecution(h.step, _STEP_STATUS.get(h.status) or StepStatus(h.status), h.attempt, None, h.at)
            for h in state.history
        ],
        started_at=state.started_at,
        user_id=state.created_by,
        tenant_id=state.tenant_id,
    )
    return WorkflowInstance(
        id=as_uuid(state.id),
        workflow_name=state.workflow_name,
        workflow_version=state.workflow_version,
        status=state.status,
        current_step=state.current_step,
        context=context,
        error=state.error,
        failed_step=state.failed_step,
        tenant_id=state.tenant_id,
        created_by=state.created_by,
        started_at=state.started_at,
        updated_at=state.updated_at,
        completed_at=state.completed_at,
        version=state.version,
    )
