"""The SQL store's scrape-time numbers: one cheap query each, on one connection.

Open tasks and overdue tasks are counts over ``workflow_human_tasks`` by status (indexed),
grouped by workflow; the outbox backlog is the count and oldest time of ``workflow_outbox``.
Nothing here adds a column or an index.  Each unit of work takes the store's turn, as the
store's own do: on a single shared connection (an in-memory SQLite database) a read must
not interleave with a commit's transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, text

from flowstar.db._rows import outbox, tasks
from flowstar.db.store import SQLAlchemyStore
from flowstar.metrics.probes import StoreCounts
from flowstar.model.enums import TaskStatus

__all__ = ["ping", "store_counts"]

_PENDING = tasks.c.status == TaskStatus.PENDING.value
_BY_WORKFLOW = (tasks.c.workflow_name, func.count())
_OPEN = select(*_BY_WORKFLOW).where(_PENDING).group_by(tasks.c.workflow_name)
_OUTBOX = select(func.count(), func.min(outbox.c.created_at))


async def store_counts(store: SQLAlchemyStore, now: datetime) -> StoreCounts:
    """The counts, with ``now`` (the engine's clock) deciding what is overdue."""
    overdue = select(*_BY_WORKFLOW).where(_PENDING, tasks.c.due_at < now).group_by(tasks.c.workflow_name)
    async with store._turn(), store.engine.connect() as conn:
        open_rows = (await conn.execute(_OPEN)).all()
        overdue_rows = (await conn.execute(overdue)).all()
        backlog, oldest = (await conn.execute(_OUTBOX)).one()
    return StoreCounts(
        open_tasks={row[0]: int(row[1]) for row in open_rows},
        overdue_tasks={row[0]: int(row[1]) for row in overdue_rows},
        outbox=int(backlog),
        outbox_oldest=oldest,
    )


async def ping(store: SQLAlchemyStore) -> None:
    """One round trip to the database (``SELECT 1``); raises when it cannot be made."""
    async with store._turn(), store.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
