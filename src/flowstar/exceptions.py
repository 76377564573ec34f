"""flowstar's exceptions (``flowstar.exceptions``)."""

from flowstar.model.conditions import ConditionEvaluationError
from flowstar.model.errors import (
    BulkOperationNotFoundError,
    ConcurrencyError,
    ConfigurationError,
    ContextSerializationError,
    FormValidationError,
    InstanceNotFoundError,
    InvalidTransitionError,
    PermissionDeniedError,
    StepExecutionError,
    StepNotFoundError,
    StepTimeoutError,
    StoreUnavailableError,
    TaskAlreadyCompletedError,
    TaskClaimedError,
    TaskNotFoundError,
    UnsafeExpressionError,
    ValidationError,
    WorkflowNotFoundError,
    WorkflowsError,
)

FlowstarError = WorkflowsError

__all__ = [
    "BulkOperationNotFoundError",
    "ConcurrencyError",
    "ConditionEvaluationError",
    "ConfigurationError",
    "ContextSerializationError",
    "FlowstarError",
    "FormValidationError",
    "InstanceNotFoundError",
    "InvalidTransitionError",
    "PermissionDeniedError",
    "StepExecutionError",
    "StepNotFoundError",
    "StepTimeoutError",
    "StoreUnavailableError",
    "TaskAlreadyCompletedError",
    "TaskClaimedError",
    "TaskNotFoundError",
    "UnsafeExpressionError",
    "ValidationError",
    "WorkflowNotFoundError",
    "WorkflowsError",
]
