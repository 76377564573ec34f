"""Start + complete round trips per second over HTTP on one process with PostgreSQL, beside a
bare Litestar handler doing one PostgreSQL commit per request.

Both apps run in one uvicorn server (a real socket on a free port, ``httptools`` if installed)
inside this process; the client is ``httpx.AsyncClient`` on the same event loop, ``--concurrency``
requests in flight.  Rounds alternate between the two sides (engine, bare, bare, engine...).

- ``engine`` with ``--app plugin`` (the default): ``flowstar.web.WorkflowWebPlugin``'s REST API
  on the engine (no user provider: a trusted back end).  ``POST /workflows/instances`` starts
  ``submit -> approval (human) -> process``, ``GET /workflows/tasks?instance_id=...`` finds its
  task, ``POST /workflows/tasks/{id}/complete`` completes it (the engine runs ``process`` and
  commits the instance as completed before answering): three requests.
- ``engine`` with ``--app handlers``: two plain Litestar handlers calling the engine
  (``POST /instances`` answers the task id too, then ``POST /tasks/{id}/complete``).
- ``bare``: ``POST /bare`` inserts one row in a table of its own in one transaction.

The figures: round trips per second, requests per second (three or two per round trip) and
their ratios to the bare handler's requests per second.  After the
clock stops every instance is checked: completed, with the context the workflow sets.  The
script prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import uvicorn
from _pg import fresh_database
from litestar import Litestar, post
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from flowstar import BaseHumanStep, BaseMachineStep, Edge, WorkflowContext, WorkflowDefinition, WorkflowRegistry
from flowstar.db import PersistentExecutionEngine, create_database_engine, metadata

DEFAULT_PG = os.environ.get("FLOWSTAR_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
TARGET_RATIO = 0.5
_bare_metadata = MetaData()
_bare = Table("bench_bare", _bare_metadata, Column("id", Integer, primary_key=True), Column("note", String(64)))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _Submit(BaseMachineStep):
    async def execute(self, context: WorkflowContext) -> None:
        context.set("submitted", True)


class _Process(BaseMachineStep):
    async def execute(self, context: WorkflowContext) -> None:
        context.set("status", "processed" if context.get("approved") else "rejected")


def definition() -> WorkflowDefinition:
    return WorkflowDefinition(
        name="bench_http",
        version="1.0.0",
        steps={
            "submit": _Submit("submit"),
            "approval": BaseHumanStep("approval", title="Approve"),
            "process": _Process("process"),
        },
        edges=[Edge("submit", "approval"), Edge("approval", "process")],
        initial_step="submit",
        terminal_steps={"process"},
    )


def build_plugin_app(engine: PersistentExecutionEngine, db: AsyncEngine) -> Litestar:
    """The bare handler beside ``flowstar.web``'s REST API (``/workflows``) on the engine."""
    from flowstar.web import WorkflowWebPlugin

    return Litestar([_bare_handler(db)], plugins=[WorkflowWebPlugin(engine=engine, enable_ui=False)], debug=False)


def _bare_handler(db: AsyncEngine) -> Any:
    @post("/bare", status_code=200)
    async def bare(data: dict[str, Any]) -> dict[str, bool]:
        async with db.begin() as conn:
            await conn.execute(insert(_bare), {"note": str(data.get("n"))})
        return {"ok": True}

    return bare


