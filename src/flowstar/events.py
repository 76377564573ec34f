"""Workflow events (``flowstar.events``).

The ``*Event`` aliases match the names used by the reference project's documentation.
"""

from flowstar.model.events import (
    EVENT_TYPES,
    Event,
    HumanTaskClaimed,
    HumanTaskCommented,
    HumanTaskCompleted,
    HumanTaskCreated,
    HumanTaskEscalated,
    HumanTaskReassigned,
    HumanTaskUnclaimed,
    StepCompleted,
    StepExecuted,
    StepFailed,
    StepSkipped,
    StepStarted,
    WorkflowCanceled,
    WorkflowCompleted,
    WorkflowEvent,
    WorkflowFailed,
    WorkflowRetried,
    WorkflowStarted,
    decode_event,
    encode_event,
)

WorkflowStartedEvent = WorkflowStarted
WorkflowCompletedEvent = WorkflowCompleted
WorkflowFailedEvent = WorkflowFailed
WorkflowCanceledEvent = WorkflowCanceled
StepStartedEvent = StepStarted
StepCompletedEvent = StepCompleted
StepExecutedEvent = StepExecuted
StepFailedEvent = StepFailed
StepSkippedEvent = StepSkipped
HumanTaskCreatedEvent = HumanTaskCreated
HumanTaskCompletedEvent = HumanTaskCompleted
HumanTaskReassignedEvent = HumanTaskReassigned

__all__ = [
    "EVENT_TYPES",
    "Event",
    "HumanTaskClaimed",
    "HumanTaskCommented",
    "HumanTaskCompleted",
    "HumanTaskCompletedEvent",
    "HumanTaskCreated",
    "HumanTaskCreatedEvent",
    "HumanTaskEscalated",
    "HumanTaskReassigned",
    "HumanTaskReassignedEvent",
    "HumanTaskUnclaimed",
    "StepCompleted",
    "StepCompletedEvent",
    "StepExecuted",
    "StepExecutedEvent",
    "StepFailed",
    "StepFailedEvent",
    "StepSkipped",
    "StepSkippedEvent",
    "StepStarted",
    "StepStartedEvent",
    "WorkflowCanceled",
    "WorkflowCanceledEvent",
    "WorkflowCompleted",
    "WorkflowCompletedEvent",
    "WorkflowEvent",
    "WorkflowFailed",
    "WorkflowFailedEvent",
    "WorkflowRetried",
    "WorkflowStarted",
    "WorkflowStartedEvent",
    "decode_event",
    "encode_event",
]
