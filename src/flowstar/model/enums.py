"""Step and workflow classifications, with the named status sets the engine relies on."""

from __future__ import annotations

from enum import StrEnum

from flowstar.model.errors import ValidationError

__all__ = [
    "ACTIVE_WORKFLOW_STATUSES",
    "TERMINAL_WORKFLOW_STATUSES",
    "StepStatus",
    "StepType",
    "TaskStatus",
    "WorkflowStatus",
    "workflow_status",
]


class StepType(StrEnum):
    """What kind of work a step does."""

    MACHINE = "machine"
    HUMAN = "human"
    WEBHOOK = "webhook"
    TIMER = "timer"
    GATEWAY = "gateway"
    SIGNAL = "signal"
    EVENT = "event"


class StepStatus(StrEnum):
    """Status of one step execution."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    SKIPPED = "skipped"


class WorkflowStatus(StrEnum):
    """Status of a workflow instance."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


class TaskStatus(StrEnum):
    """Status of a human task."""

    PENDING = "pending"
    COMPLETED = "completed"
    CANCELED = "canceled"


TERMINAL_WORKFLOW_STATUSES = frozenset({WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELED})
ACTIVE_WORKFLOW_STATUSES = frozenset({WorkflowStatus.PENDING, WorkflowStatus.RUNNING, WorkflowStatus.WAITING})


def workflow_status(value: str) -> WorkflowStatus:
    """``value`` (a status or its name) as a ``WorkflowStatus``.

    Raises:
        ValidationError: no status has that name (the message lists the names).
    """
    try:
        return WorkflowStatus(value)
    except ValueError:
        names = ", ".join(status.value for status in WorkflowStatus)
        raise ValidationError(f"unknown status {value!r}; one of {names}") from None
