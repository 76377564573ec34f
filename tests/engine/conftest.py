"""One engine test suite over every store.

Every test asking for ``make_engine`` runs once per store, like Litestar's parametrized
``store`` fixture and SAQ's ``TestQueue`` subclasses:

- ``memory``: ``LocalExecutionEngine`` on its memory store;
- ``sqlite``: ``PersistentExecutionEngine`` on a new SQLite file of the test's own;
- ``postgresql``: ``PersistentExecutionEngine`` on the session's PostgreSQL database, whose
  tables are created once and emptied before each test (creating them costs more than most
  tests do).

SQLite files are copies of one file whose tables were created once per session.

Select one store with ``-k memory``, ``-k sqlite`` or ``-k postgresql``
(``-m "not integration"``: every store but PostgreSQL).  Without a reachable
PostgreSQL server its tests skip, and fail under ``CI=true`` (see ``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from flowstar import LocalExecutionEngine, WorkflowDefinition, WorkflowRegistry
from flowstar.backends.memory import MemoryStore
from flowstar.db import PersistentExecutionEngine, create_database_engine, metadata
from flowstar.engine.core import Engine

EngineFactory = Callable[..., Engine]

# The PostgreSQL cases carry the ``integration`` marker, so ``-m "not integration"`` runs the
# suite without a server.
STORES = ("memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.integration))

# Enough for the most concurrent test (fifty completions of one task queue on the pool);
# small, because every test opens its own pool.
_PG_POOL = {"pool_size": 3, "max_overflow": 2}


async def _create_tables(url: str, **options: Any) -> None:
    engine = create_database_engine(url, **options)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def pg_tables_url(pg_database_url: str) -> str:
    """The session's PostgreSQL database, with flowstar's tables created once."""
    asyncio.run(_create_tables(pg_database_url, **_PG_POOL))
    return pg_database_url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file holding flowstar's empty tables; each test gets a copy of its own."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    # Closing the last connection checkpoints the WAL into the file, so the file alone is
    # the whole database.
    asyncio.run(_create_tables(f"sqlite+aiosqlite:///{path}"))
    return path


async def _emptied_postgres(url: str) -> AsyncEngine:
    engine = create_database_engine(url, **_PG_POOL)
    async with engine.begin() as conn:
        # DELETE, children first: on tables this small it takes a quarter of TRUNCATE's
        # time (TRUNCATE replaces every table's files).
        for table in reversed(metadata.sorted_tables):
            await conn.execute(table.delete())
    return engine


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """The database URL of the store under test, on empty tables; None for the memory store."""
    # Synchronous on purpose: the session's databases are set up with asyncio.run(), which
    # an async fixture (running in the test's loop) could not call.
    if request.param == "sqlite":
        path = tmp_path / "flowstar.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_tables_url"))
    return None


@pytest.fixture
async def database(store_url: str | None) -> AsyncIterator[AsyncEngine | None]:
    """The SQLAlchemy engine of the store under test, on empty tables; None for memory."""
    if store_url is None:
        yield None
        return
    if store_url.startswith("sqlite"):
        db = create_database_engine(store_url)
    else:
        db = await _emptied_postgres(store_url)
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


@pytest.fixture
def other_process(make_engine: EngineFactory) -> Callable[..., Engine]:
    """``other_process(engine, *definitions, **engine_kwargs)``: an engine of another process
    on ``engine``'s database, with a store (and a cache of committed states) of its own.

    On the memory store both engines share the one store: it caches nothing.
    """

    def factory(engine: Engine, *definitions: WorkflowDefinition, **kwargs: Any) -> Engine:
        if isinstance(engine.store, MemoryStore):
            return make_engine(*definitions, persistence=engine.store, **kwargs)
        return make_engine(*definitions, **kwargs)

    return factory
