"""flowstar's exceptions (``flowstar.exceptions``)."""

from flowstar.model.conditions import ConditionEvaluationError
from flowstar.model.errors import (
    ConcurrencyError,
    ContextSerializationError,
    FormValidationError,
    InstanceNotFoundError,
    InvalidTransitionError,
    StepExecutionError,
    StepTimeoutError,
    TaskAlreadyCompletedError,
    TaskNotFoundError,
    UnsafeExpressionError,
    ValidationError,
    WorkflowNotFoundError,
    WorkflowsError,
)

FlowstarError = WorkflowsError

__all__ = [
    "ConcurrencyError",
    "ConditionEvaluationError",
    "ContextSerializationError",
    "FlowstarError",
    "FormValidationError",
    "InstanceNotFoundError",
    "InvalidTransitionError",
    "StepExecutionError",
    "StepTimeoutError",
    "TaskAlreadyCompletedError",
    "TaskNotFoundError",
    "UnsafeExpressionError",
    "ValidationError",
    "WorkflowNotFoundError",
    "WorkflowsError",
]
