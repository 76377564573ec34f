"""SQLite: a commit (and the load of an instance) is one call into aiosqlite's worker thread,
stores exactly what the SQLAlchemy transaction stores, and keeps the commit's guarantees:
all or nothing, the version check, a broken connection thrown away, writers in two pools
serialized."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn
from tests.integration.test_db_store import _registry, _scenario

from flowstar.db import PersistentExecutionEngine, SQLAlchemyStore, create_database_engine, metadata
from flowstar.db._rows import definitions
from flowstar.model.enums import StepStatus
from flowstar.model.state import CommitPlan, InstanceState, StepRecord

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every function sent to an aiosqlite worker thread (the one way in)."""
    from aiosqlite.core import Connection

    seen: list[str] = []
    original = Connection._execute

    async def counted(self: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(Connection, "_execute", counted)
    return seen


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
async def test_the_direct_commit_stores_what_the_sqlalchemy_transaction_stores(db_engine: AsyncEngine) -> None:
    direct = await _scenario(db_engine, one_statement=False)
    through_sqlalchemy = await _scenario(db_engine, one_statement=False, direct_sqlite=False)
    for n, (fast_id, slow_id) in enumerate(zip(direct, through_sqlalchemy, strict=True)):
        fast, slow = await _raw(db_engine, fast_id), await _raw(db_engine, slow_id)
        if n == 0:
            assert all(fast), "the human workflow has rows in every table"
        # definition_id differs (each scenario's store registers it once; same row).
        assert _canonical_raw(fast) == _canonical_raw(slow)
        # Ids are 16-byte blobs and times UTC text, as advanced-alchemy's types store them.
        instance = fast[0][0]
        assert isinstance(instance[0], bytes)
        assert len(instance[0]) == 16
        assert any(isinstance(v, str) and v.startswith("2030-01-01 00:00:00") for v in instance)


@sqlite_only
async def test_a_commit_and_a_load_are_one_hop_each(db_engine: AsyncEngine, hops: list[str]) -> None:
    state = await _started(db_engine)
    store = SQLAlchemyStore(db_engine, cache_states=False)
    hops.clear()
    assert await store.commit(_next(state, _record(state), extra=True)) is True
    assert hops == ["_transaction"]
    hops.clear()
    loaded = await store.load_instance(state.id)
    assert hops == ["_fetch_one"]
    assert loaded is not None
    assert loaded.version == state.version + 1
    assert loaded.data["extra"] is True
    # For comparison: the same commit through SQLAlchemy's adapter.
    store._aiosqlite = False
    hops.clear()
    assert await store.commit(_next(loaded, _record(loaded))) is True
    assert len(hops) >= 6, hops


@sqlite_only
async def test_a_stale_plan_writes_nothing_in_one_hop(db_engine: AsyncEngine, hops: list[str]) -> None:
    state = await _started(db_engine)
    store = SQLAlchemyStore(db_engine)
    before = await _raw(db_engine, state.id)
    hops.clear()
    assert await store.commit(_next(state, _record(state), expected=state.version - 1, stale=True)) is False
    assert hops == ["_transaction"]
    assert await _raw(db_engine, state.id) == before
    # The connection went back to the pool outside any transaction: the next commit works.
    assert await store.commit(_next(state, _record(state))) is True


@sqlite_only
async def test_a_failing_statement_rolls_back_the_instance_update(db_engine: AsyncEngine, hops: list[str]) -> None:
    state = await _started(db_engine)
    [existing] = [r for r in await SQLAlchemyStore(db_engine).step_records(state.id) if r.step_name == "prepare"]
    store = SQLAlchemyStore(db_engine)
    before = await _raw(db_engine, state.id)
    hops.clear()
    # The instance UPDATE succeeds, the first record inserts, the second collides.
    with pytest.raises(IntegrityError) as raised:
        await store.commit(_next(state, _record(state), _record(state, existing.id), lost=True))
    assert hops == ["_transaction"]
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


@sqlite_only
async def test_a_closed_connection_is_thrown_away(db_engine: AsyncEngine) -> None:
    state = await _started(db_engine)
    store = SQLAlchemyStore(db_engine, cache_states=False)
    # Close the pooled connection's aiosqlite connection behind the pool's back.
    fairy = await db_engine.raw_connection()
    driver = fairy.driver_connection
    assert driver is not None
    await greenlet_spawn(fairy.close)
    await driver.close()
    with pytest.raises(DBAPIError) as raised:
        await store.commit(_next(state, _record(state)))
    assert raised.value.connection_invalidated
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


async def test_inside_a_shared_connections_open_transaction_the_commit_nests(tmp_path: Path) -> None:
    """``:memory:`` databases share one connection (``StaticPool``): a commit arriving while
    another unit of work holds a transaction open on it nests in a savepoint, and a stale
    one leaves that transaction untouched."""
    engine = create_database_engine("sqlite+aiosqlite://")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        state = await _started(engine)
        store = SQLAlchemyStore(engine, cache_states=False)
        async with engine.connect() as conn:
            await conn.execute(
                insert(definitions).values(id=uuid.uuid4(), name="open", version="1", definition_json={})
            )
            assert await store.commit(_next(state, _record(state), expected=state.version - 1)) is False
            assert await store.commit(_next(state, _record(state), nested=True)) is True
            await conn.commit()
        loaded = await store.load_instance(state.id)
        assert loaded is not None
        assert loaded.data["nested"] is True
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM workflow_definitions WHERE name = 'open'")) == 1
    finally:
        await engine.dispose()
