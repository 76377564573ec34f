"""flowstar's ``PersistentExecutionEngine`` against litestar-workflows 0.3.3's, on PostgreSQL and SQLite.

One run, one process, both engines side by side; rounds are interleaved (ours, theirs, theirs,
ours, ...) and the script prints one JSON object on stdout with the medians and the ratios.
Progress goes to stderr.  See ``benchmarks/README.md`` for set-up and what the numbers mean.

Scenarios:

- ``linear3``: start N instances of ``s1 -> s2 -> s3`` (three machine steps, each setting one
  context key) and wait until each finished.
- ``human_roundtrip``: start N instances of ``submit -> approval (human) -> process``, wait
  until each waits at ``approval``, complete the task, wait until it finished.

Instances run ``--concurrency`` at a time (``asyncio.gather`` over batches).  flowstar uses one
engine for all of them (it opens a connection per unit of work); litestar-workflows gets one
session, and so one engine object, per instance as its persistent engine requires (it keeps
one session for its whole life), and a new session for the task completion, as a web request
would.  Both run on an ``AsyncEngine`` built by ``flowstar.db.create_database_engine`` (same
pool, same SQLite pragmas, same JSON serializer), each on a database of its own (their table
names are the same).

Round trips are counted per side and round:

- PostgreSQL: asyncpg calls that exchange messages with the server: ``Connection.execute``
  (simple queries, which is how ``BEGIN``, ``COMMIT`` and ``ROLLBACK`` are sent),
  ``executemany``, ``prepare``, ``fetch``/``fetchrow``/``fetchval`` and the same methods of a
  prepared statement: 1 each.  This sees both SQLAlchemy's statements and the ones flowstar's
  store sends straight through asyncpg.  As a cross-check the SQLAlchemy event count below is
  reported too (``sqlalchemy_events_per_instance``); for litestar-workflows the two agree.
- SQLite: an in-process database has no wire; what a round trip costs there is a hop into
  aiosqlite's worker thread (queue the call, wake the thread, run it, wake the event loop).
  Every aiosqlite call goes through ``aiosqlite.Connection._execute``, which is wrapped and
  counted, 1 per call: SQLAlchemy's adapter makes several per statement (``cursor()``,
  ``execute``, ``fetchall``, cursor ``close``) plus ``commit``/``rollback`` (including the
  pool's rollback when a connection is returned), and flowstar's store runs a whole commit,
  or the load of an instance, as one function in one call.  Both sides are counted the same
  way; the SQLAlchemy event count is reported beside it.
- SQLAlchemy events (``sqlalchemy_events_per_instance``): ``before_cursor_execute`` (a
  statement or an ``executemany`` batch) 1; on PostgreSQL ``begin``/``commit``/``rollback``
  outside autocommit 1 each and a pool pre-ping (if enabled) 1 per checkout; on SQLite
  ``commit``/``rollback`` 1 each and ``begin`` 0 (the sqlite3 module opens the transaction
  inside the first write).  They do not see what flowstar's store runs outside SQLAlchemy.

Not counted: connection set-up (aiosqlite opens its connection outside ``_execute``) and
asyncpg's one-off ``PREPARE`` of a statement a connection has not seen yet inside
``fetchval`` (a warm-up round, not measured, fills the pools and the statement caches first).

A round counts an instance as completed only if, after the clock stopped, the database says
its status is ``completed`` and its context holds every key the workflow sets.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

OURS = "flowstar"
THEIRS = "litestar-workflows"
SCENARIOS = ("linear3", "human_roundtrip")
DATABASES = ("postgresql", "sqlite")
LINEAR_KEYS = ("k1", "k2", "k3")
FORM_SCHEMA = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "comments": {"type": "string"}},
    "required": ["approved"],
}
FORM_DATA = {"approved": True, "comments": "benchmark"}
ROUNDTRIP_EXPECTED = {"submitted": True, "approved": True, "status": "processed"}
STEPS = {"linear3": 3, "human_roundtrip": 3}
MACHINE_STEPS = {"linear3": 3, "human_roundtrip": 2}
TARGETS = {"min_throughput_ratio": 10.0, "max_round_trips_per_machine_step": 3.0}
DEFAULT_PG = os.environ.get("FLOWSTAR_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- counting round trips --------------------------------------------------------------------


class RoundTrips:
    """Counts SQLAlchemy events on one ``AsyncEngine`` (see the module docstring for the rules)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        sync = engine.sync_engine
        self.postgres = sync.dialect.name == "postgresql"
        event.listen(sync, "before_cursor_execute", self._statement)
        event.listen(sync, "begin", self._begin)
        event.listen(sync, "commit", self._end)
        event.listen(sync, "rollback", self._end)
        if getattr(sync.pool, "_pre_ping", False):
            event.listen(sync.pool, "checkout", self._ping)

    @staticmethod
    def _autocommit(conn: Any) -> bool:
        return conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"

    def _statement(self, *_args: Any) -> None:
        self.count += 1

    def _begin(self, conn: Any) -> None:
        if self.postgres and not self._autocommit(conn):
            self.count += 1

    def _end(self, conn: Any) -> None:
        if not (self.postgres and self._autocommit(conn)):
            self.count += 1

    def _ping(self, *_args: Any) -> None:
        self.count += 1


