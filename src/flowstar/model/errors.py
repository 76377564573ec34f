"""One root exception with specific subclasses, raised where they apply."""

from __future__ import annotations

from typing import Any

__all__ = [
    "BulkOperationNotFoundError",
    "ConcurrencyError",
    "ConfigurationError",
    "ContextSerializationError",
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


class WorkflowsError(Exception):
    """Base exception for all flowstar errors."""


class WorkflowNotFoundError(WorkflowsError, LookupError):
    """A requested workflow definition (name or version) is not registered."""


class InstanceNotFoundError(WorkflowsError, KeyError, ValueError):
    """No workflow instance has the given id.

    A ``KeyError`` (``get_instance``) and a ``ValueError`` (``complete_human_task``), as the
    reference API documents for each.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class BulkOperationNotFoundError(WorkflowsError, LookupError):
    """No bulk operation has the given id (in the caller's tenant)."""


class StepNotFoundError(WorkflowsError, KeyError):
    """A workflow definition has no step of the given name (``WorkflowRegistry.get_step``)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class StepExecutionError(WorkflowsError):
    """A step failed during execution."""


class StepTimeoutError(StepExecutionError, TimeoutError):
    """A step ran longer than its ``timeout``."""


class InvalidTransitionError(WorkflowsError, ValueError):
    """An operation is not allowed in the instance's or task's current state.

    A ``ValueError``: the reference API documents one for a task completed on an instance
    that is not waiting.
    """


class ConfigurationError(WorkflowsError, ValueError):
    """A setting (an environment variable, a ``module:attribute`` path) names nothing usable."""


class ConcurrencyError(WorkflowsError):
    """Another writer changed the instance first; the operation can be retried."""


class StoreUnavailableError(WorkflowsError):
    """The database did not answer in time (``FLOWSTAR_DB_TIMEOUT``) or the connection was lost.

    The operation may or may not have been applied: read the instance again, or retry the
    call. A retried call is never applied twice (the instance's version check refuses a
    second outcome); a completed human task then raises ``TaskAlreadyCompletedError``.
    """


class ValidationError(WorkflowsError, ValueError):
    """A workflow definition, a step or submitted data is invalid.

    Attributes:
        errors: every problem found, one message each.
    """

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors: list[str] = errors if errors is not None else [message]


class UnsafeExpressionError(ValidationError):
    """A condition string uses syntax outside the safe expression subset."""


class ContextSerializationError(ValidationError, TypeError):
    """A value put into the workflow context cannot be stored as JSON."""


class FormValidationError(ValidationError):
    """Human task data does not match the step's ``form_schema``.

    Attributes:
        field_errors: messages keyed by the field path ("" for the whole form).
    """

    def __init__(self, field_errors: dict[str, list[str]]) -> None:
        flat = [f"{path or '<form>'}: {msg}" for path, msgs in field_errors.items() for msg in msgs]
        super().__init__("form data is invalid: " + "; ".join(flat), flat)
        self.field_errors = field_errors


class TaskNotFoundError(WorkflowsError, KeyError, ValueError):
    """No open human task matches the instance and step (or task id).

    A ``KeyError`` and a ``ValueError``, like ``InstanceNotFoundError``.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class TaskAlreadyCompletedError(InvalidTransitionError):
    """The human task was completed (or canceled) already."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


class TaskClaimedError(InvalidTransitionError):
    """Another user has claimed the task (it is theirs until they unclaim it)."""


class PermissionDeniedError(WorkflowsError, PermissionError):
    """The user may not do this (a task not assigned to them or their groups, an admin action)."""
