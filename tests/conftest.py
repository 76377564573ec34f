"""Shared fixtures: real servers for integration tests.

Outside CI an unreachable server skips the tests that need it; with ``CI=true`` they fail,
so CI can never pass without having exercised PostgreSQL and Redis.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from flowstar import ManualClock
from tests.unit.helpers import RecordingBus

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"


@pytest.fixture
def clock() -> ManualClock:
    """The test clock: timers fire when a test advances it."""
    return ManualClock()


@pytest.fixture
def bus() -> RecordingBus:
    """An event bus that keeps what was published."""
    return RecordingBus()


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def require_server(url: str, default_port: int, what: str) -> None:
    """Skip (or, in CI, fail) when the server behind ``url`` does not answer."""
    if not _reachable(url, default_port):
        _missing(f"{what} is unreachable at {url}")


def require_executable(name: str) -> str:
    """The path of program ``name``; skip (or, in CI, fail) when it is not on the PATH."""
    path = shutil.which(name)
    if path is None:
        _missing(f"no {name} on the PATH")
    assert path is not None
    return path


def _missing(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: integration tests must not skip)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the PostgreSQL server for integration tests."""
    url = os.environ.get("FLOWSTAR_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)
    require_server(url, 5432, "PostgreSQL")
    return url


async def _admin(url: str, sql: str) -> None:
    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database="postgres",
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _fresh_database(postgres_url: str) -> Iterator[str]:
    name = f"flowstar_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(postgres_url, f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        asyncio.run(_admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_database_url(postgres_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session (created and dropped here)."""
    yield from _fresh_database(postgres_url)


@pytest.fixture
def own_pg_database_url(postgres_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, for code that migrates it itself."""
    yield from _fresh_database(postgres_url)


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    """URL of the Redis server for integration tests (without a db number)."""
    url = os.environ.get("FLOWSTAR_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    require_server(url, 6379, "Redis")
    return url.rstrip("/")


@pytest.fixture
def unique_prefix() -> str:
    """A key prefix / schema suffix no other test run uses."""
    return f"t{uuid.uuid4().hex[:12]}"
