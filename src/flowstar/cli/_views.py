"""The rows commands print: one dict per instance, step record, task or version.

The keys are the JSON output's contract (``--json``), so they are listed here once rather
than taken from the engine's classes: a field added to the engine does not change what a
script reading ``flowstar ... --json`` receives.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, TypeVar

from flowstar.cli._output import Column, progress
from flowstar.engine.views import VersionUsage, WorkflowInstance
from flowstar.model.pages import Page
from flowstar.model.state import HumanTask, StepRecord

__all__ = [
    "HISTORY_COLUMNS",
    "INSTANCE_COLUMNS",
    "TASK_COLUMNS",
    "VERSION_COLUMNS",
    "collect",
    "instance_row",
    "record_row",
    "task_row",
    "version_row",
]

T = TypeVar("T")

# The engine serves at most this many rows per page.
_PAGE_LIMIT = 500

INSTANCE_COLUMNS = (
    Column("id", "id"),
    Column("workflow", "workflow_name"),
    Column("version", "workflow_version"),
    Column("status", "status"),
    Column("step", "current_step"),
    Column("started", "started_at"),
    Column("updated", "updated_at"),
)
HISTORY_COLUMNS = (
    Column("step", "step_name"),
    Column("type", "step_type"),
    Column("status", "status"),
    Column("attempt", "attempt"),
    Column("started", "started_at"),
    Column("completed", "completed_at"),
    Column("by", "completed_by"),
    Column("error", "error"),
)
TASK_COLUMNS = (
    Column("id", "id"),
    Column("workflow", "workflow_name"),
    Column("step", "step_name"),
    Column("title", "title"),
    Column("status", "status"),
    Column("assignee", "assignee_id"),
    Column("group", "assignee_group"),
    Column("due", "due_at"),
    Column("instance", "instance_id"),
)
VERSION_COLUMNS = (
    Column("workflow", "name"),
    Column("version", "version"),
    Column("registered", "registered"),
    Column("active", "active"),
    Column("running", "running"),
)


INSTANCE_FIELDS = (
    "id",
    "workflow_name",
    "workflow_version",
    "status",
    "current_step",
    "error",
    "failed_step",
    "waiting_for",
    "wake_at",
    "tenant_id",
    "created_by",
    "started_at",
    "updated_at",
    "completed_at",
)
RECORD_FIELDS = (
    "id",
    "step_name",
    "step_type",
    "status",
    "attempt",
    "started_at",
    "completed_at",
    "assigned_to",
    "completed_by",
    "error",
    "output_data",
)
TASK_FIELDS = (
    "id",
    "instance_id",
    "workflow_name",
    "step_name",
    "title",
    "status",
    "assignee_id",
    "assignee_group",
    "candidate_users",
    "candidate_groups",
    "claimed_by",
    "priority",
    "due_at",
    "created_at",
    "completed_at",
    "completed_by",
    "tenant_id",
)
VERSION_FIELDS = ("name", "version", "registered", "active", "running")


def _row(item: object, fields: tuple[str, ...]) -> dict[str, Any]:
    """The named attributes of ``item``: ids as text, statuses as their values."""
    return {name: _plain(name, getattr(item, name)) for name in fields}


def _plain(name: str, value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    return str(value) if name == "id" else value


def instance_row(instance: WorkflowInstance) -> dict[str, Any]:
    """An instance's fields (not its data: ``instances show`` prints that apart)."""
    return _row(instance, INSTANCE_FIELDS)


def record_row(record: StepRecord) -> dict[str, Any]:
    """One step execution of an instance's history."""
    return _row(record, RECORD_FIELDS)


def task_row(task: HumanTask) -> dict[str, Any]:
    """A task of the inbox."""
    return _row(task, TASK_FIELDS)


def version_row(usage: VersionUsage) -> dict[str, Any]:
    """A definition version: known to this registry, open to new starts, instances on it."""
    return _row(usage, VERSION_FIELDS)


async def collect(fetch: Callable[[int, str | None], Awaitable[Page[T]]], limit: int, *, what: str) -> list[T]:
    """Up to ``limit`` items of a paged list, page by page (``fetch(page_size, cursor)``).

    A progress bar counts them on a terminal: long lists take several round trips.
    """
    items: list[T] = []
    cursor: str | None = None
    with progress(what, limit) as advance:
        while len(items) < limit:
            page = await fetch(min(_PAGE_LIMIT, limit - len(items)), cursor)
            items.extend(page.items)
            advance(len(page.items))
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    return items
