"""Whether the signed-in user may see a task, as the engine's user-scoped task list says.

The task page and its form post both go through ``visible_task``: the task comes from the
URL only, and it is shown or completed only when ``find_tasks(user=...)`` (the engine's
rule: own, claimed, candidate or group tasks in the user's tenant; every task of the
tenant for an admin) lists it.
"""

from __future__ import annotations

from flowstar.engine.core import Engine
from flowstar.model.access import User
from flowstar.model.errors import TaskNotFoundError
from flowstar.model.state import HumanTask

__all__ = ["visible_task"]


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