class WireCalls:
    """A cross-check for PostgreSQL: asyncpg calls that each exchange messages with the server.

    Wraps ``Connection.execute`` (simple queries: BEGIN, COMMIT, ...), ``executemany``,
    ``prepare``, ``fetch``/``fetchrow``/``fetchval`` and the same methods of a prepared
    statement.  Process-wide, so it is read as a difference around one round of one side.
    """

    count = 0

    @classmethod
    def install(cls) -> None:
        from asyncpg.connection import Connection
        from asyncpg.prepared_stmt import PreparedStatement

        for klass, names in (
            (Connection, ("execute", "executemany", "prepare", "fetch", "fetchrow", "fetchval")),
            (PreparedStatement, ("fetch", "fetchrow", "fetchval", "executemany")),
        ):
            for name in names:
                original = getattr(klass, name)
                if getattr(original, "_counted", False):
                    continue
                setattr(klass, name, cls._counting(original))

    @classmethod
    def _counting(cls, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            cls.count += 1
            return await method(*args, **kwargs)

        counted._counted = True  # type: ignore[attr-defined]
        return counted


class ThreadHops:
    """SQLite: calls into aiosqlite's worker thread, counted at ``Connection._execute``.

    Every aiosqlite call (a cursor's ``execute``/``fetch*``/``close``, ``commit``,
    ``rollback``, and a function run on the sqlite3 connection) is queued to the thread there.
    Process-wide, so it is read as a difference around one round of one side.
    """

    count = 0

    @classmethod
    def install(cls) -> None:
        from aiosqlite.core import Connection

        original = Connection._execute
        if getattr(original, "_counted", False):
            return

        async def counted(self: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            cls.count += 1
            return await original(self, fn, *args, **kwargs)

        counted._counted = True  # type: ignore[attr-defined]
        Connection._execute = counted  # type: ignore[method-assign]


# -- the two engines ---------------------------------------------------------------------------


class Side:
    """One engine under test on one database."""

    name: str
    version: str

    def __init__(self, db: AsyncEngine) -> None:
        self.db = db
        self.trips = RoundTrips(db)

    async def setup(self) -> None:
        raise NotImplementedError

    async def truncate(self) -> None:
        """Empty the tables between rounds (so every round starts alike)."""
        tables = ("workflow_human_tasks", "workflow_step_executions", "workflow_instances")
        async with self.db.begin() as conn:
            for table in tables:
                await conn.exec_driver_sql(f"DELETE FROM {table}")

    async def close(self) -> None:
        """Release what ``setup`` built."""

    async def linear3(self, i: int) -> Any:
        raise NotImplementedError

    async def human_roundtrip(self, i: int) -> Any:
        raise NotImplementedError

    async def outcomes(self) -> list[tuple[str, dict[str, Any]]]:
        """``(status, context data)`` of every instance, read from the tables."""
        raise NotImplementedError


class Ours(Side):
    name = OURS

    async def setup(self) -> None:
        import flowstar as fs
        from flowstar.db import PersistentExecutionEngine, metadata

        self.version = fs.__version__

        class SetKey(fs.BaseMachineStep):
            def __init__(self, name: str, key: str) -> None:
                super().__init__(name)
                self.key = key

            async def execute(self, context: Any) -> None:
                context.set(self.key, True)

        class Process(fs.BaseMachineStep):
            async def execute(self, context: Any) -> None:
                context.set("status", "processed" if context.get("approved") else "rejected")

        registry = fs.WorkflowRegistry()
        registry.register_definition(
            fs.WorkflowDefinition(
                name="bench_linear3",
                version="1.0.0",
                steps={f"s{n}": SetKey(f"s{n}", key) for n, key in enumerate(LINEAR_KEYS, 1)},
                edges=[fs.Edge("s1", "s2"), fs.Edge("s2", "s3")],
                initial_step="s1",
                terminal_steps={"s3"},
            )
        )
        registry.register_definition(
            fs.WorkflowDefinition(
                name="bench_human",
                version="1.0.0",
                steps={
                    "submit": SetKey("submit", "submitted"),
                    "approval": fs.BaseHumanStep("approval", title="Approve", form_schema=FORM_SCHEMA),
                    "process": Process("process"),
                },
                edges=[fs.Edge("submit", "approval"), fs.Edge("approval", "process")],
                initial_step="submit",
                terminal_steps={"process"},
            )
        )
        async with self.db.begin() as conn:
            await conn.run_sync(metadata.create_all)
        self.engine = PersistentExecutionEngine(registry, engine=self.db)

    async def close(self) -> None:
        await self.engine.close()

    async def linear3(self, i: int) -> Any:
        # start_workflow returns once the instance settled: here, finished.
        return (await self.engine.start_workflow("bench_linear3", {"n": i})).id

    async def human_roundtrip(self, i: int) -> Any:
        started = await self.engine.start_workflow("bench_human", {"n": i})
        await self.engine.complete_human_task(started.id, "approval", "bench@example.com", FORM_DATA)
        return started.id

    async def outcomes(self) -> list[tuple[str, dict[str, Any]]]:
        from flowstar.db import WorkflowInstanceModel

        table = WorkflowInstanceModel.__table__
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(table.c.status, table.c.context_data))).all()
        return [(r.status, _json(r.context_data)) for r in rows]


