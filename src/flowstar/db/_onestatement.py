"""PostgreSQL: a whole ``CommitPlan`` as ONE statement, run in autocommit mode.

The instance update (guarded by ``lock_version``) or insert is the first data-modifying CTE;
every child write (step records, record updates, tasks, task updates, outbox rows) selects
``FROM inst``, so it only happens when the guarded write did.  A single statement is atomic on
its own: one round trip replaces ``BEGIN``, one statement per table and ``COMMIT``.

Rows travel as one JSON array per table (``jsonb_array_elements`` + ``jsonb_to_record``), so
the statement text never changes with the number of rows and asyncpg reuses its prepared
statement.  JSON columns are taken with ``e->'column'``, which keeps a Python ``None`` a JSON
``null`` exactly as the transactional path stores it.

All sub-statements of one statement see the same snapshot: an UPDATE cannot see a row an
INSERT of the same statement creates.  ``eligible`` sends plans that update rows they create
(or the same row twice) down the transactional path.
"""

# The SQL below is assembled once, at import, from the constant column lists of this module;
# every value travels as a bind parameter.
# ruff: noqa: S608

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import TextClause, text

from flowstar.db._rows import dispatch_at, record_json, to_json, uuid_of
from flowstar.model.events import encode_event
from flowstar.model.state import CommitPlan, HumanTask, InstanceState, RecordUpdate, TaskUpdate

__all__ = [
    "PARTS",
    "STATE_COLUMNS",
    "Parts",
    "eligible",
    "parameters",
    "parts_of",
    "statement",
]

# (column, SQL type); None marks a JSON column, taken as ``e->'column'``.
Columns = Sequence[tuple[str, str | None]]

