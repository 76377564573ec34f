"""Fixtures of the command-line tests: migrated databases and a runner of ``flowstar``.

Commands run in this process through Typer's ``CliRunner`` (each one calls ``asyncio.run``
itself, so the tests are plain functions and set their data up with ``asyncio.run`` too),
on a SQLite file of the test's own and on PostgreSQL.  Both schemas come from the shipped
migrations (``flowstar db upgrade``), as an operator's database does: SQLite files are
copies of one migrated file, and the PostgreSQL database is created and migrated once per
session and emptied before each test.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from typer.testing import CliRunner, Result

from flowstar import ManualClock, WorkflowRegistry
from flowstar.cli import app
from flowstar.db import PersistentExecutionEngine
from flowstar.db.migrate import upgrade
from flowstar.engine.core import Engine
from tests.conftest import _fresh_database
from tests.engine.conftest import _emptied_postgres

T = TypeVar("T")

REGISTRY = "tests.cli.registry:registry"


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the latest revision; each test gets a copy."""
    path = tmp_path_factory.mktemp("cli") / "migrated.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def migrated_postgres(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL database of this session, migrated once (dropped at the end)."""
    for url in _fresh_database(postgres_url):
        upgrade(url)
        yield url


async def _empty(url: str) -> None:
    engine = await _emptied_postgres(url)
    await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database with no rows: a SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "flowstar.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
        return f"sqlite+aiosqlite:///{path}"
    url = str(request.getfixturevalue("migrated_postgres"))
    asyncio.run(_empty(url))
    return url


@dataclass
class Cli:
    """Runs ``flowstar`` commands and sets up data, on one database."""

    url: str
    env: dict[str, str | None]

    def __call__(self, *args: str, **env: str | None) -> Result:
        """``flowstar <args>`` with the test's settings (plus ``env``); the result holds both streams."""
        return CliRunner().invoke(app, list(args), env={**self.env, **env}, catch_exceptions=True)

    def ok(self, *args: str, **env: str | None) -> Result:
        """Like calling it, asserting exit code 0."""
        result = self(*args, **env)
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return result

    def with_engine(
        self,
        work: Callable[[Engine], Awaitable[T]],
        *,
        clock: ManualClock | None = None,
        registry: WorkflowRegistry | None = None,
    ) -> T:
        """Run ``work(engine)`` on a ``PersistentExecutionEngine`` of the test's registry and database."""
        from tests.cli.registry import registry as default

        async def go() -> T:
            engine = PersistentExecutionEngine(registry or default, url=self.url, clock=clock)
            try:
                return await work(engine)
            finally:
                await engine.close()

        return asyncio.run(go())


@pytest.fixture
def cli(db_url: str) -> Cli:
    """``flowstar`` on the test's database, with the test registry and no Redis (single process)."""
    return Cli(
        url=db_url,
        env={
            "FLOWSTAR_DATABASE_URL": db_url,
            "FLOWSTAR_REGISTRY": REGISTRY,
            "FLOWSTAR_REDIS_URL": None,
            "FLOWSTAR_LOG_LEVEL": "WARNING",
        },
    )


def error_line(result: Result) -> str:
    """The one line a failed command printed on stderr (asserting there is exactly one)."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def started(cli: Cli, workflow: str, data: dict[str, Any] | None = None, *, clock: ManualClock | None = None) -> str:
    """Start ``workflow`` in the test's database; returns the instance id once it settled."""

    async def start(engine: Engine) -> str:
        return str((await engine.start_workflow(workflow, data or {})).id)

    return cli.with_engine(start, clock=clock)
