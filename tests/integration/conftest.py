"""Database fixtures: one parametrized fixture runs each test on SQLite and on PostgreSQL.

PostgreSQL gets a fresh database per test session (``pg_database_url`` in tests/conftest.py,
dropped at the end), so concurrent runs never see each other; every test starts from empty
tables.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from flowstar.db import create_database_engine, metadata


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL: a new SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'flowstar.db'}"
    return str(request.getfixturevalue("pg_database_url"))


@pytest.fixture
async def db_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on empty flowstar tables (created with ``create_all``: tests only)."""
    engine = create_database_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        if engine.dialect.name == "postgresql":
            tables = ", ".join(t.name for t in metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    try:
        yield engine
    finally:
        await engine.dispose()


# -- SAQ runtime (see saq_support.py) ---------------------------------------------------


@pytest.fixture
async def saq_env(pg_database_url: str, redis_server_url: str, unique_prefix: str) -> AsyncIterator[Any]:
    """Empty tables on the session's PostgreSQL, a queue of this test's own on Redis db 12."""
    from redis.asyncio import Redis
    from tests.integration.saq_support import REDIS_DB, SaqEnv
    from tests.integration.saq_workflows import SIDE_EFFECTS_DDL

    engine = create_database_engine(pg_database_url, pool_size=3, max_overflow=7)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(text(SIDE_EFFECTS_DDL))
        tables = ", ".join([*(t.name for t in metadata.sorted_tables), "saq_side_effects"])
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    redis_url = f"{redis_server_url}/{REDIS_DB}"
    redis = Redis.from_url(redis_url)
    env = SaqEnv(database_url=pg_database_url, redis_url=redis_url, queue=unique_prefix, db=engine, redis=redis)
    try:
        yield env
    finally:
        await env.delete_redis_keys()
        await redis.aclose()
        await engine.dispose()


@pytest.fixture
def workers(saq_env: Any, tmp_path: Path) -> Iterator[Any]:
    """Starts ``saq worker.settings`` processes; kills every one left at teardown."""
    from tests.integration.saq_support import WorkerPool

    pool = WorkerPool(saq_env, tmp_path)
    try:
        yield pool
    finally:
        pool.close()
