"""Whether the signed-in user may see a task or an instance: the engine decides.

The pages take the id from the URL only and ask the engine with ``user=`` (its rules in
``flowstar.model.access``); an engine error becomes the HTTP status the page answers with.
"""

from __future__ import annotations

from flowstar.engine.core import Engine
from flowstar.engine.views import WorkflowInstance
from flowstar.model.access import User
from flowstar.model.errors import (
    ConcurrencyError,
    InstanceNotFoundError,
    InvalidTransitionError,
    PermissionDeniedError,
    StoreUnavailableError,
    TaskNotFoundError,
    WorkflowsError,
)
from flowstar.model.state import HumanTask

__all__ = ["error_status", "may_administer", "visible_instance", "visible_task"]


def may_administer(user: User | None) -> bool:
    """Whether the pages offer admin actions (cancel, retry, bulk actions) to ``user``.

    No user at all is the trusted back office (no user provider configured); the engine
    checks again on every call.
    """
    return user is None or user.is_admin


def error_status(exc: WorkflowsError) -> int:
    """The status a page answers an engine error with: a 4xx for the request, 503 for an outage."""
    # Most specific first: the not-found errors are also ValueErrors, the claim and
    # completed-task errors InvalidTransitionErrors.
    if isinstance(exc, (TaskNotFoundError, InstanceNotFoundError)):
        return 404
    if isinstance(exc, PermissionDeniedError):
        return 403
    if isinstance(exc, (InvalidTransitionError, ConcurrencyError)):
        return 409
    # An outage is the server's, not the user's: say so rather than blame the request.
    return 503 if isinstance(exc, StoreUnavailableError) else 422


async def visible_task(engine: Engine, task_id: str, user: User | None) -> HumanTask | int:
    """The task, or the status to answer instead: 404 (none, malformed, another tenant's), 403.

    ``user=None`` is a trusted back end: every task is visible.
    """
    try:
        return await engine.get_task(task_id, user=user)
    except (TaskNotFoundError, PermissionDeniedError) as exc:
        return error_status(exc)


async def visible_instance(engine: Engine, instance_id: str, user: User | None) -> WorkflowInstance | int:
    """The instance, or the status to answer instead: 404 (none, malformed, another tenant's), 403.

    A user sees an instance of their tenant when they are an admin, started it, or have a
    task in it (the engine's rule).
    """
    try:
        return await engine.get_instance(instance_id, user=user)
    except (InstanceNotFoundError, PermissionDeniedError) as exc:
        return error_status(exc)
