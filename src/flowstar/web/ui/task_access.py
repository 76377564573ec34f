"""Whether the signed-in user may see a task or an instance (the engine's task rule).

The task page and its form post both go through ``visible_task``: the task comes from the
URL only, and it is shown or completed only when ``find_tasks(user=...)`` (the engine's
rule: own, claimed, candidate or group tasks in the user's tenant; every task of the
tenant for an admin) lists it.
"""

from __future__ import annotations

from flowstar.engine.core import Engine
from flowstar.engine.views import WorkflowInstance
from flowstar.model.access import User
from flowstar.model.errors import InstanceNotFoundError, TaskNotFoundError
from flowstar.model.state import HumanTask

__all__ = ["visible_instance", "visible_task"]


async def visible_task(engine: Engine, task_id: str, user: User | None) -> HumanTask | int:
    """The task, or the HTTP status to answer instead: 404 (none, or another tenant's), 403.

    ``user=None`` is a trusted back end: every task is visible.
    """
    try:
        task = await engine.get_task(task_id)
    except (TaskNotFoundError, ValueError):
        return 404
    if user is None:
        return task
    if task.tenant_id != user.tenant_id:
        return 404  # another tenant's task does not exist for this user
    cursor: str | None = None
    while True:
        page = await engine.find_tasks(instance_id=task.instance_id, user=user, limit=500, cursor=cursor)
        if any(item.id == task.id for item in page.items):
            return task
        if page.next_cursor is None:
            return 403
        cursor = page.next_cursor


async def visible_instance(engine: Engine, instance_id: str, user: User | None) -> WorkflowInstance | int:
    """The instance, or the HTTP status to answer instead: 404 (none, another tenant's), 403.

    A user sees an instance of their tenant when they are an admin, started it, or have a
    task in it (the engine's task rule).
    """
    try:
        instance = await engine.get_instance(instance_id)
    except (InstanceNotFoundError, ValueError):
        return 404
    if user is None or (instance.tenant_id == user.tenant_id and (user.is_admin or instance.created_by == user.id)):
        return instance
    if instance.tenant_id != user.tenant_id:
        return 404
    page = await engine.find_tasks(instance_id=instance_id, user=user, limit=1)
    return instance if page.items else 403
