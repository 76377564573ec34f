"""``SQLAlchemyStore``: the state of record on PostgreSQL (asyncpg) or SQLite (aiosqlite).

Every unit of work opens its own connection from the engine's pool: sharing one session
between concurrent workflows (as the reference project does) corrupts its state.  A commit
writes the instance (guarded by ``lock_version``), the step records, tasks and, when enabled,
the outbox rows of its events atomically.  The rows come from one mapping,
``_plan.plan_rows``; they are sent

- on PostgreSQL as ONE statement (``_onestatement``) sent straight through an asyncpg
  connection outside any transaction (``_asyncpg``): one round trip, autocommitted; the
  connection is one of the engine's, kept between statements (``_leases``) instead of
  checked out of its pool per statement;
- on SQLite as one transaction with one statement (or ``executemany`` batch) per table,
  sent straight to the pooled aiosqlite connection (``_sqlite``);
- for the rare PostgreSQL plan one statement cannot express, and on other drivers, as the
  same transaction through SQLAlchemy.  The first statement writes the instance row, so on
  SQLite the transaction takes the write lock before it reads anything (no stale snapshot
  to fail on in WAL mode).

Reads on PostgreSQL run in autocommit mode too (no ``BEGIN``/``ROLLBACK`` around a
``SELECT``); loading an instance, the read on every activation's path, goes through asyncpg
directly like the commit.  Driver errors are translated by ``_errors`` at every entry point.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import bindparam, delete, func, insert, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import StaticPool

from flowstar.db import _onestatement, _queries
from flowstar.db._asyncpg import RawStatement
from flowstar.db._bulk import BulkLog
from flowstar.db._errors import translated, translating
from flowstar.db._leases import leases_for
from flowstar.db._plan import PlanRows, plan_rows
from flowstar.db._rows import (
    CANDIDATES_OF,
    audit_from_row,
    dispatch_at,
    record_from_row,
    state_from_row,
    task_from_row,
    tasks_with_candidates,
)
from flowstar.db._rows import DECODE_TOKENS as _TOKENS
from flowstar.db._rows import audit as _audit
from flowstar.db._rows import candidates as _candidates
from flowstar.db._rows import definitions as _definitions
from flowstar.db._rows import instances as _instances
from flowstar.db._rows import json_column as _json_column
from flowstar.db._rows import outbox as _outbox
from flowstar.db._rows import records as _records
from flowstar.db._rows import tasks as _tasks
from flowstar.db._rows import uuid_of as _uuid
from flowstar.db._signal_log import SignalLog
from flowstar.db._sqlite import SQLiteDriver, SQLiteQuery
from flowstar.engine.views import definition_uuid
from flowstar.model.definition import WorkflowDefinition
from flowstar.model.enums import ACTIVE_WORKFLOW_STATUSES, TaskStatus, WorkflowStatus
from flowstar.model.events import WorkflowEvent, decode_event
from flowstar.model.pages import InstanceQuery, TaskQuery
from flowstar.model.state import CommitPlan, HumanTask, InstanceState, StepRecord, TaskAuditEntry, Token

__all__ = ["SQLAlchemyStore", "dispatch_at", "record_from_row", "state_from_row", "task_from_row"]

_CACHE_SIZE = 10_000
# Finished instances: only until the call that finished them has returned their state.
_FINISHED_CACHE_SIZE = 256
# Built once: constructing a statement per call costs more CPU than running it on SQLite.
_LOAD_INSTANCE = select(_instances).where(_instances.c.id == bindparam("_id"))
_INSERT_RECORDS = insert(_records)
_INSERT_TASKS = insert(_tasks)
_INSERT_OUTBOX = insert(_outbox)
_INSERT_CANDIDATES = insert(_candidates)
_DELETE_CANDIDATES = delete(_candidates).where(_candidates.c.task_id.in_(bindparam("task_ids", expanding=True)))
_INSERT_AUDIT = insert(_audit)
_TASK_AUDIT = select(_audit).where(_audit.c.task_id == bindparam("_task_id")).order_by(_audit.c.at, _audit.c.id)
# UPDATEs without ``values()``: each sets the columns its rows name (besides ``_id``), so one
# statement serves every kind of task update; SQLAlchemy caches one compilation per set.
_UPDATE_INSTANCE = update(_instances).where(
    _instances.c.id == bindparam("_id"), _instances.c.lock_version == bindparam("_expected")
)
_UPDATE_RECORD = update(_records).where(_records.c.id == bindparam("_id"))
_UPDATE_TASK = update(_tasks).where(_tasks.c.id == bindparam("_id"))
_LOAD_TASK = select(_tasks).where(_tasks.c.id == bindparam("_id"))
_STEP_RECORDS = (
    select(_records)
    .where(_records.c.instance_id == bindparam("_instance_id"))
    .order_by(_records.c.started_at, _records.c.id)
)
_FIND_DEFINITION = select(_definitions.c.id).where(
    _definitions.c.name == bindparam("_name"), _definitions.c.version == bindparam("_version")
)


def _insert_ignoring_duplicates(dialect: str, table: Any, key: list[str] | None) -> Any:
    """An ``INSERT`` into ``table`` that writes nothing where ``key`` exists (any unique key
    when ``key`` is None): a lost race, not an error.

    A definition's row id is derived from its name and version, so two processes recording
    it at once collide on the primary key as well as on (name, version); PostgreSQL checks
    only the named arbiter, so definitions ignore a conflict on any key; so do instances,
    whose idempotency key is unique too.  On other
    databases a duplicate raises ``IntegrityError``.
    """
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=key)
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=key)
    return insert(table)


def _keyed(row: dict[str, Any]) -> dict[str, Any]:
    """An update row with its ``id`` as ``_id`` (an UPDATE's SET must not name it)."""
    params = dict(row)
    params["_id"] = params.pop("id")
    return params


def _grouped(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows batched by the columns they set (an ``executemany`` batch sets the same ones)."""
    batches: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        batches.setdefault(tuple(row), []).append(_keyed(row))
    return list(batches.values())


# A statement and its rows (parameter dicts), as the transactional commit writes them.
_Rows = tuple[Any, list[dict[str, Any]]]


def _children(rows: PlanRows) -> list[_Rows]:
    """The child writes of a plan: one statement (or executemany batch) per table and kind
    of change, in the order they run."""
    writes: list[_Rows] = []
    if rows.records:
        writes.append((_INSERT_RECORDS, rows.records))
    if rows.record_updates:
        writes.append((_UPDATE_RECORD, [_keyed(row) for row in rows.record_updates]))
    if rows.tasks:
        writes.append((_INSERT_TASKS, rows.tasks))
    writes.extend((_UPDATE_TASK, batch) for batch in _grouped(rows.task_updates))
    if rows.candidate_resets:
        writes.append((_DELETE_CANDIDATES, [{"task_ids": rows.candidate_resets}]))
    if rows.candidates:
        writes.append((_INSERT_CANDIDATES, rows.candidates))
    if rows.audit:
        writes.append((_INSERT_AUDIT, rows.audit))
    if rows.outbox:
        writes.append((_INSERT_OUTBOX, rows.outbox))
    return writes


class _NoTurns:
    """The turn of a unit of work on a pool of its own connections: nothing to wait for."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_exc: object) -> None:
        return None


_NO_TURNS = _NoTurns()
_SHARED: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


def _shared_lock(engine: AsyncEngine) -> asyncio.Lock | None:
    """The lock that makes a one-connection engine's units of work take turns, or None."""
    if not isinstance(engine.sync_engine.pool, StaticPool):
        return None
    return _SHARED.setdefault(engine.sync_engine, asyncio.Lock())


class SQLAlchemyStore(SignalLog, BulkLog):
    """A ``Store`` on an SQLAlchemy ``AsyncEngine``.

    Args:
        engine: the async engine (``postgresql+asyncpg://`` or ``sqlite+aiosqlite://``).
        outbox: also write each commit's events to ``workflow_outbox`` in the same
            transaction, for a relay to publish (needed when events leave the process).
        owns_engine: dispose of the engine on ``close()`` (when the store created it).
        cache_states: remember the states this store committed, so that a call returns the
            state it committed last without reading it back.  The engine reads the database
            (``forget`` first) wherever another process's commits matter; a stale entry can
            never be written back: the version check refuses the commit, and the entry is
            dropped.
        one_statement: on PostgreSQL, commit each plan as one statement in autocommit mode
            (the default); False forces the transactional path (for comparison and tests).
        pool_recycle: the engine's ``pool_recycle`` in seconds, if you set it below five
            minutes: the connections the store keeps between statements then go back to
            the pool at least that often, so that the pool recycles them.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        outbox: bool = False,
        cache_states: bool = True,
        owns_engine: bool = False,
        one_statement: bool | None = None,
        pool_recycle: float | None = None,
    ) -> None:
        self.engine = engine
        self.owns_engine = owns_engine
        self.outbox = outbox
        self.cache_states = cache_states
        self._cache: OrderedDict[str, InstanceState] = OrderedDict()
        self._finished: OrderedDict[str, InstanceState] = OrderedDict()
        self._definition_ids: dict[tuple[str, str], UUID] = {}
        dialect = engine.dialect.name
        self._postgres = dialect == "postgresql"
        self.one_statement = self._postgres if one_statement is None else one_statement and self._postgres
        # Any unique key: the id, or the idempotency key of a start made before.
        self._insert_instance = _insert_ignoring_duplicates(dialect, _instances, None)
        self._insert_definition = _insert_ignoring_duplicates(dialect, _definitions, None)
        # Same pool; connections checked out through it skip BEGIN/COMMIT (asyncpg sets the
        # mode client-side, so switching costs no round trip).
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT") if self._postgres else engine
        # The hot statements skip SQLAlchemy's execution layer with asyncpg (another
        # PostgreSQL driver gets the same statements through SQLAlchemy).
        self._asyncpg = self._postgres and engine.dialect.driver == "asyncpg"
        if self._asyncpg:
            self._leases = leases_for(engine, pool_recycle=pool_recycle)
            self._raw_commits: dict[tuple[bool, _onestatement.Parts], RawStatement] = {}
            self._raw_load = RawStatement(_LOAD_INSTANCE, engine.dialect)
        # On SQLite the commit's transaction goes straight to the aiosqlite connection.
        self._sqlite = SQLiteDriver(engine) if dialect == "sqlite" and engine.dialect.driver == "aiosqlite" else None
        if self._sqlite is not None:
            self._sqlite_load = SQLiteQuery(_LOAD_INSTANCE, engine.dialect, ["_id"])
        # One shared connection (``StaticPool``, a ``:memory:`` database): units of work on
        # it would interleave inside each other's transactions, so they take turns.
        self._shared = _shared_lock(engine)

    # -- definitions --------------------------------------------------------------------

    @translating("record the workflow definition", write=True)
    async def ensure_definition(self, definition: WorkflowDefinition) -> None:
        """Record the definition version (name, version, description, graph) once."""
        key = (definition.name, definition.version)
        if key in self._definition_ids:
            return
        names = {"_name": definition.name, "_version": definition.version}
        async with self._turn(), self.engine.begin() as conn:
            found = await conn.scalar(_FIND_DEFINITION, names)
            if found is None:
                found = await self._add_definition(conn, definition)
        self._definition_ids[key] = UUID(str(found))

    async def _add_definition(self, conn: AsyncConnection, definition: WorkflowDefinition) -> Any:
        row = {
            # The id every engine shows as the context's ``workflow_id``.
            "id": definition_uuid(definition.name, definition.version),
            "name": definition.name,
            "version": definition.version,
            "description": definition.description or None,
            "definition_json": definition.describe(),
            "is_active": True,
        }
        await conn.execute(self._insert_definition, row)
        # Written by this call, or by another process at the same moment (then nothing here).
        return await conn.scalar(_FIND_DEFINITION, {"_name": definition.name, "_version": definition.version})

    # -- the write path -----------------------------------------------------------------

    @translating("load the instance")
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
        if self._sqlite is not None:
            async with self._turn():
                found = await self._sqlite.fetch_one(self._sqlite_load, {"_id": key})
            return state_from_row(found) if found is not None else None
        async with self._turn(), self._autocommit.connect() as conn:
            row = (await conn.execute(_LOAD_INSTANCE, {"_id": key})).first()
        return state_from_row(row) if row is not None else None

    @translating("look up the idempotency key")
    async def instance_for_key(self, idempotency_key: str) -> str | None:
        """The id of the instance started with this idempotency key, if any."""
        query = select(_instances.c.id).where(_instances.c.idempotency_key == idempotency_key)
        async with self._turn(), self._autocommit.connect() as conn:
            found = (await conn.execute(query)).scalar_one_or_none()
        return str(found) if found is not None else None

    async def commit(self, plan: CommitPlan) -> bool:
        """Apply ``plan`` atomically if the version still matches.

        Raises:
            ContextSerializationError: the database refused a value the plan carries
                (nothing was written).
            StoreUnavailableError: the database could not be reached or did not answer in
                time; the plan may or may not have been committed.
        """
        state = plan.instance
        try:
            with translated("commit the instance's change", write=True):
                rows = plan_rows(
                    plan,
                    definition_id=self._definition_ids.get((state.workflow_name, state.workflow_version)),
                    outbox=self.outbox,
                )
                if self.one_statement and _onestatement.eligible(rows):
                    written = await self._commit_one_statement(rows)
                else:
                    written = await self._commit_transaction(rows)
        except BaseException:
            # Whatever happened, the cached state may no longer be the committed one.
            self.forget(state.id)
            raise
        if not written:
            self.forget(state.id)
            return False
        self._remember(state)
        return True

    async def _commit_one_statement(self, rows: PlanRows) -> bool:
        params = _onestatement.parameters(rows)
        key = (rows.created, _onestatement.parts_of(rows))
        if self._asyncpg:
            raw = self._raw_commits.get(key)
            if raw is None:
                raw = self._raw_commits[key] = RawStatement(_onestatement.statement(*key), self.engine.dialect)
            written = await raw.fetchval(self._leases, params)
        else:
            async with self._autocommit.connect() as conn:
                written = (await conn.execute(_onestatement.statement(*key), params)).scalar_one()
        return bool(written == 1)

    async def _commit_transaction(self, rows: PlanRows) -> bool:
        if rows.created:
            statement, params = self._insert_instance, rows.instance
        else:
            statement, params = _UPDATE_INSTANCE, {**_keyed(rows.instance), "_expected": rows.expected_version}
        children = _children(rows)
        async with self._turn():
            if self._sqlite is not None:
                prepared = self._sqlite.prepare([(statement, [params]), *children])
                if prepared is not None:
                    return await self._sqlite.commit(prepared)
            async with self.engine.begin() as conn:
                if (await conn.execute(statement, params)).rowcount != 1:
                    return False  # a stale version, or created already: nothing was written
                for child, batch in children:
                    await conn.execute(child, batch)
        return True

    def _turn(self) -> asyncio.Lock | _NoTurns:
        return _NO_TURNS if self._shared is None else self._shared

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

    @translating("read the outbox")
    async def take_outbox(self, limit: int = 500) -> list[tuple[int, WorkflowEvent]]:
        """The oldest unpublished events, with their outbox ids."""
        async with self._turn(), self._autocommit.connect() as conn:
            rows = (
                await conn.execute(select(_outbox.c.id, _outbox.c.payload).order_by(_outbox.c.id).limit(limit))
            ).all()
        return [(row.id, decode_event(row.payload)) for row in rows]

    @translating("delete published outbox rows", write=True)
    async def delete_outbox(self, ids: Sequence[int]) -> None:
        """Forget published events."""
        if not ids:
            return
        async with self._turn(), self.engine.begin() as conn:
            await conn.execute(
                delete(_outbox).where(_outbox.c.id.in_(bindparam("ids", expanding=True))), {"ids": list(ids)}
            )

    # -- queries ------------------------------------------------------------------------

    @translating("read the task")
    async def get_task(self, task_id: str) -> HumanTask | None:
        """One task by id."""
        try:
            key = _uuid(task_id)
        except ValueError:
            return None
        async with self._turn(), self._autocommit.connect() as conn:
            row = (await conn.execute(_LOAD_TASK, {"_id": key})).first()
            return (await self._tasks_of(conn, [row]))[0] if row is not None else None

    @staticmethod
    async def _tasks_of(conn: AsyncConnection, rows: Sequence[Any]) -> list[HumanTask]:
        """Tasks from their rows, with their candidates (one more query, for all of them)."""
        if not rows:
            return []
        candidates = (await conn.execute(CANDIDATES_OF, {"task_ids": [r.id for r in rows]})).all()
        return tasks_with_candidates(rows, candidates)

    @translating("read the task's audit trail")
    async def task_audit(self, task_id: str) -> list[TaskAuditEntry]:
        """The task's audit trail, oldest first."""
        async with self._turn(), self._autocommit.connect() as conn:
            rows = (await conn.execute(_TASK_AUDIT, {"_task_id": _uuid(task_id)})).all()
        return [audit_from_row(r) for r in rows]

    @translating("find tasks")
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
        async with self._turn(), self._autocommit.connect() as conn:
            rows = (await conn.execute(query)).all()
            return await self._tasks_of(conn, rows)

    @translating("read the step records")
    async def step_records(self, instance_id: str) -> list[StepRecord]:
        """Every step execution of an instance, in start order."""
        async with self._turn(), self._autocommit.connect() as conn:
            rows = (await conn.execute(_STEP_RECORDS, {"_instance_id": _uuid(instance_id)})).all()
        return [record_from_row(r) for r in rows]

    @translating("find instances")
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
        async with self._turn(), self._autocommit.connect() as conn:
            rows = (await conn.execute(page)).all()
            total = await conn.scalar(count)
        return [state_from_row(r) for r in rows], int(total or 0)

    @translating("count instances")
    async def active_versions(self, tenant_id: str | None = None) -> dict[tuple[str, str], int]:
        """How many instances are running or waiting, by ``(workflow name, version)``."""
        name, version = _instances.c.workflow_name, _instances.c.workflow_version
        active = _instances.c.status.in_([s.value for s in ACTIVE_WORKFLOW_STATUSES])
        tenant = _instances.c.tenant_id == tenant_id if tenant_id is not None else true()
        query = select(name, version, func.count()).where(active, tenant).group_by(name, version)
        async with self._turn(), self._autocommit.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {(row[0], row[1]): int(row[2]) for row in rows}

    @translating("find tasks")
    async def find_task_page(self, query: TaskQuery) -> list[HumanTask]:
        """Up to ``query.limit + 1`` tasks after the query's key, oldest first by ``(created_at, id)``."""
        async with self._turn(), self._autocommit.connect() as conn:
            rows = (await conn.execute(_queries.task_page(query))).all()
            return await self._tasks_of(conn, rows)

    @translating("find instances")
    async def find_instance_page(self, query: InstanceQuery) -> list[InstanceState]:
        """Up to ``query.limit + 1`` instances after the query's key, newest first by ``(started_at, id)``."""
        async with self._turn(), self._autocommit.connect() as conn:
            rows = (await conn.execute(_queries.instance_page(query))).all()
        return [state_from_row(r) for r in rows]

    @translating("find pending activations")
    async def pending_tokens(self, due_before: datetime | None = None) -> list[tuple[str, Token]]:
        """Dispatchable tokens of active instances (due before ``due_before``, if given)."""
        query = select(_instances.c.id, _instances.c.tokens).where(
            _instances.c.dispatch_at.is_not(None),
            _instances.c.status.in_([s.value for s in ACTIVE_WORKFLOW_STATUSES]),
        )
        if due_before is not None:
            query = query.where(_instances.c.dispatch_at <= due_before)
        async with self._turn(), self._autocommit.connect() as conn:
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

    @translating("release its connections")
    async def close(self) -> None:
        """Give the kept connections back to the pool; dispose of the engine if the store made it.

        The kept connections are the engine's, shared by its stores (``_leases``): returning
        the idle ones costs another store at most a checkout.
        """
        if self._asyncpg:
            await self._leases.release_idle()
        if self.owns_engine:
            await self.engine.dispose()
