"""Driver errors reach callers as flowstar's: an unreachable or busy database raises
``StoreUnavailableError`` (saying whether a write may have committed), caused by the
driver's error; other errors pass unchanged."""

from __future__ import annotations

import socket
import sqlite3
import uuid
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.integration.test_db_sqlite_commit import _next, _record, _started

from flowstar.db import SQLAlchemyStore, create_database_engine, metadata
from flowstar.model.errors import StoreUnavailableError


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_refused_connection_is_store_unavailable() -> None:
    engine = create_database_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/none")
    store = SQLAlchemyStore(engine)
    try:
        with pytest.raises(StoreUnavailableError, match="could not load the instance") as raised:
            await store.load_instance(str(uuid.uuid4()))
        assert "nothing was changed; retrying is safe" in str(raised.value)
        assert isinstance(raised.value.__cause__, OSError)
    finally:
        await engine.dispose()


async def test_no_free_pooled_connection_in_time_is_store_unavailable(pg_database_url: str) -> None:
    engine = create_database_engine(pg_database_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    store = SQLAlchemyStore(engine)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        async with engine.connect():  # the pool's only connection
            with pytest.raises(StoreUnavailableError, match="could not find tasks") as raised:
                await store.find_tasks(instance_id=str(uuid.uuid4()))
        assert isinstance(raised.value.__cause__, sa_exc.TimeoutError)
        assert await store.find_tasks(instance_id=str(uuid.uuid4())) == []  # and it recovers
    finally:
        await engine.dispose()


async def test_a_commit_blocked_past_sqlites_busy_timeout_may_have_committed(tmp_path: Path) -> None:
    """Another process holds SQLite's write lock longer than the busy timeout: the commit
    gives up with an error that says the outcome is unknown and a retry is safe."""
    path = tmp_path / "busy.db"
    engine = create_database_engine(f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 0.2})
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        state = await _started(engine)
        store = SQLAlchemyStore(engine, cache_states=False)
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailableError, match="may or may not have been committed") as raised:
            await store.commit(_next(state, _record(state)))
        assert isinstance(raised.value.__cause__, sa_exc.OperationalError)
        holder.execute("ROLLBACK")
        assert await store.commit(_next(state, _record(state))) is True  # the retry goes through
    finally:
        holder.close()
        await engine.dispose()


async def test_other_errors_pass_unchanged(db_engine: AsyncEngine) -> None:
    state = await _started(db_engine)
    [existing] = [r for r in await SQLAlchemyStore(db_engine).step_records(state.id) if r.step_name == "prepare"]
    with pytest.raises(sa_exc.IntegrityError):
        await SQLAlchemyStore(db_engine).commit(_next(state, _record(state, existing.id)))
