"""How-to (scaling): two workers on one queue share the steps of 20 instances.

Each worker here is a task of this process; in production each is a process of its own
(``saq worker.settings``, any number, on any machines), started with the same variables.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from saq import Queue, Worker

from flowstar import WorkflowStatus
from flowstar.db.migrate import upgrade_async
from flowstar.saq import build_engine, build_settings
from flowstar.settings import FlowstarSettings

NEEDS = ("postgresql", "redis")


@contextlib.asynccontextmanager
async def running_worker(settings: FlowstarSettings) -> AsyncIterator[Worker]:
    worker = Worker(**build_settings(settings, logs=False, metrics=False))
    task = asyncio.create_task(worker.start())
    try:
        yield worker
    finally:
        await worker.stop()
        await task
        await worker.queue.disconnect()


async def main() -> None:
    # --8<-- [start:settings]
    settings = FlowstarSettings.from_env(
        registry="tutorial_first_workflow:registry",
        concurrency=10,  # steps one worker process runs at once (FLOWSTAR_CONCURRENCY)
    )
    assert build_settings(settings, logs=False, metrics=False)["concurrency"] == 10
    # --8<-- [end:settings]
    await upgrade_async(settings.database_url)
    queue = Queue.from_url(settings.redis_url, name=settings.queue)
    engine = build_engine(settings, queue, run_reconciler=False)
    try:
        async with running_worker(settings), running_worker(settings):
            started = [await engine.start_workflow("expense_report", {"amount": str(10 * n)}) for n in range(1, 21)]
            done = await asyncio.gather(*(engine.wait_for_status(i.id, timeout=60) for i in started))
    finally:
        await engine.close()
        await queue.disconnect()
    assert [d.status for d in done] == [WorkflowStatus.COMPLETED] * 20
    assert sum(d.context.get("paid") or 0 for d in done) == sum(10 * n for n in range(1, 10))


if __name__ == "__main__":
    asyncio.run(main())
