"""Helpers of the SAQ integration tests: the environment, worker processes, in-process workers.

Every test gets its own queue name (so its own SAQ keys) on Redis db ``REDIS_DB`` and empty
tables in the session's PostgreSQL database.  Worker processes are ``saq worker.settings``
started from the repository root, exactly as a user runs them, configured through the
``FLOWSTAR_*`` environment variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from saq import Worker
from saq.queue.redis import RedisQueue
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.integration import saq_workflows

from flowstar import WorkflowStatus
from flowstar.saq import SAQExecutionEngine, build_engine, build_settings
from flowstar.saq.jobs import ENGINE_KEY
from flowstar.settings import FlowstarSettings

ROOT = Path(__file__).resolve().parents[2]
SAQ = str(Path(sys.executable).with_name("saq"))
REDIS_DB = 12
REGISTRY = "tests.integration.saq_workflows:registry"
READY = "flowstar worker ready"

# Quick recovery for tests: a killed worker's jobs are rescued after a few seconds.
FAST = {
    "heartbeat": 1,
    "reconcile_interval": 1.0,
    "reconcile_grace": 2.0,
    "shutdown_grace": 10,
}


async def wait_for(
    condition: Callable[[], Awaitable[Any]], *, within: float, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Return ``condition()``'s first truthy value; fail after ``within`` seconds.

    For state in other processes (database rows, a log file) that sends us no signal.
    """
    last: Any = None
    try:
        async with asyncio.timeout(within):
            while True:
                last = await condition()
                if last:
                    return last
                await asyncio.sleep(interval)
    except TimeoutError:
        raise AssertionError(f"timed out after {within}s waiting for {what} (last value: {last!r})") from None


@dataclass
class SaqEnv:
    """One test's servers and names."""

    database_url: str
    redis_url: str
    queue: str
    db: AsyncEngine
    redis: Redis

    def settings(self, **overrides: Any) -> FlowstarSettings:
        values: dict[str, Any] = {
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "queue": self.queue,
            "registry": REGISTRY,
            "concurrency": 10,
            **FAST,
        }
        values.update(overrides)
        return FlowstarSettings(**values)

    def worker_env(self, **overrides: Any) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSTAR_")}
        settings = self.settings(**overrides)
        for name in (
            "database_url",
            "redis_url",
            "queue",
            "registry",
            "concurrency",
            "heartbeat",
            "reconcile_interval",
            "reconcile_grace",
            "shutdown_grace",
        ):
            value = getattr(settings, name)
            if value is not None:
                env[f"FLOWSTAR_{name.upper()}"] = str(value)
        env["FLOWSTAR_TEST_SIDE_EFFECTS_URL"] = self.database_url
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        return env

    async def queue_client(self) -> RedisQueue:
        return RedisQueue(Redis.from_url(self.redis_url), name=self.queue)

    @contextlib.asynccontextmanager
    async def client(self, **overrides: Any) -> AsyncIterator[SAQExecutionEngine]:
        """An API-side engine (commits and enqueues; runs no steps, no reconciler)."""
        queue = await self.queue_client()
        engine = build_engine(self.settings(**overrides), queue, run_reconciler=False)
        try:
            yield engine
        finally:
            await engine.close()
            await queue.disconnect()

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.db.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar_one()

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.db.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())

    async def count_status(self, workflow: str, status: WorkflowStatus) -> int:
        return int(
            await self.scalar(
                "SELECT count(*) FROM workflow_instances WHERE workflow_name = :w AND status = :s",
                w=workflow,
                s=status.value,
            )
        )

    async def wait_all(self, workflow: str, count: int, *, within: float) -> None:
        """Wait until ``count`` instances of ``workflow`` completed (none may fail)."""

        async def done() -> bool:
            failed = await self.count_status(workflow, WorkflowStatus.FAILED)
            assert failed == 0, await self.rows("SELECT id, error FROM workflow_instances WHERE status = 'failed'")
            return await self.count_status(workflow, WorkflowStatus.COMPLETED) == count

        await wait_for(done, within=within, interval=0.1, what=f"{count} completed {workflow} instances")

    async def delete_redis_keys(self) -> None:
        for pattern in (f"saq:{self.queue}:*", f"saq:job:{self.queue}:*", f"flowstar:{self.queue}:*"):
            keys = [k async for k in self.redis.scan_iter(match=pattern, count=1000)]
            for start in range(0, len(keys), 500):
                await self.redis.delete(*keys[start : start + 500])


@dataclass
class WorkerProcess:
    """A ``saq worker.settings`` process with its output in a log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def ready(self, within: float = 30) -> WorkerProcess:
        """Wait until the worker's startup hook finished (it logs ``READY``)."""

        async def check() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            return READY in self.output()

        await wait_for(check, within=within, what=f"worker {self.name} to start")
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup at all."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        """SIGTERM: SAQ's graceful shutdown."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    async def exited(self, within: float) -> int:
        async def check() -> int | None:
            code = self.proc.poll()
            return None if code is None else code + 1000  # 0 is falsy

        return int(await wait_for(check, within=within, what=f"worker {self.name} to exit")) - 1000


class WorkerPool:
    """Starts worker processes; ``close()`` kills whatever is still running."""

    def __init__(self, env: SaqEnv, logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.started: list[WorkerProcess] = []

    def spawn(self, name: str, **overrides: Any) -> WorkerProcess:
        log = self.logs / f"worker-{name}-{len(self.started)}.log"
        handle = log.open("wb")
        try:
            proc = subprocess.Popen(
                [SAQ, "worker.settings"],
                cwd=str(ROOT),
                env=self.env.worker_env(**overrides),
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        finally:
            handle.close()
        worker = WorkerProcess(name, proc, log)
        self.started.append(worker)
        return worker

    async def start(self, name: str, **overrides: Any) -> WorkerProcess:
        return await self.spawn(name, **overrides).ready()

    def close(self) -> None:
        for worker in self.started:
            worker.kill()
        for worker in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.proc.wait(timeout=10)


@contextlib.asynccontextmanager
async def inprocess_worker(env: SaqEnv, **overrides: Any) -> AsyncIterator[Worker]:
    """A ``saq.Worker`` built from ``build_settings`` running as a task of this event loop.

    Its steps record their side effects through ``env.db``.
    """
    settings = build_settings(env.settings(**overrides))
    ready = asyncio.Event()
    startup = settings["startup"]

    async def started(ctx: dict[str, Any]) -> None:
        await startup(ctx)
        ready.set()

    settings["startup"] = started
    worker = Worker(**settings)
    saq_workflows.SIDE_EFFECTS.engine = env.db
    task = asyncio.create_task(worker.start(), name="saq-worker")
    try:
        async with asyncio.timeout(30):
            await asyncio.wait({task, asyncio.ensure_future(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
            raise AssertionError("the in-process worker stopped during startup")
        yield worker
    finally:
        worker.event.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await worker.queue.disconnect()
        saq_workflows.SIDE_EFFECTS.engine = None


def engine_of(worker: Worker) -> SAQExecutionEngine:
    """The flowstar engine a running worker built in its startup hook."""
    engine: SAQExecutionEngine = worker.context[ENGINE_KEY]
    return engine


async def side_effects(env: SaqEnv, ids: Iterable[str] | None = None) -> list[Any]:
    """Rows of ``saq_side_effects`` (instance_id, step, pid)."""
    rows = await env.rows("SELECT instance_id, step, pid FROM saq_side_effects ORDER BY id")
    if ids is None:
        return rows
    wanted = set(ids)
    return [r for r in rows if r.instance_id in wanted]
