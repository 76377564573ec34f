"""One engine test suite over every store.

Every test asking for ``make_engine`` runs once per store, like Litestar's parametrized
``store`` fixture and SAQ's ``TestQueue`` subclasses:

- ``memory``: ``LocalExecutionEngine`` on its memory store;
- ``sqlite``: ``PersistentExecutionEngine`` on a new SQLite file of the test's own;
- ``postgresql``: ``PersistentExecutionEngine`` on the session's PostgreSQL database, whose
  tables are created once and emptied before each test (a fresh schema per test would cost
  more than most tests).

Select one store with ``-k memory``, ``-k sqlite`` or ``-k postgresql``
(``-m "not integration"``: every store but PostgreSQL).  Without a reachable
PostgreSQL server its tests skip, and fail under ``CI=true`` (see ``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from flowstar import LocalExecutionEngine, ManualClock, WorkflowDefinition, WorkflowRegistry
from flowstar.db import PersistentExecutionEngine, create_database_engine, metadata
from flowstar.engine.core import Engine
from tests.unit.helpers import RecordingBus

EngineFactory = Callable[..., Engine]

# The PostgreSQL cases carry the ``integration`` marker, so ``-m "not integration"`` runs the
# suite without a server.
STORES = ("memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.integration))

# Enough for the most concurrent test (fifty completions of one task queue on the pool);
# small, because every test opens its own pool.
_PG_POOL = {"pool_size": 3, "max_overflow": 2}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def bus() -> RecordingBus:
    return RecordingBus()


async def _create_tables(url: str) -> None:
    engine = create_database_engine(url, **_PG_POOL)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def pg_tables_url(pg_database_url: str) -> str:
    """The session's PostgreSQL database, with flowstar's tables created once."""
    asyncio.run(_create_tables(pg_database_url))
    return pg_database_url


async def _postgres(url: str) -> AsyncEngine:
    engine = create_database_engine(url, **_PG_POOL)
    async with engine.begin() as conn:
        tables = ", ".join(t.name for t in metadata.sorted_tables)
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return engine


async def _sqlite(url: str) -> AsyncEngine:
    engine = create_database_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return engine


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """The database URL of the store under test; None for the memory store."""
    # Synchronous on purpose: the session database is set up with asyncio.run(), which an
    # async fixture (running in the test's loop) could not call.
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'flowstar.db'}"
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_tables_url"))
    return None


@pytest.fixture
async def database(store_url: str | None) -> AsyncIterator[AsyncEngine | None]:
    """The SQLAlchemy engine of the store under test, on empty tables; None for memory."""
    if store_url is None:
        yield None
        return
    db = await (_sqlite(store_url) if store_url.startswith("sqlite") else _postgres(store_url))
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def make_engine(database: AsyncEngine | None) -> AsyncIterator[EngineFactory]:
    """``make_engine(*definitions, **engine_kwargs)``: an engine on the store under test.

    The keyword arguments go to the engine class unchanged (``clock``, ``event_bus``, ...).
    Every engine built is closed at teardown, before its database is disposed of.
    """
    engines: list[Engine] = []

    def factory(*definitions: WorkflowDefinition, **kwargs: Any) -> Engine:
        registry = WorkflowRegistry()
        for definition in definitions:
            registry.register_definition(definition)
        engine: Engine
        if database is None:
            engine = LocalExecutionEngine(registry, **kwargs)
        else:
            engine = PersistentExecutionEngine(registry, engine=database, **kwargs)
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        await engine.close()
