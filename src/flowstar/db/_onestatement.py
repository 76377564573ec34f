"""PostgreSQL: a whole ``CommitPlan`` as ONE statement, run in autocommit mode.

The rows are the plan's ``PlanRows`` (``flowstar.db._plan``), the same the transactional
path writes; this module only says how one statement carries them.

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

from flowstar.db._plan import CREATE_COLUMNS, STATE_COLUMNS, PlanRows

__all__ = [
    "PARTS",
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
    ("claimed_by", "varchar"),
    ("claimed_at", "timestamptz"),
    ("priority", "integer"),
    ("follow_up_at", "timestamptz"),
)
_CANDIDATE_COLUMNS: Columns = (
    ("task_id", "uuid"),
    ("kind", "varchar"),
    ("name", "varchar"),
    ("tenant_id", "varchar"),
)
_AUDIT_COLUMNS: Columns = (
    ("id", "uuid"),
    ("task_id", "uuid"),
    ("instance_id", "uuid"),
    ("tenant_id", "varchar"),
    ("action", "varchar"),
    ("actor", "varchar"),
    ("at", "timestamptz"),
    ("details", None),
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
    ("claimed_by", "varchar"),
    ("claimed_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
_JSON_STATE = {"context_data", "tokens", "joins", "history", "metadata", "waiting_for", "deliveries"}


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
PARTS = ("records", "record_updates", "tasks", "task_updates", "outbox", "candidates", "audit")
Parts = tuple[bool, bool, bool, bool, bool, bool, bool]


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
    SET {keep_or_set}
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
        # Rows of tasks created by this very statement: the foreign key is checked at its end.
        "candidates": f"""new_candidates AS (
    INSERT INTO workflow_task_candidates ({_names(_CANDIDATE_COLUMNS)})
    SELECT {_pick(_CANDIDATE_COLUMNS)} FROM {_rows("candidates", _CANDIDATE_COLUMNS)}
    RETURNING 1
)""",
        "audit": f"""new_audit AS (
    INSERT INTO workflow_task_audit ({_names(_AUDIT_COLUMNS)})
    SELECT {_pick(_AUDIT_COLUMNS)} FROM {_rows("audit", _AUDIT_COLUMNS)}
    RETURNING 1
)""",
    }
    chosen = [ctes[name] for name, present in zip(PARTS, parts, strict=True) if present]
    return "".join(f"\n, {cte}" for cte in chosen) + "\nSELECT count(*) FROM inst"


_CREATE_COLUMNS = (*CREATE_COLUMNS, *STATE_COLUMNS)

_UPDATE_INSTANCE = (
    "WITH inst AS (UPDATE workflow_instances SET "
    + ", ".join(f"{c} = {_value(c)}" for c in STATE_COLUMNS)
    + " WHERE id = :id AND lock_version = :expected_version RETURNING id)"
)
_CREATE_INSTANCE = (
    f"WITH inst AS (INSERT INTO workflow_instances ({', '.join(_CREATE_COLUMNS)}) "
    f"VALUES ({', '.join(_value(c) for c in _CREATE_COLUMNS)}) ON CONFLICT DO NOTHING RETURNING id)"
)


@functools.cache
def statement(created: bool, parts: Parts) -> TextClause:
    """The statement for a plan that creates (or updates) the instance and has ``parts``.

    A CTE for a kind of child write the plan does not have still costs PostgreSQL its plan
    nodes and a lock on the table and its indexes at every execution, so each combination
    gets its own statement (a step's commit usually writes the instance and one record).
    """
    return text((_CREATE_INSTANCE if created else _UPDATE_INSTANCE) + _children(parts))


def parts_of(rows: PlanRows) -> Parts:
    """Which kinds of child writes ``rows`` has."""
    return (
        bool(rows.records),
        bool(rows.record_updates),
        bool(rows.tasks),
        bool(rows.task_updates),
        bool(rows.outbox),
        bool(rows.candidates),
        bool(rows.audit),
    )


def eligible(rows: PlanRows) -> bool:
    """Whether one statement writes ``rows`` exactly as the transactional path would."""
    if rows.candidate_resets:
        return False  # a DELETE and an INSERT of the same candidate rows: two statements
    record_updates = [u["id"] for u in rows.record_updates]
    task_updates = [u["id"] for u in rows.task_updates]
    if len(set(record_updates)) != len(record_updates) or len(set(task_updates)) != len(task_updates):
        return False
    if set(record_updates) & {r["id"] for r in rows.records}:
        return False
    return not set(task_updates) & {t["id"] for t in rows.tasks}


# UUIDs become their canonical text and datetimes RFC 3339, which ``jsonb_to_record`` reads
# back as ``uuid`` and ``timestamptz``.
_encode = msgspec.json.Encoder().encode


def _json_text(value: Any) -> str:
    return _encode(value).decode()


def parameters(rows: PlanRows) -> dict[str, Any]:
    """The bind parameters of the statement for ``rows`` (``statement(rows.created, parts_of(rows))``)."""
    params = {column: _json_text(value) if column in _JSON_STATE else value for column, value in rows.instance.items()}
    # Only the parts the plan has: the statement for its ``parts_of`` names no others.
    if rows.records:
        params["records"] = _json_text(rows.records)
    if rows.record_updates:
        params["record_updates"] = _json_text(rows.record_updates)
    if rows.tasks:
        params["tasks"] = _json_text(rows.tasks)
    if rows.task_updates:
        params["task_updates"] = _json_text(rows.task_updates)
    if rows.candidates:
        params["candidates"] = _json_text(rows.candidates)
    if rows.audit:
        params["audit"] = _json_text(rows.audit)
    if rows.outbox:
        params["payloads"] = [row["payload"] for row in rows.outbox]
        params["event_times"] = [row["created_at"] for row in rows.outbox]
    if not rows.created:
        params["expected_version"] = rows.expected_version
    return params