class Theirs(Side):
    """litestar-workflows 0.3.3's ``litestar_workflows.db.PersistentExecutionEngine``.

    Used as its code allows: the registry takes workflow classes (``register``),
    ``start_workflow`` takes a class with ``get_definition()`` and returns before any step ran
    (the run is a task in ``engine._running``, which we await: the cheapest exact signal it
    offers).  Its engine keeps one session for its whole life, so each instance gets a session
    and an engine of its own; the task completion gets a new one too (0.3.3 leaves the first
    run's finished task in ``_running``, so the same engine object would never resume it).
    """

    name = THEIRS

    async def setup(self) -> None:
        import litestar_workflows as lw
        from litestar_workflows.db import PersistentExecutionEngine
        from litestar_workflows.db.models import WorkflowInstanceModel

        self.version = metadata.version(THEIRS)
        self.engine_class = PersistentExecutionEngine
        self.model = WorkflowInstanceModel

        class SetKey(lw.BaseMachineStep):
            def __init__(self, name: str, key: str) -> None:
                super().__init__(name)
                self.key = key

            async def execute(self, context: Any) -> None:
                context.set(self.key, True)

        class Process(lw.BaseMachineStep):
            async def execute(self, context: Any) -> None:
                context.set("status", "processed" if context.get("approved") else "rejected")

        linear = lw.WorkflowDefinition(
            name="bench_linear3",
            version="1.0.0",
            description="three machine steps",
            steps={f"s{n}": SetKey(f"s{n}", key) for n, key in enumerate(LINEAR_KEYS, 1)},
            edges=[lw.Edge("s1", "s2"), lw.Edge("s2", "s3")],
            initial_step="s1",
            terminal_steps={"s3"},
        )
        human = lw.WorkflowDefinition(
            name="bench_human",
            version="1.0.0",
            description="machine, human, machine",
            steps={
                "submit": SetKey("submit", "submitted"),
                "approval": lw.BaseHumanStep("approval", title="Approve", form_schema=FORM_SCHEMA),
                "process": Process("process"),
            },
            edges=[lw.Edge("submit", "approval"), lw.Edge("approval", "process")],
            initial_step="submit",
            terminal_steps={"process"},
        )
        self.workflows = {"linear3": _workflow_class(linear), "human_roundtrip": _workflow_class(human)}
        self.registry = lw.WorkflowRegistry()
        for workflow in self.workflows.values():
            self.registry.register(workflow)
        # Its models live on advanced-alchemy's shared registry metadata.
        async with self.db.begin() as conn:
            await conn.run_sync(WorkflowInstanceModel.metadata.create_all)
        self.sessions = async_sessionmaker(self.db, expire_on_commit=False)

    @asynccontextmanager
    async def _engine(self) -> AsyncIterator[Any]:
        async with self.sessions() as session:
            yield self.engine_class(registry=self.registry, session=session)

    @staticmethod
    async def _settled(engine: Any, instance_id: Any) -> None:
        task = engine._running.get(instance_id)
        if task is not None:
            await task

    async def linear3(self, i: int) -> Any:
        async with self._engine() as engine:
            instance = await engine.start_workflow(self.workflows["linear3"], initial_data={"n": i})
            await self._settled(engine, instance.id)
        return instance.id

    async def human_roundtrip(self, i: int) -> Any:
        async with self._engine() as engine:
            instance = await engine.start_workflow(self.workflows["human_roundtrip"], initial_data={"n": i})
            await self._settled(engine, instance.id)
        async with self._engine() as engine:
            await engine.complete_human_task(instance.id, "approval", "bench@example.com", dict(FORM_DATA))
            await self._settled(engine, instance.id)
        return instance.id

    async def outcomes(self) -> list[tuple[str, dict[str, Any]]]:
        table = self.model.__table__
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(table.c.status, table.c.context_data))).all()
        return [(str(getattr(r.status, "value", r.status)).lower(), _json(r.context_data)) for r in rows]


