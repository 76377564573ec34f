"""The shipped Alembic migrations produce exactly the models' schema, and ``flowstar db upgrade``.

Each test gets an EMPTY database of its own: a new SQLite file, or a PostgreSQL database
created for the test and dropped after it (the session database already holds tables made
with ``create_all``, which would hide a missing migration).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.types import TypeEngine
from tests.conftest import _admin
from tests.examples.conftest import import_example

from flowstar import WorkflowStatus
from flowstar.cli import main
from flowstar.db import PersistentExecutionEngine, create_database_engine, metadata
from flowstar.db.migrate import VERSION_TABLE, alembic_config, upgrade_async

TABLES = {
    "workflow_definitions",
    "workflow_instances",
    "workflow_step_executions",
    "workflow_human_tasks",
    "workflow_outbox",
    "workflow_task_candidates",
    "workflow_task_audit",
    "workflow_signals",
    "workflow_bulk_operations",
    VERSION_TABLE,
}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of a database with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
        return
    server = str(request.getfixturevalue("postgres_url"))
    name = f"flowstar_migrate_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _sqlite_guid_compare(
    _context: MigrationContext,
    inspected: Any,
    _metadata_column: Any,
    inspected_type: TypeEngine[Any],
    metadata_type: TypeEngine[Any],
) -> bool | None:
    # SQLite reflects the BINARY(16) that GUID creates as NUMERIC (SQLAlchemy has no BINARY in
    # its SQLite type map); the DDL comparison below checks those columns exactly instead.
    if type(metadata_type).__name__ == "GUID" and type(inspected_type).__name__ == "NUMERIC":
        return False
    return None


def _differences(conn: Connection) -> list[Any]:
    opts: dict[str, Any] = {"version_table": VERSION_TABLE}
    if conn.dialect.name == "sqlite":
        opts["compare_type"] = _sqlite_guid_compare
    return list(compare_metadata(MigrationContext.configure(conn, opts=opts), metadata))


def _sqlite_ddl(conn: Connection) -> dict[str, str]:
    rows = conn.execute(
        text("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'flowstar_alembic%'")
    )
    return {name: " ".join(sql.split()) for name, sql in rows}


async def test_migrations_produce_exactly_the_models_schema(empty_database_url: str, tmp_path: Path) -> None:
    await upgrade_async(empty_database_url)
    await upgrade_async(empty_database_url)  # a second run is a no-op
    engine = create_database_engine(empty_database_url)
    try:
        async with engine.connect() as conn:
            assert set(await conn.run_sync(lambda c: inspect(c).get_table_names())) == TABLES
            assert await conn.run_sync(_differences) == []
            revision = (await conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))).scalars().all()
            assert revision == [ScriptDirectory.from_config(alembic_config(empty_database_url)).get_current_head()]
            migrated_ddl = await conn.run_sync(_sqlite_ddl) if engine.dialect.name == "sqlite" else None
    finally:
        await engine.dispose()

    if migrated_ddl is not None:
        # On SQLite compare the stored DDL too: byte for byte what create_all emits.
        reference = create_database_engine(f"sqlite+aiosqlite:///{tmp_path / 'create_all.db'}")
        try:
            async with reference.begin() as conn:
                await conn.run_sync(metadata.create_all)
                assert await conn.run_sync(_sqlite_ddl) == migrated_ddl
        finally:
            await reference.dispose()


async def test_engine_runs_on_a_migrated_database(empty_database_url: str) -> None:
    await upgrade_async(empty_database_url)
    engine = PersistentExecutionEngine(import_example("quickstart").registry, url=empty_database_url)
    try:
        started = await engine.start_workflow("approval_workflow", {"amount": 5})
        done = await engine.complete_human_task(started.id, "manager_approval", "boss", {"approved": True})
        assert done.status is WorkflowStatus.COMPLETED
    finally:
        await engine.close()


def test_cli_db_upgrade(empty_database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--url", empty_database_url]) == 0
    out = capsys.readouterr().out
    assert out.endswith(" (the latest)\n")
    assert main(["db", "upgrade", "--url", empty_database_url, "--revision", "0001"]) == 0

    async def check() -> tuple[set[str], list[Any]]:
        engine = create_database_engine(empty_database_url)
        try:
            async with engine.connect() as conn:
                tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
                return tables, await conn.run_sync(_differences)
        finally:
            await engine.dispose()

    tables, differences = asyncio.run(check())
    assert tables == TABLES
    assert differences == []


def test_cli_reads_the_url_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "from-env" / "flowstar.db"
    monkeypatch.setenv("FLOWSTAR_DATABASE_URL", f"sqlite+aiosqlite:///{target}")
    assert main(["db", "upgrade"]) == 0
    assert target.exists()
    assert str(target) in capsys.readouterr().out


def test_cli_hides_the_password(postgres_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    url = make_url(postgres_url).set(password="s3cret", database="flowstar_no_such_db")
    assert main(["db", "upgrade", "--url", url.render_as_string(hide_password=False)]) == 1
    captured = capsys.readouterr()
    assert "flowstar_no_such_db" in captured.err  # one clear line, no traceback
    assert "Traceback" not in captured.err
    assert "s3cret" not in captured.out + captured.err