def build_app(engine: PersistentExecutionEngine, db: AsyncEngine) -> Litestar:
    """The bare handler beside two plain handlers calling the engine."""

    @post("/instances", status_code=200)
    async def start(data: dict[str, Any]) -> dict[str, str]:
        instance = await engine.start_workflow("bench_http", data)
        (task,) = await engine.get_tasks(instance_id=instance.id)
        return {"id": str(instance.id), "task_id": task.id}

    @post("/tasks/{task_id:str}/complete", status_code=200)
    async def complete(task_id: str, data: dict[str, Any]) -> dict[str, str]:
        instance = await engine.complete_task(task_id, "bench", data)
        return {"id": str(instance.id), "status": instance.status.value}

    return Litestar([start, complete, _bare_handler(db)], debug=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _bounded(count: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> float:
    """Seconds to run ``one(i)`` for ``i`` in ``range(count)``, ``concurrency`` at a time."""
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            await one(i)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - began


async def round_engine(client: httpx.AsyncClient, count: int, concurrency: int) -> float:
    async def one(i: int) -> None:
        started = (await client.post("/instances", json={"n": i})).raise_for_status().json()
        done = await client.post(f"/tasks/{started['task_id']}/complete", json={"approved": True})
        if done.raise_for_status().json()["status"] != "completed":
            raise RuntimeError(f"instance {started['id']} did not complete: {done.text}")

    return await _bounded(count, concurrency, one)


async def round_plugin(client: httpx.AsyncClient, count: int, concurrency: int) -> float:
    async def one(i: int) -> None:
        body = {"definition_name": "bench_http", "input_data": {"n": i}}
        started = (await client.post("/workflows/instances", json=body)).raise_for_status().json()
        query = {"instance_id": started["id"], "status": "pending"}
        (task,) = (await client.get("/workflows/tasks", params=query)).raise_for_status().json()
        done = await client.post(
            f"/workflows/tasks/{task['id']}/complete", json={"output_data": {"approved": True}, "completed_by": "bench"}
        )
        if done.raise_for_status().json()["status"] != "completed":
            raise RuntimeError(f"instance {started['id']} did not complete: {done.text}")

    return await _bounded(count, concurrency, one)


async def round_bare(client: httpx.AsyncClient, count: int, concurrency: int) -> float:
    async def one(i: int) -> None:
        (await client.post("/bare", json={"n": i})).raise_for_status()

    return await _bounded(count, concurrency, one)


async def check(db: AsyncEngine) -> dict[str, Any]:
    """What the database holds once the clock stopped."""
    instances = metadata.tables["workflow_instances"]
    async with db.connect() as conn:
        rows = (await conn.execute(select(instances.c.status, instances.c.context_data))).all()
        bare_rows = len((await conn.execute(select(_bare.c.id))).all())
    expected = {"submitted": True, "approved": True, "status": "processed"}
    good = sum(1 for r in rows if r.status == "completed" and expected.items() <= dict(r.context_data).items())
    return {"instances": len(rows), "instances_completed_as_expected": good, "bare_rows": bare_rows}


async def measure(args: argparse.Namespace, url: str) -> tuple[list[float], list[float], dict[str, Any]]:
    """Seconds per round of each side, and what the database holds afterwards."""
    db = create_database_engine(url, pool_size=args.concurrency, max_overflow=0)
    registry = WorkflowRegistry()
    registry.register_definition(definition())
    engine = PersistentExecutionEngine(registry, engine=db)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(APPS[args.app][0](engine, db), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    engine_s: list[float] = []
    bare_s: list[float] = []
    try:
        async with db.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.run_sync(_bare_metadata.create_all)
        # uvicorn's Server offers a flag, not an event, for "listening".
        while not server.started:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as client:
            round_engine = APPS[args.app][1]
            await round_engine(client, args.concurrency * 2, args.concurrency)  # warm-up
            await round_bare(client, args.concurrency * 2, args.concurrency)
            for r in range(args.rounds):
                order = [("engine", engine_s), ("bare", bare_s)]
                for side, seconds in order if r % 2 == 0 else reversed(order):
                    call = round_engine if side == "engine" else round_bare
                    seconds.append(await call(client, args.requests, args.concurrency))
                    log(f"round {r} {side}: {seconds[-1]:.3f}s")
        return engine_s, bare_s, await check(db)
    finally:
        server.should_exit = True
        await serving
        await engine.close()
        await db.dispose()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with fresh_database(args.pg_url, "http") as url:
        engine_s, bare_s, outcome = await measure(args, url)
    round_trips = args.requests / statistics.median(engine_s)
    bare_rate = args.requests / statistics.median(bare_s)
    warm = args.concurrency * 2
    total = warm + args.requests * args.rounds
    return {
        "benchmark": "http",
        "config": {
            "requests_per_round": args.requests,
            "rounds": args.rounds,
            "concurrency": args.concurrency,
            "server": "uvicorn (one process, real socket)",
            "client": "httpx.AsyncClient, same process and event loop",
            "app": args.app,
            "engine_app": ENGINE_APPS[args.app],
            "requests_per_round_trip": REQUESTS[args.app],
        },
        "engine_round_trips_per_s": round(round_trips, 1),
        "engine_requests_per_s": round(REQUESTS[args.app] * round_trips, 1),
        "bare_requests_per_s": round(bare_rate, 1),
        "ratio_requests": round(REQUESTS[args.app] * round_trips / bare_rate, 3),
        "ratio_round_trips_to_bare_requests": round(round_trips / bare_rate, 3),
        "target_ratio": TARGET_RATIO,
        "checks": {
            **outcome,
            "expected_instances": total,
            "expected_bare_rows": total,
            "all_completed": outcome["instances_completed_as_expected"] == total and outcome["instances"] == total,
        },
    }


# --app: how the engine side is served, and its round trip.
APPS: dict[str, tuple[Callable[[PersistentExecutionEngine, AsyncEngine], Litestar], Any]] = {
    "plugin": (build_plugin_app, round_plugin),
    "handlers": (build_app, round_engine),
}

REQUESTS = {"plugin": 3, "handlers": 2}
ENGINE_APPS = {
    "plugin": "flowstar.web.WorkflowWebPlugin REST API: POST instances, GET tasks?instance_id, POST complete",
    "handlers": "plain Litestar handlers calling the engine: POST start (answers the task id), POST complete",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="engine round trips (and bare requests) per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--app", choices=sorted(APPS), default="plugin", help="the engine side's app")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="PostgreSQL server URL; a database is made and dropped")
    args = parser.parse_args()
    # httpx logs every request at INFO: that would be measured too.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