def _workflow_class(definition: Any) -> type:
    return type(
        f"Bench_{definition.name}",
        (),
        {
            "name": definition.name,
            "version": definition.version,
            "description": definition.description,
            "get_definition": classmethod(lambda cls: definition),
        },
    )


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, str | bytes):
        decoded: dict[str, Any] = json.loads(value)
        return decoded
    return dict(value or {})


# -- measuring ---------------------------------------------------------------------------------


def is_complete(scenario: str, status: str, data: dict[str, Any]) -> bool:
    """Whether a finished instance did everything its workflow should have."""
    if status != "completed":
        return False
    if scenario == "linear3":
        return all(data.get(key) is True for key in LINEAR_KEYS)
    return all(data.get(key) == value for key, value in ROUNDTRIP_EXPECTED.items())


async def run_round(side: Side, scenario: str, instances: int, concurrency: int) -> dict[str, Any]:
    """One timed round; the outcome is checked in the database after the clock stopped."""
    await side.truncate()
    op: Callable[[int], Awaitable[Any]] = getattr(side, scenario)
    errors: list[str] = []
    gc.collect()
    trips, wire, hops = side.trips.count, WireCalls.count, ThreadHops.count
    cpu = time.process_time()
    started = time.perf_counter()
    for first in range(0, instances, concurrency):
        results = await asyncio.gather(
            *(op(i) for i in range(first, min(first + concurrency, instances))), return_exceptions=True
        )
        errors.extend(f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    events, wire, hops = side.trips.count - trips, WireCalls.count - wire, ThreadHops.count - hops
    outcomes = await side.outcomes()
    completed = sum(is_complete(scenario, status, data) for status, data in outcomes)
    finished = sum(status == "completed" for status, _data in outcomes)
    statuses: dict[str, int] = {}
    for status, _data in outcomes:
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "completed": completed,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "statuses": statuses,
        "round_trips": wire if side.trips.postgres else hops,
        "sqlalchemy_events": events,
        "status_completed": finished,
    }


