"""SQLite: a commit is one transaction sent straight to the pooled aiosqlite connection
(public APIs only; ``flowstar.db._sqlite``), storing what SQLAlchemy's transaction stores, and
keeps the commit's guarantees: all or nothing, the version check, a broken connection thrown
away, writers in two pools serialized, and units of work on one shared ``:memory:``
connection taking turns."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import msgspec
import pytest
from sqlalchemy import event, insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn
from tests.integration.test_db_store import _registry, _scenario

from flowstar.db import PersistentExecutionEngine, SQLAlchemyStore, create_database_engine, metadata
from flowstar.db._rows import records
from flowstar.db._sqlite import compile_for_driver
from flowstar.model.enums import StepStatus
from flowstar.model.errors import StoreUnavailableError
from flowstar.model.state import CommitPlan, InstanceState, StepRecord

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _started(db_engine: AsyncEngine) -> InstanceState:
    """An instance waiting at its human step (committed through the fast path)."""
    engine = PersistentExecutionEngine(_registry(), engine=db_engine)
    try:
        started = await engine.start_workflow("human", {"n": 1})
    finally:
        await engine.close()
    state = await SQLAlchemyStore(db_engine, cache_states=False).load_instance(str(started.id))
    assert state is not None
    return state


def _record(state: InstanceState, record_id: str | None = None) -> StepRecord:
    return StepRecord(
        id=record_id or str(uuid.uuid4()),
        instance_id=state.id,
        step_name="extra",
        step_type="machine",
        status=StepStatus.SUCCEEDED,
        started_at=state.updated_at,
    )


def _next(state: InstanceState, *records: StepRecord, expected: int | None = None, **data: Any) -> CommitPlan:
    return CommitPlan(
        instance=msgspec.structs.replace(state, version=state.version + 1, data={**state.data, **data}),
        expected_version=state.version if expected is None else expected,
        new_records=list(records),
    )


async def _raw(db_engine: AsyncEngine, instance_id: str) -> list[Any]:
    """The stored rows of an instance, as SQLite holds them (no type conversion)."""
    key = uuid.UUID(instance_id).bytes
    out: list[Any] = []
    async with db_engine.connect() as conn:
        for columns, table, column in (
            ("*", "workflow_instances", "id"),
            ("*", "workflow_step_executions", "instance_id"),
            ("*", "workflow_human_tasks", "instance_id"),
            ("instance_id, payload, created_at", "workflow_outbox", "instance_id"),  # ids: a sequence
        ):
            result = await conn.exec_driver_sql(
                f"SELECT {columns} FROM {table} WHERE {column} = ? ORDER BY rowid",  # noqa: S608
                (key,),
            )
            out.append([tuple(row) for row in result])
    return out


def _canonical_raw(rows: list[Any]) -> list[Any]:
    """Raw rows with ids (16-byte blobs, or text inside JSON) replaced by labels of first
    sight, and the storage type of every value kept."""
    labels: dict[str, str] = {}

    def label(value: str) -> str:
        try:
            key = str(uuid.UUID(value))
        except ValueError:
            return value
        return labels.setdefault(key, f"id{len(labels)}")

    def canon(value: Any) -> Any:
        if isinstance(value, bytes) and len(value) == 16:
            return ("blob16", label(str(uuid.UUID(bytes=value))))
        if isinstance(value, str) and value[:1] in "{[":
            return ("json", canon_json(json.loads(value)))
        if isinstance(value, str):
            return label(value)
        if isinstance(value, bytes):
            return ("bytes", canon_json(msgspec.json.decode(value)))  # an outbox payload
        return value

    def canon_json(value: Any) -> Any:
        if isinstance(value, str):
            return label(value)
        if isinstance(value, dict):
            return {label(k): canon_json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [canon_json(v) for v in value]
        return value

    return [[[canon(v) for v in row] for row in table] for table in rows]


@sqlite_only
async def test_rows_are_stored_as_advanced_alchemys_types_store_them(db_engine: AsyncEngine) -> None:
    [human, *_others] = await _scenario(db_engine, one_statement=False)
    rows = await _raw(db_engine, human)
    assert all(rows), "the human workflow has rows in every table"
    # Ids are 16-byte blobs and times UTC text; JSON columns are JSON text.
    instance = rows[0][0]
    assert isinstance(instance[0], bytes)
    assert len(instance[0]) == 16
    assert any(isinstance(v, str) and v.startswith("2030-01-01 00:00:00") for v in instance)
    canonical = _canonical_raw(rows)
    assert any(isinstance(v, tuple) and v[0] == "json" for v in canonical[0][0])


@sqlite_only
async def test_the_driver_commit_stores_what_sqlalchemys_transaction_stores(db_engine: AsyncEngine) -> None:
    direct = await _scenario(db_engine, one_statement=False)
    through_sqlalchemy = await _scenario(db_engine, one_statement=False, through_aiosqlite=False)
    for mine, theirs in zip(direct, through_sqlalchemy, strict=True):
        assert _canonical_raw(await _raw(db_engine, mine)) == _canonical_raw(await _raw(db_engine, theirs))


@sqlite_only
async def test_a_commit_goes_to_the_driver_not_through_sqlalchemy(db_engine: AsyncEngine) -> None:
    state = await _started(db_engine)
    store = SQLAlchemyStore(db_engine, cache_states=False)
    executed: list[str] = []

    def seen(*args: Any) -> None:
        executed.append(args[2])  # the statement

    event.listen(db_engine.sync_engine, "before_cursor_execute", seen)
    try:
        assert await store.commit(_next(state, _record(state), extra=True)) is True
    finally:
        event.remove(db_engine.sync_engine, "before_cursor_execute", seen)
    assert executed == []
    loaded = await store.load_instance(state.id)
    assert loaded is not None
    assert loaded.data["extra"] is True


@sqlite_only
async def test_the_driver_load_reads_what_sqlalchemy_reads(db_engine: AsyncEngine) -> None:
    ids = await _scenario(db_engine, one_statement=False)
    direct = SQLAlchemyStore(db_engine, cache_states=False)
    through_sqlalchemy = SQLAlchemyStore(db_engine, cache_states=False)
    through_sqlalchemy._sqlite = None  # the load through SQLAlchemy's connection
    for instance_id in ids:
        state = await direct.load_instance(instance_id)
        assert state is not None
        assert state == await through_sqlalchemy.load_instance(instance_id)
    assert await direct.load_instance(str(uuid.uuid4())) is None


@sqlite_only
async def test_a_transaction_left_open_on_a_pooled_connection_is_not_committed_with_a_plan(
    db_engine: AsyncEngine,
) -> None:
    # A pool told not to reset connections on return (the default rolls back) could hand out
    # one inside a transaction: the commit must not carry what that transaction holds.
    state = await _started(db_engine)
    lax = create_database_engine(str(db_engine.url), pool_reset_on_return=None)
    try:
        fairy = await lax.raw_connection()
        driver = fairy.driver_connection
        assert driver is not None
        await driver.execute("DELETE FROM workflow_step_executions")  # sqlite3 begins; never committed
        assert driver.in_transaction
        await greenlet_spawn(fairy.close)
        assert await SQLAlchemyStore(lax, cache_states=False).commit(_next(state, _record(state))) is True
    finally:
        await lax.dispose()
    names = [r.step_name for r in await SQLAlchemyStore(db_engine).step_records(state.id)]
    assert "prepare" in names
    assert "extra" in names


@sqlite_only
def test_a_statement_needing_a_default_the_rows_lack_is_left_to_sqlalchemy(db_engine: AsyncEngine) -> None:
    dialect = db_engine.dialect
    complete = {c.name: None for c in records.columns}
    assert compile_for_driver(insert(records), dialect, list(complete)) is not None
    # ``started_at`` has a Python-side default: SQLAlchemy's execution would compute it.
    lacking = [name for name in complete if name != "started_at"]
    assert compile_for_driver(insert(records), dialect, lacking) is None


@sqlite_only
async def test_a_stale_plan_writes_nothing(db_engine: AsyncEngine) -> None:
    state = await _started(db_engine)
    store = SQLAlchemyStore(db_engine)
    before = await _raw(db_engine, state.id)
    assert await store.commit(_next(state, _record(state), expected=state.version - 1, stale=True)) is False
    assert await _raw(db_engine, state.id) == before
    # The connection went back to the pool outside any transaction: the next commit works.
    assert await store.commit(_next(state, _record(state))) is True


@sqlite_only
async def test_a_failing_statement_rolls_back_the_instance_update(db_engine: AsyncEngine) -> None:
    state = await _started(db_engine)
    [existing] = [r for r in await SQLAlchemyStore(db_engine).step_records(state.id) if r.step_name == "prepare"]
    store = SQLAlchemyStore(db_engine)
    before = await _raw(db_engine, state.id)
    # The instance UPDATE succeeds, the first record inserts, the second collides.
    with pytest.raises(IntegrityError) as raised:
        await store.commit(_next(state, _record(state), _record(state, existing.id), lost=True))
    assert type(raised.value.orig).__name__ == "IntegrityError"
    assert "INSERT INTO workflow_step_executions" in str(raised.value.statement)
    assert await _raw(db_engine, state.id) == before
    # A second pool (another process) can write at once: no transaction was left open.
    other = create_database_engine(str(db_engine.url))
    try:
        assert await SQLAlchemyStore(other).commit(_next(state, _record(state))) is True
    finally:
        await other.dispose()


@sqlite_only
async def test_creating_an_existing_instance_returns_false_and_writes_nothing(db_engine: AsyncEngine) -> None:
    state = await _started(db_engine)
    before = await _raw(db_engine, state.id)
    again = CommitPlan(instance=state, expected_version=0, new_records=[_record(state)])
    assert await SQLAlchemyStore(db_engine).commit(again) is False
    assert await _raw(db_engine, state.id) == before


async def _close_behind_the_pools_back(db_engine: AsyncEngine) -> None:
    """Close the pooled connection's aiosqlite connection without the pool knowing."""
    fairy = await db_engine.raw_connection()
    driver = fairy.driver_connection
    assert driver is not None
    await greenlet_spawn(fairy.close)
    await driver.close()


