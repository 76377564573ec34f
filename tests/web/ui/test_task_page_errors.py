"""The status the task page answers each engine refusal with."""

from __future__ import annotations

import pytest

from flowstar.model.errors import (
    ConcurrencyError,
    InstanceNotFoundError,
    InvalidTransitionError,
    PermissionDeniedError,
    StoreUnavailableError,
    TaskAlreadyCompletedError,
    TaskClaimedError,
    TaskNotFoundError,
    ValidationError,
    WorkflowsError,
)
from flowstar.web.ui.task_access import error_status


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (TaskNotFoundError("no task"), 404),
        (InstanceNotFoundError("no instance"), 404),
        (PermissionDeniedError("not yours"), 403),
        (TaskClaimedError("claimed by bob"), 409),
        (TaskAlreadyCompletedError("completed"), 409),
        (InvalidTransitionError("not claimed"), 409),
        (ConcurrencyError("kept changing"), 409),
        (ValidationError("a comment needs some text"), 422),
        (StoreUnavailableError("database down"), 503),
    ],
)
def test_error_status(error: WorkflowsError, status: int) -> None:
    assert error_status(error) == status
