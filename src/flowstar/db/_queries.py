"""The SELECTs of keyset pages of tasks and instances (no I/O).

Each page asks for ``limit + 1`` rows after the cursor's key, in the order of an index
(``HumanTaskModel`` / ``WorkflowInstanceModel`` ``__table_args__``), so the database reads
about one page of index entries whatever the table's size.

A user's inbox ("assigned to or claimed by me, or to one of my groups, or naming me or one of
my groups as a candidate") is an ``OR`` over several columns that no single index serves in
order; it is written as one branch per column value (the user's id as assignee and as
claimer, each of their groups as assignee group), each a short ordered scan of its index
limited to the page, plus one branch for the candidate rows (``workflow_task_candidates``),
merged by ``UNION`` (which also drops a task found by two branches) and cut to the page.  The
candidate branch reads the user's candidate rows through their ``(kind, name)`` index, so it
costs in proportion to the tasks naming the user or their groups as candidates, not to the
table.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, literal, select, tuple_, union

from flowstar.db._rows import instances as _instances
from flowstar.db._rows import tasks as _tasks
from flowstar.db._rows import uuid_of
from flowstar.db.models import TaskCandidateModel
from flowstar.model.enums import TaskStatus
from flowstar.model.pages import InstanceQuery, PageKey, TaskQuery

__all__ = ["instance_page", "task_page"]

_candidates = TaskCandidateModel.__table__


def _tenant(column: Any, tenant_id: str | None) -> ColumnElement[bool]:
    found: ColumnElement[bool] = column.is_(None) if tenant_id is None else column == tenant_id
    return found


def _key(at: Any, row_id: Any, key: PageKey) -> Any:
    """``(at, row_id)`` and the cursor's key, bound with the columns' types (so each store's
    storage format of timestamps and ids is compared, not Python's)."""
    return tuple_(at, row_id), tuple_(literal(key[0], at.type), literal(uuid_of(key[1]), row_id.type))


def _task_conditions(q: TaskQuery) -> list[ColumnElement[bool]]:
    c = _tasks.c
    found: list[ColumnElement[bool]] = []
    if q.status is not None:
        found.append(c.status == q.status.value)
    if q.scoped:
        found.append(_tenant(c.tenant_id, q.tenant_id))
    if q.assignee_id is not None:
        found.append(c.assignee_id == q.assignee_id)
    if q.group is not None:
        found.append(c.assignee_group == q.group)
    if q.workflow_name is not None:
        found.append(c.workflow_name == q.workflow_name)
    if q.instance_id is not None:
        found.append(c.instance_id == uuid_of(q.instance_id))
    if q.due_before is not None:
        found.append(c.due_at < q.due_before)
    if q.min_priority is not None:
        found.append(c.priority >= q.min_priority)
    if q.completed_by is not None:
        found.append(c.completed_by == q.completed_by)
    if q.claimable is not None:
        claimable = (c.status == TaskStatus.PENDING.value) & c.assignee_id.is_(None) & c.claimed_by.is_(None)
        found.append(claimable if q.claimable else ~claimable)
    if q.after is not None:
        row, after = _key(c.created_at, c.id, q.after)
        found.append(row > after)
    return found


def _candidate_of(user_id: str, groups: frozenset[str]) -> Select[Any]:
    """Ids of the tasks naming ``user_id`` or one of ``groups`` as a candidate."""
    k = _candidates.c
    who = (k.kind == "user") & (k.name == user_id)
    if groups:
        who = who | ((k.kind == "group") & k.name.in_(sorted(groups)))
    return select(k.task_id).where(who)


def task_page(q: TaskQuery) -> Select[Any]:
    """Up to ``q.limit + 1`` tasks of the query, oldest first by ``(created_at, id)``."""
    c = _tasks.c
    order = (c.created_at, c.id)
    conditions = _task_conditions(q)
    fetch = q.limit + 1
    if q.user_id is None:
        return select(_tasks).where(*conditions).order_by(*order).limit(fetch)
    mine = [
        c.assignee_id == q.user_id,
        c.claimed_by == q.user_id,
        *(c.assignee_group == g for g in sorted(q.user_groups)),
        c.id.in_(_candidate_of(q.user_id, q.user_groups)),
    ]
    # Each branch wrapped in a subquery: SQLite refuses ORDER BY / LIMIT on a compound member.
    branches = [
        select(select(c.id, c.created_at).where(*conditions, who).order_by(*order).limit(fetch).subquery())
        for who in mine
    ]
    found = union(*branches).subquery()
    return select(_tasks).join(found, c.id == found.c.id).order_by(*order).limit(fetch)


def instance_page(q: InstanceQuery) -> Select[Any]:
    """Up to ``q.limit + 1`` instances of the query, newest first by ``(started_at, id)``."""
    c = _instances.c
    conditions: list[ColumnElement[bool]] = []
    if q.scoped:
        conditions.append(_tenant(c.tenant_id, q.tenant_id))
    if q.workflow_name is not None:
        conditions.append(c.workflow_name == q.workflow_name)
    if q.statuses is not None:
        conditions.append(c.status.in_(sorted(s.value for s in q.statuses)))
    if q.created_by is not None:
        conditions.append(c.created_by == q.created_by)
    if q.created_after is not None:
        conditions.append(c.started_at >= q.created_after)
    if q.created_before is not None:
        conditions.append(c.started_at < q.created_before)
    if q.after is not None:
        row, after = _key(c.started_at, c.id, q.after)
        conditions.append(row < after)
    return select(_instances).where(*conditions).order_by(c.started_at.desc(), c.id.desc()).limit(q.limit + 1)
