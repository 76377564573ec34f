"""Workflow events: tagged msgspec Structs in one union.

Every transition emits events with the fields a handler needs.  They encode to JSON with a
``"type"`` tag (the class name) and decode back through ``decode_event``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import msgspec

__all__ = [
    "EVENT_TYPES",
    "Event",
    "HumanTaskClaimed",
    "HumanTaskCommented",
    "HumanTaskCompleted",
    "HumanTaskCreated",
    "HumanTaskEscalated",
    "HumanTaskReassigned",
    "HumanTaskUnclaimed",
    "StepCompleted",
    "StepExecuted",
    "StepFailed",
    "StepSkipped",
    "StepStarted",
    "WorkflowCanceled",
    "WorkflowCompleted",
    "WorkflowEvent",
    "WorkflowFailed",
    "WorkflowRetried",
    "WorkflowStarted",
    "decode_event",
    "encode_event",
]


class WorkflowEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True):
    """Fields every event carries."""

    instance_id: str
    workflow_name: str
    workflow_version: str
    timestamp: datetime
    tenant_id: str | None = None

    category: ClassVar[str] = "workflow"

    @property
    def type(self) -> str:
        """The event's type name, e.g. ``"WorkflowFailed"``."""
        return type(self).__name__


class WorkflowStarted(WorkflowEvent, frozen=True, kw_only=True):
    """An instance was created and its first step scheduled."""

    initial_step: str
    created_by: str | None = None


class WorkflowCompleted(WorkflowEvent, frozen=True, kw_only=True):
    """Every branch finished; the instance is complete."""

    final_step: str | None = None


class WorkflowFailed(WorkflowEvent, frozen=True, kw_only=True):
    """A step failed for good; the context is kept as it was before that step."""

    error: str
    step_name: str | None = None


class WorkflowCanceled(WorkflowEvent, frozen=True, kw_only=True):
    """The instance was canceled with its open tasks."""

    reason: str
    canceled_by: str | None = None


class WorkflowRetried(WorkflowEvent, frozen=True, kw_only=True):
    """A failed instance was resumed from a step."""

    from_step: str


class StepStarted(WorkflowEvent, frozen=True, kw_only=True):
    """A step began executing (or began waiting, for human, timer and webhook steps)."""

    category: ClassVar[str] = "step"
    step_name: str
    step_type: str
    attempt: int = 1


class StepCompleted(WorkflowEvent, frozen=True, kw_only=True):
    """A step succeeded."""

    category: ClassVar[str] = "step"
    step_name: str
    step_type: str
    attempt: int = 1
    output: Any = None
    duration_ms: float | None = None


class StepExecuted(WorkflowEvent, frozen=True, kw_only=True):
    """A step finished, whatever its outcome (emitted beside ``StepCompleted``/``StepFailed``/``StepSkipped``).

    ``status`` is ``"succeeded"``, ``"failed"`` or ``"skipped"``; ``error`` is set for a
    failed attempt.  One handler for every finished step, as 03-execution lists it.
    """

    category: ClassVar[str] = "step"
    step_name: str
    step_type: str
    status: str
    attempt: int = 1
    error: str | None = None
    duration_ms: float | None = None


class StepFailed(WorkflowEvent, frozen=True, kw_only=True):
    """An attempt of a step failed; ``retry_at`` is set when another attempt follows."""

    category: ClassVar[str] = "step"
    step_name: str
    step_type: str
    error: str
    attempt: int = 1
    retry_at: datetime | None = None

    @property
    def will_retry(self) -> bool:
        """Whether another attempt is scheduled."""
        return self.retry_at is not None


class StepSkipped(WorkflowEvent, frozen=True, kw_only=True):
    """``can_execute`` returned False; the workflow went on without running the step."""

    category: ClassVar[str] = "step"
    step_name: str
    step_type: str
    reason: str = "can_execute returned False"


class HumanTaskCreated(WorkflowEvent, frozen=True, kw_only=True):
    """A human task is waiting in the inbox."""

    category: ClassVar[str] = "task"
    task_id: str
    step_name: str
    task_title: str
    assignee: str | None = None
    assignee_group: str | None = None
    due_at: datetime | None = None


class HumanTaskCompleted(WorkflowEvent, frozen=True, kw_only=True):
    """A person submitted the task's form."""

    category: ClassVar[str] = "task"
    task_id: str
    step_name: str
    completed_by: str
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class HumanTaskReassigned(WorkflowEvent, frozen=True, kw_only=True):
    """A task moved to another assignee or group."""

    category: ClassVar[str] = "task"
    task_id: str
    step_name: str
    old_assignee: str | None
    new_assignee: str | None
    assignee_group: str | None = None
    reassigned_by: str | None = None


class HumanTaskClaimed(WorkflowEvent, frozen=True, kw_only=True):
    """A user took the task: it is theirs to complete until they unclaim it."""

    category: ClassVar[str] = "task"
    task_id: str
    step_name: str
    claimed_by: str


class HumanTaskUnclaimed(WorkflowEvent, frozen=True, kw_only=True):
    """A claim ended: the task is back with its candidates."""

    category: ClassVar[str] = "task"
    task_id: str
    step_name: str
    claimed_by: str
    unclaimed_by: str | None = None


class HumanTaskCommented(WorkflowEvent, frozen=True, kw_only=True):
    """A comment was added to the task (its text is in the audit trail, ``entry_id``)."""

    category: ClassVar[str] = "task"
    task_id: str
    step_name: str
    entry_id: str
    author: str | None = None


class HumanTaskEscalated(WorkflowEvent, frozen=True, kw_only=True):
    """A task's escalation timer fired: ``action`` is ``"reminded"`` or ``"escalated"``.

    ``assignee`` and ``assignee_group`` are whom it concerns now: the task's claimer or
    assignee and group for a reminder, the new ones for an escalation.
    """

    category: ClassVar[str] = "task"
    task_id: str
    step_name: str
    action: str
    task_title: str = ""
    assignee: str | None = None
    assignee_group: str | None = None


Event = (
    WorkflowStarted
    | WorkflowCompleted
    | WorkflowFailed
    | WorkflowCanceled
    | WorkflowRetried
    | StepStarted
    | StepCompleted
    | StepExecuted
    | StepFailed
    | StepSkipped
    | HumanTaskCreated
    | HumanTaskCompleted
    | HumanTaskReassigned
    | HumanTaskClaimed
    | HumanTaskUnclaimed
    | HumanTaskCommented
    | HumanTaskEscalated
)

EVENT_TYPES: dict[str, type[WorkflowEvent]] = {
    cls.__name__: cls
    for cls in (
        WorkflowStarted,
        WorkflowCompleted,
        WorkflowFailed,
        WorkflowCanceled,
        WorkflowRetried,
        StepStarted,
        StepCompleted,
        StepExecuted,
        StepFailed,
        StepSkipped,
        HumanTaskCreated,
        HumanTaskCompleted,
        HumanTaskReassigned,
        HumanTaskClaimed,
        HumanTaskUnclaimed,
        HumanTaskCommented,
        HumanTaskEscalated,
    )
}

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)


def encode_event(event: WorkflowEvent) -> bytes:
    """JSON bytes with a ``"type"`` tag."""
    return _encoder.encode(event)


def decode_event(raw: bytes | str) -> WorkflowEvent:
    """Decode JSON produced by ``encode_event``."""
    return _decoder.decode(raw)