@sqlite_only
async def test_a_closed_connection_is_thrown_away(db_engine: AsyncEngine) -> None:
    state = await _started(db_engine)
    store = SQLAlchemyStore(db_engine, cache_states=False)
    await _close_behind_the_pools_back(db_engine)
    with pytest.raises(StoreUnavailableError, match="may or may not have been committed") as raised:
        await store.commit(_next(state, _record(state)))
    cause = raised.value.__cause__
    assert isinstance(cause, DBAPIError)
    assert cause.connection_invalidated
    # A load on such a connection likewise, and the one after it reads again.
    await _close_behind_the_pools_back(db_engine)
    with pytest.raises(StoreUnavailableError, match="could not load the instance") as load_failed:
        await store.load_instance(state.id)
    assert isinstance(load_failed.value.__cause__, DBAPIError)
    assert load_failed.value.__cause__.connection_invalidated
    # The pool opened a new connection; nothing was written.
    loaded = await store.load_instance(state.id)
    assert loaded == state
    assert await store.commit(_next(state, _record(state))) is True


@sqlite_only
async def test_two_pools_racing_on_one_version_commit_once(db_engine: AsyncEngine) -> None:
    """Two engines (as two processes would: a connection each) commit 40 plans built from the
    same version at once: BEGIN IMMEDIATE serializes them, the version check lets one win."""
    state = await _started(db_engine)
    other = create_database_engine(str(db_engine.url))
    try:
        stores = [SQLAlchemyStore(db_engine, cache_states=False), SQLAlchemyStore(other, cache_states=False)]
        plans = [_next(state, _record(state), winner=i) for i in range(40)]
        results = await asyncio.gather(*(stores[i % 2].commit(plan) for i, plan in enumerate(plans)))
    finally:
        await other.dispose()
    assert results.count(True) == 1
    loaded = await SQLAlchemyStore(db_engine).load_instance(state.id)
    assert loaded is not None
    assert (loaded.version, loaded.data["winner"]) == (state.version + 1, results.index(True))
    records = [r for r in await SQLAlchemyStore(db_engine).step_records(state.id) if r.step_name == "extra"]
    assert len(records) == 1


async def test_on_one_shared_connection_concurrent_commits_take_turns() -> None:
    """``:memory:`` databases share one connection (``StaticPool``): commits of 30 instances
    at once would run inside each other's transactions (one's rollback undoing another's
    writes); they take turns, and every one is kept whole."""
    engine = create_database_engine("sqlite+aiosqlite://")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        states = [await _started(engine) for _ in range(6)]
        store = SQLAlchemyStore(engine, cache_states=False)
        plans = [_next(s, _record(s), winner=i) for s in states for i in range(5)]
        results = await asyncio.gather(*(store.commit(plan) for plan in plans))
        assert results.count(True) == len(states)
        for n, state in enumerate(states):
            loaded = await store.load_instance(state.id)
            assert loaded is not None
            assert (loaded.version, loaded.data["winner"]) == (
                state.version + 1,
                results[5 * n : 5 * n + 5].index(True),
            )
            extra = [r for r in await store.step_records(state.id) if r.step_name == "extra"]
            assert len(extra) == 1
    finally:
        await engine.dispose()