_RECORD_COLUMNS: Columns = (
    ("id", "uuid"),
    ("instance_id", "uuid"),
    ("step_name", "varchar"),
    ("step_type", "varchar"),
    ("status", "varchar"),
    ("attempt", "integer"),
    ("input_data", None),
    ("output_data", None),
    ("error", "text"),
    ("started_at", "timestamptz"),
    ("completed_at", "timestamptz"),
    ("assigned_to", "varchar"),
    ("completed_by", "varchar"),
    ("token_id", "varchar"),
    ("parent_step", "varchar"),
    ("tenant_id", "varchar"),
)
_TASK_COLUMNS: Columns = (
    ("id", "uuid"),
    ("instance_id", "uuid"),
    ("step_execution_id", "uuid"),
    ("workflow_name", "varchar"),
    ("step_name", "varchar"),
    ("title", "varchar"),
    ("description", "text"),
    ("form_schema", None),
    ("assignee_id", "varchar"),
    ("assignee_group", "varchar"),
    ("due_at", "timestamptz"),
    ("reminder_at", "timestamptz"),
    ("status", "varchar"),
    ("completed_at", "timestamptz"),
    ("completed_by", "varchar"),
    ("data", None),
    ("tenant_id", "varchar"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
_RECORD_UPDATE_COLUMNS: Columns = (
    ("id", "uuid"),
    ("status", "varchar"),
    ("completed_at", "timestamptz"),
    ("output_data", None),
    ("error", "text"),
    ("completed_by", "varchar"),
)
# A task update sets exactly the keys present in its JSON object (see ``_task_update``).
_TASK_UPDATE_COLUMNS: Columns = (
    ("id", "uuid"),
    ("status", "varchar"),
    ("completed_at", "timestamptz"),
    ("completed_by", "varchar"),
    ("data", None),
    ("assignee_id", "varchar"),
    ("assignee_group", "varchar"),
)
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
)
_JSON_STATE = {"context_data", "tokens", "joins", "history", "metadata"}


def _value(column: str) -> str:
    return f"CAST(:{column} AS jsonb)" if column in _JSON_STATE else f":{column}"


def _rows(param: str, columns: Columns) -> str:
    typed = ", ".join(f"{name} {kind}" for name, kind in columns if kind is not None)
    return f"inst, jsonb_array_elements(CAST(:{param} AS jsonb)) AS e, jsonb_to_record(e) AS r({typed})"


def _pick(columns: Columns) -> str:
    return ", ".join(f"r.{name}" if kind is not None else f"e->'{name}'" for name, kind in columns)


def _names(columns: Columns) -> str:
    return ", ".join(name for name, _kind in columns)


def _keep_or_set(name: str, kind: str | None) -> str:
    new = f"r.{name}" if kind is not None else f"e->'{name}'"
    return f"{name} = CASE WHEN e->'{name}' IS NOT NULL THEN {new} ELSE t.{name} END"


# The child writes a plan may carry, in the order their CTEs appear.
PARTS = ("records", "record_updates", "tasks", "task_updates", "outbox")
Parts = tuple[bool, bool, bool, bool, bool]


def _children(parts: Parts) -> str:
    keep_or_set = ", ".join(_keep_or_set(name, kind) for name, kind in _TASK_UPDATE_COLUMNS[1:])
    ctes = {
        "records": f"""new_records AS (
    INSERT INTO workflow_step_executions ({_names(_RECORD_COLUMNS)})
    SELECT {_pick(_RECORD_COLUMNS)} FROM {_rows("records", _RECORD_COLUMNS)}
    RETURNING 1
)""",
        "record_updates": f"""record_updates AS (
    UPDATE workflow_step_executions AS s
    SET status = r.status, completed_at = r.completed_at, output_data = e->'output_data',
        error = r.error, completed_by = r.completed_by
    FROM {_rows("record_updates", _RECORD_UPDATE_COLUMNS)}
    WHERE s.id = r.id
    RETURNING 1
)""",
        "tasks": f"""new_tasks AS (
    INSERT INTO workflow_human_tasks ({_names(_TASK_COLUMNS)})
    SELECT {_pick(_TASK_COLUMNS)} FROM {_rows("tasks", _TASK_COLUMNS)}
    RETURNING 1
)""",
        "task_updates": f"""task_updates AS (
    UPDATE workflow_human_tasks AS t
    SET {keep_or_set}, updated_at = :updated_at
    FROM {_rows("task_updates", _TASK_UPDATE_COLUMNS)}
    WHERE t.id = r.id
    RETURNING 1
)""",
        "outbox": """new_outbox AS (
    INSERT INTO workflow_outbox (instance_id, payload, created_at)
    SELECT inst.id, o.payload, o.created_at
    FROM inst, unnest(CAST(:payloads AS bytea[]), CAST(:event_times AS timestamptz[]))
        WITH ORDINALITY AS o(payload, created_at, n)
    ORDER BY o.n
    RETURNING 1
)""",
    }
    chosen = [ctes[name] for name, present in zip(PARTS, parts, strict=True) if present]
    return "".join(f"\n, {cte}" for cte in chosen) + "\nSELECT count(*) FROM inst"


_CREATE_COLUMNS = (
    "id",
    "definition_id",
    "workflow_name",
    "workflow_version",
    "metadata",
    "started_at",
    "tenant_id",
    "created_by",
    "created_at",
    *STATE_COLUMNS,
)

_UPDATE_INSTANCE = (
    "WITH inst AS (UPDATE workflow_instances SET "
    + ", ".join(f"{c} = {_value(c)}" for c in STATE_COLUMNS)
    + " WHERE id = :id AND lock_version = :expected_version RETURNING id)"
)
_CREATE_INSTANCE = (
    f"WITH inst AS (INSERT INTO workflow_instances ({', '.join(_CREATE_COLUMNS)}) "
    f"VALUES ({', '.join(_value(c) for c in _CREATE_COLUMNS)}) ON CONFLICT (id) DO NOTHING RETURNING id)"
)


@functools.cache
def statement(created: bool, parts: Parts) -> TextClause:
    """The statement for a plan that creates (or updates) the instance and has ``parts``.

    A CTE for a kind of child write the plan does not have still costs PostgreSQL its plan
    nodes and a lock on the table and its indexes at every execution, so each combination
    gets its own statement (a step's commit usually writes the instance and one record).
    """
    return text((_CREATE_INSTANCE if created else _UPDATE_INSTANCE) + _children(parts))


def parts_of(plan: CommitPlan, *, outbox: bool) -> Parts:
    """Which kinds of child writes ``plan`` has (events count only with an outbox)."""
    return (
        bool(plan.new_records),
        bool(plan.record_updates),
        bool(plan.new_tasks),
        bool(plan.task_updates),
        outbox and bool(plan.events),
    )


def eligible(plan: CommitPlan) -> bool:
    """Whether one statement writes ``plan`` exactly as the transactional path would."""
    record_updates = [u.id for u in plan.record_updates]
    task_updates = [u.id for u in plan.task_updates]
    if len(set(record_updates)) != len(record_updates) or len(set(task_updates)) != len(task_updates):
        return False
    if set(record_updates) & {r.id for r in plan.new_records}:
        return False
    return not set(task_updates) & {t.id for t in plan.new_tasks}


_encode = msgspec.json.Encoder().encode


def _json_text(value: Any) -> str:
    return _encode(to_json(value)).decode()


def _task(task: HumanTask) -> dict[str, Any]:
    row = {name: getattr(task, name, None) for name, _kind in _TASK_COLUMNS}
    row["status"] = task.status.value
    row["updated_at"] = task.created_at
    return row


def _record_update(change: RecordUpdate) -> dict[str, Any]:
    return {
        "id": change.id,
        "status": change.status.value,
        "completed_at": change.completed_at,
        "output_data": change.output_data,
        "error": change.error,
        "completed_by": change.completed_by,
    }


def _task_update(change: TaskUpdate) -> dict[str, Any]:
    # Mirrors the transactional path: a reassignment sets both assignee fields (None too);
    # any other change sets only the fields it has a value for.
    if change.reassign:
        return {"id": change.id, "assignee_id": change.assignee_id, "assignee_group": change.assignee_group}
    values = {
        "status": change.status.value if change.status else None,
        "completed_at": change.completed_at,
        "completed_by": change.completed_by,
        "data": change.data,
    }
    return {"id": change.id, **{k: v for k, v in values.items() if v is not None}}


def parameters(plan: CommitPlan, *, definition_id: Any, outbox: bool) -> dict[str, Any]:
    """The bind parameters of ``CREATE`` (``plan.created``) or ``UPDATE``."""
    state: InstanceState = plan.instance
    events = plan.events if outbox else []
    params: dict[str, Any] = {
        "id": uuid_of(state.id),
        "status": state.status.value,
        "current_step": state.current_step,
        "context_data": _json_text(state.data),
        "error": state.error,
        "failed_step": state.failed_step,
        "completed_at": state.completed_at,
        "lock_version": state.version,
        "tokens": _json_text(state.tokens),
        "joins": _json_text(state.joins),
        "history": _json_text(state.history),
        "dispatch_at": dispatch_at(state),
        "updated_at": state.updated_at,
    }
    # Only the parts the plan has: the statement for its ``parts_of`` names no others.
    if plan.new_records:
        params["records"] = _json_text([record_json(r) for r in plan.new_records])
    if plan.record_updates:
        params["record_updates"] = _json_text([_record_update(u) for u in plan.record_updates])
    if plan.new_tasks:
        params["tasks"] = _json_text([_task(t) for t in plan.new_tasks])
    if plan.task_updates:
        params["task_updates"] = _json_text([_task_update(u) for u in plan.task_updates])
    if events:
        params["payloads"] = [encode_event(e) for e in events]
        params["event_times"] = [e.timestamp for e in events]
    if plan.created:
        params.update(
            definition_id=definition_id,
            workflow_name=state.workflow_name,
            workflow_version=state.workflow_version,
            metadata=_json_text(state.metadata),
            started_at=state.started_at,
            tenant_id=state.tenant_id,
            created_by=state.created_by,
            created_at=state.started_at,
        )
    else:
        params["expected_version"] = plan.expected_version
    return params
