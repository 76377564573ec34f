"""Step and workflow classifications, with the named status sets the engine relies on."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ACTIVE_WORKFLOW_STATUSES",
    "TERMINAL_WORKFLOW_STATUSES",
    "StepStatus",
    "StepType",
    "TaskStatus",
    "WorkflowStatus",
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
