"""Tutorial 4: the same workflow with its steps run by a SAQ worker, on Redis and PostgreSQL.

Run it with real servers::

    export FLOWSTAR_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/app
    export FLOWSTAR_REDIS_URL=redis://127.0.0.1:6379/0
    python docs/examples/tutorial_workers.py

In production the worker is its own process (``saq worker.settings``); here it runs as a task
of this script so that one file shows both sides.
"""

from __future__ import annotations

import asyncio

# --8<-- [start:main]
from saq import Queue, Worker

from flowstar import TaskStatus, WorkflowStatus
from flowstar.db.migrate import upgrade_async
from flowstar.saq import build_engine, build_settings
from flowstar.settings import FlowstarSettings

NEEDS = ("postgresql", "redis")  # what the docs' test gives this file


async def main() -> None:
    # Every process reads the same FLOWSTAR_* variables; FLOWSTAR_REGISTRY names the module
    # holding the definitions, so that every worker finds the same ones.
    settings = FlowstarSettings.from_env(registry="tutorial_human_task:registry")
    await upgrade_async(settings.database_url)  # `flowstar db upgrade`, once per deployment

    # The worker side: what `saq worker.settings` runs.
    worker = Worker(**build_settings(settings, logs=False, metrics=False))
    running = asyncio.create_task(worker.start())

    # The API side: commits and enqueues, then returns at once.
    queue = Queue.from_url(settings.redis_url, name=settings.queue)
    engine = build_engine(settings, queue, run_reconciler=False)
    try:
        report = await engine.start_workflow("expense_report", {"employee": "alice", "amount": "1200"})
        report = await engine.wait_for_status(report.id, WorkflowStatus.WAITING, timeout=30)
        assert report.current_step == "manager_review"

        (task,) = await engine.get_tasks(instance_id=report.id, status=TaskStatus.PENDING)
        await engine.complete_task(task.id, "bob", {"decision": "approved"})
        report = await engine.wait_for_status(report.id, WorkflowStatus.COMPLETED, timeout=30)
        assert report.context.get("paid") == 1200.0
    finally:
        await engine.close()
        await queue.disconnect()
        await worker.stop()
        await running
        await worker.queue.disconnect()  # `saq worker` does this on its way out


# --8<-- [end:main]


if __name__ == "__main__":
    asyncio.run(main())
