"""flowstar's tables, and rows read back as its state Structs (no I/O).

The other direction, a ``CommitPlan`` as the rows it writes, is ``flowstar.db._plan``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import msgspec
from sqlalchemy import Row, Table, bindparam, select

from flowstar.db.models import (
    HumanTaskModel,
    OutboxModel,
    StepExecutionModel,
    TaskAuditModel,
    TaskCandidateModel,
    WorkflowDefinitionModel,
    WorkflowInstanceModel,
)
from flowstar.engine.views import as_uuid
from flowstar.model.enums import StepStatus, TaskStatus, WorkflowStatus
from flowstar.model.state import HistoryEntry, HumanTask, InstanceState, StepRecord, TaskAuditEntry, Token

__all__ = [
    "CANDIDATES_OF",
    "DECODE_TOKENS",
    "audit",
    "audit_from_row",
    "candidates",
    "tasks_with_candidates",
    "definitions",
    "dispatch_at",
    "instances",
    "json_column",
    "outbox",
    "record_from_row",
    "records",
    "state_from_row",
    "task_from_row",
    "tasks",
    "to_json",
    "uuid_of",
]

instances = cast(Table, WorkflowInstanceModel.__table__)
records = cast(Table, StepExecutionModel.__table__)
tasks = cast(Table, HumanTaskModel.__table__)
definitions = cast(Table, WorkflowDefinitionModel.__table__)
outbox = cast(Table, OutboxModel.__table__)
candidates = cast(Table, TaskCandidateModel.__table__)
audit = cast(Table, TaskAuditModel.__table__)

# The candidate rows of a list of tasks (``task_ids``), for ``tasks_with_candidates``.
CANDIDATES_OF = (
    select(candidates.c.task_id, candidates.c.kind, candidates.c.name)
    .where(candidates.c.task_id.in_(bindparam("task_ids", expanding=True)))
    .order_by(candidates.c.task_id, candidates.c.kind, candidates.c.name)
)

DECODE_TOKENS = msgspec.json.Decoder(dict[str, Token])
_HISTORY = msgspec.json.Decoder(list[HistoryEntry])


def uuid_of(value: str) -> UUID:
    # The engine's cached, direct parse of canonical ids: every commit and load converts the
    # instance's id, and the same ids come back step after step.
    return as_uuid(value)


def to_json(value: Any) -> Any:
    # Pre-convert to JSON builtins so the column serializer (json.dumps by default, whatever
    # engine the user built) never meets a datetime or a Struct.
    return msgspec.to_builtins(value)


def dispatch_at(state: InstanceState) -> datetime | None:
    """When the instance's earliest dispatchable activation is due (None: nothing to run)."""
    times = [t.due_at or t.created_at for t in state.tokens.values() if t.dispatchable]
    return min(times) if times else None


def json_column(value: Any) -> Any:
    # SQLite hands JSON back as parsed values, asyncpg too; guard against drivers returning
    # text.  Only for the instance's columns, which always hold an object or an array: a
    # step's output may be a JSON string, which the column's type has already decoded.
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value


def state_from_row(row: Row[Any] | Mapping[str, Any]) -> InstanceState:
    """Rebuild an ``InstanceState`` from a ``workflow_instances`` row (or asyncpg record)."""
    m = row._mapping if isinstance(row, Row) else row
    tokens = DECODE_TOKENS.decode(msgspec.json.encode(json_column(m["tokens"]) or {}))
    history = _HISTORY.decode(msgspec.json.encode(json_column(m["history"]) or []))
    return InstanceState(
        id=str(m["id"]),
        workflow_name=m["workflow_name"],
        workflow_version=m["workflow_version"],
        status=WorkflowStatus(m["status"]),
        data=json_column(m["context_data"]) or {},
        version=m["lock_version"],
        tokens=tokens,
        joins=json_column(m["joins"]) or {},
        current_step=m["current_step"],
        error=m["error"],
        failed_step=m["failed_step"],
        tenant_id=m["tenant_id"],
        created_by=m["created_by"],
        idempotency_key=m["idempotency_key"],
        deliveries=json_column(m["deliveries"]) or {},
        metadata=json_column(m["metadata"]) or {},
        history=history,
        started_at=m["started_at"],
        updated_at=m["updated_at"],
        completed_at=m["completed_at"],
    )


def record_from_row(row: Row[Any]) -> StepRecord:
    """Rebuild a ``StepRecord``."""
    m = row._mapping
    return StepRecord(
        id=str(m["id"]),
        instance_id=str(m["instance_id"]),
        step_name=m["step_name"],
        step_type=m["step_type"],
        status=StepStatus(m["status"]),
        attempt=m["attempt"],
        input_data=m["input_data"],
        output_data=m["output_data"],
        error=m["error"],
        started_at=m["started_at"],
        completed_at=m["completed_at"],
        assigned_to=m["assigned_to"],
        completed_by=m["completed_by"],
        token_id=m["token_id"],
        parent_step=m["parent_step"],
        tenant_id=m["tenant_id"],
    )


def task_from_row(
    row: Row[Any], candidate_users: list[str] | None = None, candidate_groups: list[str] | None = None
) -> HumanTask:
    """Rebuild a ``HumanTask`` (its candidates come from their own table: ``tasks_with_candidates``)."""
    m = row._mapping
    return HumanTask(
        id=str(m["id"]),
        instance_id=str(m["instance_id"]),
        workflow_name=m["workflow_name"],
        step_name=m["step_name"],
        title=m["title"],
        description=m["description"],
        form_schema=m["form_schema"],
        assignee_id=m["assignee_id"],
        assignee_group=m["assignee_group"],
        due_at=m["due_at"],
        reminder_at=m["reminder_at"],
        status=TaskStatus(m["status"]),
        created_at=m["created_at"],
        completed_at=m["completed_at"],
        completed_by=m["completed_by"],
        data=m["data"],
        tenant_id=m["tenant_id"],
        step_execution_id=str(m["step_execution_id"]) if m["step_execution_id"] else None,
        candidate_users=candidate_users or [],
        candidate_groups=candidate_groups or [],
        claimed_by=m["claimed_by"],
        claimed_at=m["claimed_at"],
        priority=m["priority"],
        follow_up_at=m["follow_up_at"],
    )


def tasks_with_candidates(rows: Sequence[Row[Any]], candidate_rows: Sequence[Row[Any]]) -> list[HumanTask]:
    """Rebuild tasks from their rows and their candidate rows (``CANDIDATES_OF``).

    The assignee group's row is the task's ``assignee_group``, not one of its
    ``candidate_groups`` (a task never lists it twice).
    """
    found: dict[Any, tuple[list[str], list[str]]] = {}
    for c in candidate_rows:
        users, groups = found.setdefault(c.task_id, ([], []))
        (users if c.kind == "user" else groups).append(c.name)
    tasks = []
    for row in rows:
        users, groups = found.get(row.id, ([], []))
        group = row.assignee_group
        tasks.append(task_from_row(row, users, [g for g in groups if g != group]))
    return tasks


def audit_from_row(row: Row[Any]) -> TaskAuditEntry:
    """Rebuild a ``TaskAuditEntry``."""
    m = row._mapping
    return TaskAuditEntry(
        id=str(m["id"]),
        task_id=str(m["task_id"]),
        instance_id=str(m["instance_id"]),
        tenant_id=m["tenant_id"],
        action=m["action"],
        actor=m["actor"],
        at=m["at"],
        details=m["details"] or {},
    )