def summarize(scenario: str, instances: int, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over one side's rounds."""
    seconds = statistics.median(r["seconds"] for r in rounds)
    trips = statistics.median(r["round_trips"] for r in rounds)
    return {
        "rounds": len(rounds),
        "instances": instances,
        "completed": min(r["completed"] for r in rounds),
        "status_completed": min(r["status_completed"] for r in rounds),
        "all_completed": all(r["completed"] == instances for r in rounds),
        "errors": sum(r["errors"] for r in rounds),
        "first_error": next((r["first_error"] for r in rounds if r["first_error"]), None),
        "statuses": rounds[-1]["statuses"],
        "median_seconds": round(seconds, 4),
        "median_cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in rounds), 4),
        "instances_per_s": round(instances / seconds, 1),
        "steps_per_s": round(instances * STEPS[scenario] / seconds, 1),
        "round_trips_per_instance": round(trips / instances, 2),
        "round_trips_per_step": round(trips / (instances * STEPS[scenario]), 2),
        "sqlalchemy_events_per_instance": round(
            statistics.median(r["sqlalchemy_events"] for r in rounds) / instances, 2
        ),
        "seconds_per_round": [round(r["seconds"], 4) for r in rounds],
    }


# -- databases ---------------------------------------------------------------------------------


async def _pg_admin(server_url: str, sql: str) -> None:
    import asyncpg

    url = make_url(server_url)
    conn = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        database="postgres",
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def database(kind: str, label: str, pg_url: str, workdir: Path) -> AsyncIterator[AsyncEngine]:
    """A fresh, empty database for one side; dropped afterwards."""
    from flowstar.db import create_database_engine

    if kind == "sqlite":
        engine = create_database_engine(f"sqlite+aiosqlite:///{workdir / f'{label}.db'}")
        try:
            yield engine
        finally:
            await engine.dispose()
        return
    name = f"flowstar_bench_{label}_{uuid.uuid4().hex[:8]}"
    await _pg_admin(pg_url, f'CREATE DATABASE "{name}"')
    engine = create_database_engine(make_url(pg_url).set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        await engine.dispose()
        await _pg_admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def bench_database(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Every scenario on one kind of database, both sides interleaved."""
    side_classes: list[type[Side]] = [Ours] + ([Theirs] if args.compare else [])
    result: dict[str, Any] = {}
    async with (
        database(kind, "ours", args.pg_url, workdir) as ours_db,
        database(kind, "theirs", args.pg_url, workdir) if args.compare else _none() as theirs_db,
    ):
        sides: list[Side] = [cls(db) for cls, db in zip(side_classes, (ours_db, theirs_db), strict=False)]
        for side in sides:
            await side.setup()
        try:
            for scenario in args.scenarios:
                result[scenario] = await bench_scenario(kind, scenario, sides, args)
        finally:
            for side in sides:
                await side.close()
    return result


async def bench_scenario(kind: str, scenario: str, sides: list[Side], args: argparse.Namespace) -> dict[str, Any]:
    """Warm-up, then ``args.rounds`` timed rounds per side, interleaved."""
    rounds: dict[str, list[dict[str, Any]]] = {side.name: [] for side in sides}
    for side in sides:  # warm-up: pools, statement caches, definitions
        await run_round(side, scenario, min(args.instances, args.concurrency), args.concurrency)
    for n in range(args.rounds):
        order = sides if n % 2 == 0 else list(reversed(sides))
        for side in order:
            outcome = await run_round(side, scenario, args.instances, args.concurrency)
            rounds[side.name].append(outcome)
            log(
                f"{kind:10} {scenario:15} round {n + 1}/{args.rounds} {side.name:18} "
                f"{outcome['seconds']:.3f}s completed={outcome['completed']} "
                f"trips={outcome['round_trips']} errors={outcome['errors']}"
            )
    entry: dict[str, Any] = {side.name: summarize(scenario, args.instances, rounds[side.name]) for side in sides}
    if args.compare:
        ours, theirs = entry[OURS], entry[THEIRS]
        entry["ratio"] = {
            "throughput": round(theirs["median_seconds"] / ours["median_seconds"], 2),
            "cpu": round(theirs["median_cpu_seconds"] / ours["median_cpu_seconds"], 2),
            "round_trips_per_step": round(ours["round_trips_per_step"] / theirs["round_trips_per_step"], 3),
        }
    return entry


@asynccontextmanager
async def _none() -> AsyncIterator[None]:
    yield None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few instances, one round (for tests)")
    parser.add_argument("--instances", type=int, default=200, help="instances per round (default 200)")
    parser.add_argument("--concurrency", type=int, default=20, help="instances in flight at once (default 20)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per side (default 5)")
    parser.add_argument("--db", default=",".join(DATABASES), help="postgresql,sqlite (default both)")
    parser.add_argument("--scenario", default=",".join(SCENARIOS), help="linear3,human_roundtrip (default both)")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="PostgreSQL server URL; databases are made and dropped")
    parser.add_argument("--only-ours", action="store_true", help="skip litestar-workflows")
    args = parser.parse_args(argv)
    if args.quick:
        args.instances, args.concurrency, args.rounds = 10, 5, 1
    args.databases = [d for d in args.db.split(",") if d]
    args.scenarios = [s for s in args.scenario.split(",") if s]
    unknown = set(args.databases) - set(DATABASES) | set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown database or scenario: {sorted(unknown)}")
    args.compare = not args.only_ours
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark; returns the JSON document."""
    WireCalls.install()
    ThreadHops.install()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="flowstar-bench-") as tmp:
        for kind in args.databases:
            results[kind] = await bench_database(kind, args, Path(tmp))
    ours_version = metadata.version(OURS)
    document: dict[str, Any] = {
        "benchmark": "persistence",
        "config": {
            "instances": args.instances,
            "concurrency": args.concurrency,
            "rounds": args.rounds,
            "quick": args.quick,
            "databases": args.databases,
            "scenarios": args.scenarios,
            "compared": args.compare,
        },
        "versions": {OURS: ours_version, **({THEIRS: metadata.version(THEIRS)} if args.compare else {})},
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "sqlalchemy": metadata.version("sqlalchemy"),
            "asyncpg": metadata.version("asyncpg"),
            "aiosqlite": metadata.version("aiosqlite"),
        },
        "round_trips_counted": (
            "PostgreSQL: asyncpg calls that talk to the server (execute, executemany, prepare, "
            "fetch*, incl. BEGIN/COMMIT/ROLLBACK) = 1 each; SQLite: calls into aiosqlite's worker "
            "thread (aiosqlite.Connection._execute: each cursor execute/fetch/close, commit, rollback, "
            "or function run on the sqlite3 connection) = 1 each, on both sides alike; connection "
            "set-up not counted"
        ),
        "results": results,
        "targets": dict(TARGETS),
    }
    document["targets_met"] = _targets_met(results, args.compare)
    return document


def _targets_met(results: dict[str, Any], compared: bool) -> dict[str, Any]:
    met: dict[str, Any] = {}
    for kind, scenarios in results.items():
        for scenario, entry in scenarios.items():
            ours = entry[OURS]
            trips_per_machine_step = ours["round_trips_per_instance"] / MACHINE_STEPS[scenario]
            check: dict[str, Any] = {}
            if scenario == "linear3":
                check["round_trips_per_machine_step"] = round(trips_per_machine_step, 2)
                check["round_trips_ok"] = trips_per_machine_step <= TARGETS["max_round_trips_per_machine_step"]
            if compared:
                check["throughput_ok"] = entry["ratio"]["throughput"] >= TARGETS["min_throughput_ratio"]
            met[f"{kind}/{scenario}"] = check
    return met


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    document = asyncio.run(run(args))
    print(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
