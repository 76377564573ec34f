"""A ``CommitPlan`` as the rows it writes: the one mapping every SQL commit path uses (no I/O).

``plan_rows`` turns a plan into column values per table; the transactional path
(``flowstar.db.store``) sends them as SQLAlchemy statements, the one-statement PostgreSQL
path (``flowstar.db._onestatement``) as JSON arrays of one statement.  What an update sets,
and what ``None`` means there, comes from ``flowstar.model.changes``, which the memory store
applies too.

Values are what the columns hold: ids as ``UUID``, statuses as their string, times as
``datetime``; JSON columns get JSON-ready values (tokens and history pre-converted, so a
column serializer other than flowstar's never meets a Struct or a datetime).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from flowstar.db._rows import dispatch_at, to_json, uuid_of
from flowstar.model.access import candidate_pairs
from flowstar.model.changes import record_changes, task_changes
from flowstar.model.events import encode_event
from flowstar.model.state import (
    CommitPlan,
    HumanTask,
    InstanceState,
    RecordUpdate,
    StepRecord,
    TaskAuditEntry,
    TaskUpdate,
)

__all__ = ["CREATE_COLUMNS", "STATE_COLUMNS", "PlanRows", "audit_row", "plan_rows"]

# The instance columns every commit writes.
STATE_COLUMNS = (
    "status",
    "current_step",
    "context_data",
    "error",
    "failed_step",
    "completed_at",
    "lock_version",
    "tokens",
    "joins",
    "history",
    "dispatch_at",
    "updated_at",
    "waiting_for",
    "deliveries",
)
# The ones written only when the instance is created (see ``model.changes.CREATION_FIELDS``).
CREATE_COLUMNS = (
    "id",
    "definition_id",
    "workflow_name",
    "workflow_version",
    "metadata",
    "started_at",
    "tenant_id",
    "created_by",
    "created_at",
    "idempotency_key",
)


class PlanRows(NamedTuple):
    """The rows of one plan, table by table.

    Attributes:
        created: the instance row is inserted (else updated where ``lock_version`` is
            ``expected_version``).
        instance: the instance's columns: ``STATE_COLUMNS``, plus ``CREATE_COLUMNS`` when created.
        records: new ``workflow_step_executions`` rows.
        record_updates: ``id`` and the columns each record update sets.
        tasks: new ``workflow_human_tasks`` rows.
        task_updates: ``id`` and the columns each task update sets (``updated_at`` always).
        outbox: new ``workflow_outbox`` rows (empty without an outbox).
        candidate_resets: ids of tasks whose ``workflow_task_candidates`` rows are deleted
            first (their candidates changed; the new rows are in ``candidates``).
        candidates: new ``workflow_task_candidates`` rows.
        audit: new ``workflow_task_audit`` rows.
    """

    created: bool
    expected_version: int
    instance: dict[str, Any]
    records: list[dict[str, Any]]
    record_updates: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    task_updates: list[dict[str, Any]]
    outbox: list[dict[str, Any]]
    candidate_resets: list[Any] = []
    candidates: list[dict[str, Any]] = []
    audit: list[dict[str, Any]] = []


def plan_rows(plan: CommitPlan, *, definition_id: Any, outbox: bool) -> PlanRows:
    """The rows ``plan`` writes (``definition_id``: the definition row of a created instance)."""
    state = plan.instance
    instance = _state_row(state)
    if plan.created:
        instance.update(_creation_row(state, definition_id))
    updated_at = state.updated_at
    resets, candidates = _candidate_rows(plan) if plan.new_tasks or plan.task_updates else ([], [])
    return PlanRows(
        created=plan.created,
        expected_version=plan.expected_version,
        instance=instance,
        records=[record_row(r) for r in plan.new_records] if plan.new_records else [],
        record_updates=[_record_update(u) for u in plan.record_updates] if plan.record_updates else [],
        tasks=[task_row(t) for t in plan.new_tasks] if plan.new_tasks else [],
        task_updates=[_task_update(u, updated_at) for u in plan.task_updates] if plan.task_updates else [],
        outbox=(
            [
                {"instance_id": instance["id"], "payload": encode_event(e), "created_at": e.timestamp}
                for e in plan.events
            ]
            if outbox and plan.events
            else []
        ),
        candidate_resets=resets,
        candidates=candidates,
        audit=[audit_row(e) for e in plan.audit] if plan.audit else [],
    )


def _candidate_rows(plan: CommitPlan) -> tuple[list[Any], list[dict[str, Any]]]:
    """The candidate rows of new tasks, and of tasks whose candidates the plan replaces."""
    resets: list[Any] = []
    rows: list[dict[str, Any]] = []
    for task in plan.new_tasks:
        key = uuid_of(task.id)
        pairs = candidate_pairs(task.candidate_users, task.candidate_groups, task.assignee_group)
        rows.extend({"task_id": key, "kind": k, "name": n, "tenant_id": task.tenant_id} for k, n in pairs)
    tenant_id = plan.instance.tenant_id
    for change in plan.task_updates:
        if change.candidates is not None:
            key = uuid_of(change.id)
            resets.append(key)
            rows.extend({"task_id": key, "kind": k, "name": n, "tenant_id": tenant_id} for k, n in change.candidates)
    return resets, rows


def audit_row(entry: TaskAuditEntry) -> dict[str, Any]:
    """A ``workflow_task_audit`` row."""
    return {
        "id": uuid_of(entry.id),
        "task_id": uuid_of(entry.task_id),
        "instance_id": uuid_of(entry.instance_id),
        "tenant_id": entry.tenant_id,
        "action": entry.action,
        "actor": entry.actor,
        "at": entry.at,
        "details": entry.details,
    }


def _state_row(state: InstanceState) -> dict[str, Any]:
    return {
        "id": uuid_of(state.id),
        "status": state.status.value,
        "current_step": state.current_step,
        "context_data": state.data,
        "error": state.error,
        "failed_step": state.failed_step,
        "completed_at": state.completed_at,
        "lock_version": state.version,
        "tokens": to_json(state.tokens),
        "joins": state.joins,
        "history": to_json(state.history),
        "dispatch_at": dispatch_at(state),
        "updated_at": state.updated_at,
        # NULL when it waits for no signal or event: most instances, and no index entry.
        "waiting_for": state.waiting_for or None,
        "deliveries": state.deliveries or None,
    }


def _creation_row(state: InstanceState, definition_id: Any) -> dict[str, Any]:
    return {
        "definition_id": definition_id,
        "workflow_name": state.workflow_name,
        "workflow_version": state.workflow_version,
        "metadata": state.metadata,
        "started_at": state.started_at,
        "tenant_id": state.tenant_id,
        "created_by": state.created_by,
        "created_at": state.started_at,
        "idempotency_key": state.idempotency_key,
    }


def record_row(record: StepRecord) -> dict[str, Any]:
    """A ``workflow_step_executions`` row."""
    return {
        "id": uuid_of(record.id),
        "instance_id": uuid_of(record.instance_id),
        "step_name": record.step_name,
        "step_type": record.step_type,
        "status": record.status.value,
        "attempt": record.attempt,
        "input_data": record.input_data,
        "output_data": record.output_data,
        "error": record.error,
        "started_at": record.started_at,
        "completed_at": record.completed_at,
        "assigned_to": record.assigned_to,
        "completed_by": record.completed_by,
        "token_id": record.token_id,
        "parent_step": record.parent_step,
        "tenant_id": record.tenant_id,
    }


def task_row(task: HumanTask) -> dict[str, Any]:
    """A ``workflow_human_tasks`` row."""
    return {
        "id": uuid_of(task.id),
        "instance_id": uuid_of(task.instance_id),
        "step_execution_id": uuid_of(task.step_execution_id) if task.step_execution_id else None,
        "workflow_name": task.workflow_name,
        "step_name": task.step_name,
        "title": task.title,
        "description": task.description,
        "form_schema": task.form_schema,
        "assignee_id": task.assignee_id,
        "assignee_group": task.assignee_group,
        "due_at": task.due_at,
        "reminder_at": task.reminder_at,
        "status": task.status.value,
        "completed_at": task.completed_at,
        "completed_by": task.completed_by,
        "data": task.data,
        "tenant_id": task.tenant_id,
        "created_at": task.created_at,
        "updated_at": task.created_at,
        "claimed_by": task.claimed_by,
        "claimed_at": task.claimed_at,
        "priority": task.priority,
        "follow_up_at": task.follow_up_at,
    }


def _record_update(update: RecordUpdate) -> dict[str, Any]:
    row = record_changes(update)
    row["status"] = update.status.value
    return {"id": uuid_of(update.id), **row}


def _task_update(change: TaskUpdate, updated_at: Any) -> dict[str, Any]:
    row = task_changes(change)
    if "status" in row:
        row["status"] = row["status"].value
    return {"id": uuid_of(change.id), **row, "updated_at": updated_at}
