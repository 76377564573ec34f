"""``SQLAlchemyStore``: the state of record on PostgreSQL (asyncpg) or SQLite (aiosqlite).

Every unit of work opens its own connection from the engine's pool: sharing one session
between concurrent workflows (as the reference project does) corrupts its state.  A commit
writes the instance (guarded by ``lock_version``), the step records, tasks and, when enabled,
the outbox rows of its events atomically:

- on PostgreSQL as ONE statement (``_onestatement``) sent straight through an asyncpg
  connection outside any transaction (``_asyncpg``): one round trip, autocommitted; the
  connection is one of the engine's, kept between statements (``_leases``) instead of
  checked out of its pool per statement;
- on SQLite (aiosqlite) as one transaction run by ONE call into aiosqlite's worker thread
  (``_aiosqlite``): ``BEGIN IMMEDIATE``, one statement (or ``executemany`` batch) per table,
  the version check and ``COMMIT``, all inside that thread;
- for the rare PostgreSQL plan one statement cannot express (and other drivers), as one
  SQLAlchemy transaction with one statement (or ``executemany`` batch) per table.

Reads on PostgreSQL run in autocommit mode too (no ``BEGIN``/``ROLLBACK`` around a
``SELECT``); loading an instance, the read on every activation's path, goes through asyncpg
directly like the commit, and on SQLite it is one call into aiosqlite's thread.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import msgspec
from sqlalchemy import Insert, Update, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from flowstar.db import _aiosqlite, _onestatement
from flowstar.db._asyncpg import RawStatement
from flowstar.db._leases import leases_for
from flowstar.db._rows import DECODE_TOKENS as _TOKENS
from flowstar.db._rows import definitions as _definitions
from flowstar.db._rows import dispatch_at, record_from_row, state_from_row, task_from_row
from flowstar.db._rows import instance_values as _instance_values
from flowstar.db._rows import instances as _instances
from flowstar.db._rows import json_column as _json_column
from flowstar.db._rows import outbox as _outbox
from flowstar.db._rows import record_row as _record_row
from flowstar.db._rows import records as _records
from flowstar.db._rows import task_row as _task_row
from flowstar.db._rows import tasks as _tasks
from flowstar.db._rows import uuid_of as _uuid
from flowstar.model.definition import WorkflowDefinition
from flowstar.model.enums import ACTIVE_WORKFLOW_STATUSES, TaskStatus, WorkflowStatus
from flowstar.model.errors import ContextSerializationError
from flowstar.model.events import WorkflowEvent, decode_event, encode_event
from flowstar.model.state import CommitPlan, HumanTask, InstanceState, StepRecord, Token

__all__ = ["SQLAlchemyStore", "dispatch_at", "record_from_row", "state_from_row", "task_from_row"]

_CACHE_SIZE = 10_000
# Finished instances: only until the call that finished them has returned their state.
_FINISHED_CACHE_SIZE = 256
# Built once: constructing a statement per call costs more CPU than running it on SQLite.
_LOAD_INSTANCE = select(_instances).where(_instances.c.id == bindparam("_id"))
_INSERT_INSTANCE = insert(_instances)
_INSERT_RECORDS = insert(_records)
_INSERT_TASKS = insert(_tasks)
_INSERT_OUTBOX = insert(_outbox)
_UPDATE_INSTANCE = (
    update(_instances)
    .where(_instances.c.id == bindparam("_id"), _instances.c.lock_version == bindparam("_expected"))
    .values({column: bindparam(f"_{column}") for column in _onestatement.STATE_COLUMNS})
)
_UPDATE_RECORD = (
    update(_records)
    .where(_records.c.id == bindparam("_id"))
    .values(
        {
            column: bindparam(f"_{column}")
            for column in ("status", "completed_at", "output_data", "error", "completed_by")
        }
    )
)
_LOAD_TASK = select(_tasks).where(_tasks.c.id == bindparam("_id"))
_STEP_RECORDS = (
    select(_records)
    .where(_records.c.instance_id == bindparam("_instance_id"))
    .order_by(_records.c.started_at, _records.c.id)
)


@functools.cache
def _update_task(columns: tuple[str, ...]) -> Update:
    """``UPDATE workflow_human_tasks`` setting ``columns`` (one statement per kind of change)."""
    return update(_tasks).where(_tasks.c.id == bindparam("_id")).values({c: bindparam(f"_{c}") for c in columns})


def _refused_data(exc: DBAPIError) -> bool:
    """Whether the database refused a value (SQLSTATE class 22, "data exception").

    asyncpg's adapter reports some of those (``UntranslatableCharacterError``) as a plain
    ``DBAPIError``, so the SQLSTATE decides.
    """
    if isinstance(exc, DataError):
        return True
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return isinstance(code, str) and code.startswith("22")


# A statement and its rows (parameter dicts), as the commit writes them.
_Rows = tuple[Insert | Update, list[dict[str, Any]]]


class _Conflict(Exception):
    """Raised inside a transaction to roll it back when the version check fails."""


class SQLAlchemyStore:
    """A ``Store`` on an SQLAlchemy ``AsyncEngine``.

    Args:
        engine: the async engine (``postgresql+asyncpg://`` or ``sqlite+aiosqlite://``).
        outbox: also write each commit's events to ``workflow_outbox`` in the same
            transaction, for a relay to publish (needed when events leave the process).
        owns_engine: dispose of the engine on ``close()`` (when the store created it).
        cache_states: remember the states this store committed, so the next activation of
            the same instance in this process skips its SELECT.  A stale entry is harmless:
            the version check refuses the commit, and the entry is dropped.
        one_statement: on PostgreSQL, commit each plan as one statement in autocommit mode
            (the default); False forces the transactional path (for comparison and tests).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        outbox: bool = False,
        cache_states: bool = True,
        owns_engine: bool = False,
        one_statement: bool | None = None,
    ) -> None:
        self.engine = engine
        self.owns_engine = owns_engine
        self.outbox = outbox
        self.cache_states = cache_states
        self._cache: OrderedDict[str, InstanceState] = OrderedDict()
        self._finished: OrderedDict[str, InstanceState] = OrderedDict()
        self._definition_ids: dict[tuple[str, str], UUID] = {}
        self._postgres = engine.dialect.name == "postgresql"
        self.one_statement = self._postgres if one_statement is None else one_statement and self._postgres
        # Same pool; connections checked out through it skip BEGIN/COMMIT (asyncpg sets the
        # mode client-side, so switching costs no round trip).
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT") if self._postgres else engine
        # The hot statements skip SQLAlchemy's execution layer with asyncpg (another
        # PostgreSQL driver gets the same statements through SQLAlchemy).
        self._asyncpg = self._postgres and engine.dialect.driver == "asyncpg"
        if self._asyncpg:
            self._leases = leases_for(engine)
            self._raw_commits: dict[tuple[bool, _onestatement.Parts], RawStatement] = {}
            self._raw_load = RawStatement(_LOAD_INSTANCE, engine.dialect)
        # On SQLite the commit and the instance load are one hop into aiosqlite's thread each.
        self._aiosqlite = engine.dialect.name == "sqlite" and engine.dialect.driver == "aiosqlite"
        self._aiosqlite = self._aiosqlite and _aiosqlite.supported()
        self._sqlite = _aiosqlite.SqliteRunner(engine)

    # -- definitions --------------------------------------------------------------------

    async def ensure_definition(self, definition: WorkflowDefinition) -> None:
        """Record the definition version (name, version, description, graph) once."""
        key = (definition.name, definition.version)
        if key in self._definition_ids:
            return
        async with self.engine.begin() as conn:
            found = await conn.scalar(
                select(_definitions.c.id).where(
                    _definitions.c.name == definition.name, _definitions.c.version == definition.version
                )
            )
            if found is None:
                found = await self._insert_definition(conn, definition)
        self._definition_ids[key] = found

    async def _insert_definition(self, conn: AsyncConnection, definition: WorkflowDefinition) -> UUID:
        new = uuid4()
        try:
            async with conn.begin_nested():
                await conn.execute(
                    insert(_definitions).values(
                        id=new,
                        name=definition.name,
                        version=definition.version,
                        description=definition.description or None,
                        definition_json=definition.describe(),
                        is_active=True,
                    )
                )
        except IntegrityError:
            # Another process registered it at the same moment.
            existing = await conn.scalar(
                select(_definitions.c.id).where(
                    _definitions.c.name == definition.name, _definitions.c.version == definition.version
                )
            )
            assert existing is not None
            return UUID(str(existing))
        return new

    # -- the write path -----------------------------------------------------------------

    async def load_instance(self, instance_id: str) -> InstanceState | None:
        """The committed state (from this process's cache when it committed it last)."""
        cached = self._cache.get(instance_id)
        if cached is None:
            cached = self._finished.get(instance_id)
        if cached is not None:
            return cached
        key = _uuid(instance_id)
        if self._asyncpg:
            record = await self._raw_load.fetchrow(self._leases, {"_id": key})
            return state_from_row(record) if record is not None else None
        if self._aiosqlite:
            found = await self._sqlite.fetch_one(_LOAD_INSTANCE, {"_id": key})
            return state_from_row(found) if found is not None else None
        async with self._autocommit.connect() as conn:
            row = (await conn.execute(_LOAD_INSTANCE, {"_id": key})).first()
        return state_from_row(row) if row is not None else None

    async def commit(self, plan: CommitPlan) -> bool:
        """Apply ``plan`` atomically if the version still matches."""
        state = plan.instance
        try:
            if self.one_statement and _onestatement.eligible(plan):
                await self._commit_one_statement(plan)
                self._remember(state)
                return True
            statement, row = self._instance_write(plan)
            if self._aiosqlite:
                writes = [self._sqlite.write(statement, [row], guarded=not plan.created)]
                writes += [self._sqlite.write(child, rows) for child, rows in self._children(plan)]
                if not await self._sqlite.transaction(writes):
                    raise _Conflict
            else:
                async with self.engine.begin() as conn:
                    result = await conn.execute(statement, row)
                    if not plan.created and result.rowcount != 1:
                        raise _Conflict
                    for child, rows in self._children(plan):
                        await conn.execute(child, rows)
        except _Conflict:
            self.forget(state.id)
            return False
        except IntegrityError:
            self.forget(state.id)
            if plan.created:
                return False
            raise
        except DBAPIError as exc:
            self.forget(state.id)
            if not _refused_data(exc):
                raise
            # The database cannot hold a value the plan carries (PostgreSQL refuses a NUL
            # character in JSON and text); nothing was written.
            raise ContextSerializationError(f"the database refused a value: {exc.orig}") from exc
        self._remember(state)
        return True

    async def _commit_one_statement(self, plan: CommitPlan) -> None:
        definition_id = self._definition_ids.get((plan.instance.workflow_name, plan.instance.workflow_version))
        params = _onestatement.parameters(plan, definition_id=definition_id, outbox=self.outbox)
        key = (plan.created, _onestatement.parts_of(plan, outbox=self.outbox))
        if self._asyncpg:
            raw = self._raw_commits.get(key)
            if raw is None:
                raw = self._raw_commits[key] = RawStatement(_onestatement.statement(*key), self.engine.dialect)
            written = await raw.fetchval(self._leases, params)
        else:
            async with self._autocommit.connect() as conn:
                written = (await conn.execute(_onestatement.statement(*key), params)).scalar_one()
        if written != 1:
            raise _Conflict

    def _instance_write(self, plan: CommitPlan) -> tuple[Insert | Update, dict[str, Any]]:
        """The instance's INSERT, or its UPDATE guarded by the expected version."""
        state = plan.instance
        if plan.created:
            return _INSERT_INSTANCE, self._new_instance_row(state)
        values = {f"_{column}": value for column, value in _instance_values(state).items()}
        return _UPDATE_INSTANCE, {"_id": _uuid(state.id), "_expected": plan.expected_version, **values}

    def _new_instance_row(self, state: InstanceState) -> dict[str, Any]:
        row = _instance_values(state)
        row.update(
            id=_uuid(state.id),
            definition_id=self._definition_ids.get((state.workflow_name, state.workflow_version)),
            workflow_name=state.workflow_name,
            workflow_version=state.workflow_version,
            metadata=state.metadata,
            started_at=state.started_at,
            tenant_id=state.tenant_id,
            created_by=state.created_by,
            created_at=state.started_at,
        )
        return row

    def _children(self, plan: CommitPlan) -> list[_Rows]:
        """The child writes of ``plan``: one statement (or executemany batch) per table and
        kind of change, in the order they run."""
        writes: list[_Rows] = []
        if plan.new_records:
            writes.append((_INSERT_RECORDS, [_record_row(r) for r in plan.new_records]))
        if plan.record_updates:
            writes.append(
                (
                    _UPDATE_RECORD,
                    [
                        {
                            "_id": _uuid(change.id),
                            "_status": change.status.value,
                            "_completed_at": change.completed_at,
                            "_output_data": change.output_data,
                            "_error": change.error,
                            "_completed_by": change.completed_by,
                        }
                        for change in plan.record_updates
                    ],
                )
            )
        if plan.new_tasks:
            writes.append((_INSERT_TASKS, [_task_row(t) for t in plan.new_tasks]))
        batches: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for task_change in plan.task_updates:
            values: dict[str, Any]
            if task_change.reassign:
                values = {"assignee_id": task_change.assignee_id, "assignee_group": task_change.assignee_group}
            else:
                values = {
                    "status": task_change.status.value if task_change.status else None,
                    "completed_at": task_change.completed_at,
                    "completed_by": task_change.completed_by,
                    "data": task_change.data,
                }
                values = {k: v for k, v in values.items() if v is not None}
            values["updated_at"] = plan.instance.updated_at
            batches.setdefault(tuple(sorted(values)), []).append(
                {"_id": _uuid(task_change.id), **{f"_{k}": v for k, v in values.items()}}
            )
        writes.extend((_update_task(columns), rows) for columns, rows in batches.items())
        if self.outbox and plan.events:
            writes.append(
                (
                    _INSERT_OUTBOX,
                    [
                        {"instance_id": _uuid(plan.instance.id), "payload": encode_event(e), "created_at": e.timestamp}
                        for e in plan.events
                    ],
                )
            )
        return writes

    def _remember(self, state: InstanceState) -> None:
        if not self.cache_states:
            return
        if state.status in ACTIVE_WORKFLOW_STATUSES:
            self._finished.pop(state.id, None)
            cache, limit = self._cache, _CACHE_SIZE
        else:
            # Finished states are kept only briefly, in a small cache of their own: the engine
            # returns the state it committed last to the caller that drove the instance
            # without reading it back, and a finished state is not needed after that.
            self.forget(state.id)
            cache, limit = self._finished, _FINISHED_CACHE_SIZE
        cache[state.id] = state
        cache.move_to_end(state.id)
        if len(cache) > limit:
            cache.popitem(last=False)

    def forget(self, instance_id: str | None = None) -> None:
        """Drop cached states (one, or all): the next load reads the database."""
        if instance_id is None:
            self._cache.clear()
            self._finished.clear()
        else:
            self._cache.pop(instance_id, None)
            self._finished.pop(instance_id, None)

    # -- outbox -------------------------------------------------------------------------

    async def take_outbox(self, limit: int = 500) -> list[tuple[int, WorkflowEvent]]:
        """The oldest unpublished events, with their outbox ids."""
        async with self._autocommit.connect() as conn:
            rows = (
                await conn.execute(select(_outbox.c.id, _outbox.c.payload).order_by(_outbox.c.id).limit(limit))
            ).all()
        return [(row.id, decode_event(row.payload)) for row in rows]

    async def delete_outbox(self, ids: Sequence[int]) -> None:
        """Forget published events."""
        if not ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(_outbox).where(_outbox.c.id.in_(bindparam("ids", expanding=True))), {"ids": list(ids)}
            )

    # -- queries ------------------------------------------------------------------------

    async def get_task(self, task_id: str) -> HumanTask | None:
        """One task by id."""
        try:
            key = _uuid(task_id)
        except ValueError:
            return None
        async with self._autocommit.connect() as conn:
            row = (await conn.execute(_LOAD_TASK, {"_id": key})).first()
        return task_from_row(row) if row is not None else None

    async def find_tasks(
        self,
        *,
        instance_id: str | None = None,
        step_name: str | None = None,
        status: TaskStatus | None = None,
        assignee_id: str | None = None,
        assignee_group: str | None = None,
        tenant_id: str | None = None,
    ) -> list[HumanTask]:
        """Tasks matching every given filter, oldest first."""
        query = select(_tasks).order_by(_tasks.c.created_at, _tasks.c.id)
        if instance_id is not None:
            query = query.where(_tasks.c.instance_id == _uuid(instance_id))
        if step_name is not None:
            query = query.where(_tasks.c.step_name == step_name)
        if status is not None:
            query = query.where(_tasks.c.status == status.value)
        if assignee_id is not None:
            query = query.where(_tasks.c.assignee_id == assignee_id)
        if assignee_group is not None:
            query = query.where(_tasks.c.assignee_group == assignee_group)
        if tenant_id is not None:
            query = query.where(_tasks.c.tenant_id == tenant_id)
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [task_from_row(r) for r in rows]

    async def step_records(self, instance_id: str) -> list[StepRecord]:
        """Every step execution of an instance, in start order."""
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(_STEP_RECORDS, {"_instance_id": _uuid(instance_id)})).all()
        return [record_from_row(r) for r in rows]

    async def find_instances(
        self,
        *,
        workflow_name: str | None = None,
        status: WorkflowStatus | Sequence[WorkflowStatus] | None = None,
        tenant_id: str | None = None,
        created_by: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[InstanceState], int]:
        """A page of instances (newest first) and the total count."""
        conditions = []
        if workflow_name is not None:
            conditions.append(_instances.c.workflow_name == workflow_name)
        if status is not None:
            statuses = [status] if isinstance(status, WorkflowStatus) else list(status)
            conditions.append(_instances.c.status.in_([s.value for s in statuses]))
        if tenant_id is not None:
            conditions.append(_instances.c.tenant_id == tenant_id)
        if created_by is not None:
            conditions.append(_instances.c.created_by == created_by)
        page = (
            select(_instances)
            .where(*conditions)
            .order_by(_instances.c.started_at.desc(), _instances.c.id)
            .limit(limit)
            .offset(offset)
        )
        count = select(func.count()).select_from(_instances).where(*conditions)
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(page)).all()
            total = await conn.scalar(count)
        return [state_from_row(r) for r in rows], int(total or 0)

    async def pending_tokens(self, due_before: datetime | None = None) -> list[tuple[str, Token]]:
        """Dispatchable tokens of active instances (due before ``due_before``, if given)."""
        query = select(_instances.c.id, _instances.c.tokens).where(
            _instances.c.dispatch_at.is_not(None),
            _instances.c.status.in_([s.value for s in ACTIVE_WORKFLOW_STATUSES]),
        )
        if due_before is not None:
            query = query.where(_instances.c.dispatch_at <= due_before)
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(query)).all()
        found: list[tuple[str, Token]] = []
        for row in rows:
            tokens = _TOKENS.decode(msgspec.json.encode(_json_column(row.tokens) or {}))
            found.extend((str(row.id), t) for t in tokens.values() if t.dispatchable)
        return found

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> SQLAlchemyStore:
        """A store on a new engine for ``url`` (see ``create_database_engine``)."""
        from flowstar.db.connect import create_database_engine

        return cls(create_database_engine(url), owns_engine=True, **kwargs)

    async def close(self) -> None:
        """Give the kept connections back to the pool; dispose of the engine if the store made it.

        The kept connections are the engine's, shared by its stores (``_leases``): returning
        the idle ones costs another store at most a checkout.
        """
        if self._asyncpg:
            await self._leases.release_idle()
        if self.owns_engine:
            await self.engine.dispose()
