"""The code-first front end against graph definitions, and signal delivery (latency, broadcast).

One run prints one JSON object on stdout (progress on stderr).  See ``benchmarks/README.md``
for what the numbers mean.  Three parts (``--parts``):

- ``flow``: the same three-step workflow (each step sets one key, ``k1``..``k3``) as a graph
  definition (three machine steps and two edges) and as ``@workflow`` classes (three
  ``@step`` methods, ``goto`` twice, then ``complete``): ``async def`` methods and a
  ``DictContext`` (``code_async``), ``def`` methods (``code_sync``, run in a worker thread as
  the front end does for them) and ``async def`` with a msgspec ``Context`` (``code_typed``).
  Each engine (``LocalExecutionEngine``, ``PersistentExecutionEngine`` on a SQLite file and on
  a fresh PostgreSQL database) runs every side in one round, in slices of ``--slice``
  instances that alternate between the sides (the first side rotates from round to round),
  ``--concurrency`` instances at a time.  An instance counts once it was verified after the
  round: ``completed`` with all three keys.  Ratios code-first/graph per round, median.
- ``signal``: one SAQ worker (a subprocess, as ``bench_saq.py`` starts them, on Redis and a
  fresh PostgreSQL database) and instances waiting at a ``SignalStep``; signals are sent one at
  a time, each to one instance, from this process.  Latency: from just before ``signal()`` to
  the commit of the instance's next (last) step, seen by this process through a
  ``NOTIFY`` that a trigger on ``workflow_instances`` sends when the instance turns
  ``completed`` (PostgreSQL delivers it at commit).
- ``broadcast``: N instances of one tenant wait for one signal; one ``signal(name)`` without an
  instance id; the time the call takes (it returns once every woken instance ran its next step
  and committed it, on these in-process engines), how many it woke and how many completed.
  Several sizes, interleaved over rounds; a fresh engine (local) or emptied tables
  (PostgreSQL) before each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import msgspec

from flowstar import BaseMachineStep, Edge, WorkflowContext, WorkflowDefinition, WorkflowStatus
from flowstar import WorkflowRegistry as _Registry
from flowstar.flow import FlowEngine, complete, get_context, goto, step, workflow
from flowstar.model.waits import SignalStep

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, also when imported
import bench_saq
from _pg import fresh_database
from bench_local import machine_info, paired_ratio, ratio
from bench_persistence import WireCalls

__all__ = ["main", "registry"]

BENCH_DIR = Path(__file__).resolve().parent

ENGINES = ("local", "sqlite", "postgresql")
SIDES = ("graph", "code_async", "code_sync", "code_typed")
PARTS = ("flow", "signal", "broadcast")
BROADCAST_ENGINES = ("local", "postgresql")
KEYS = ("k1", "k2", "k3")
WORKFLOWS = {
    "graph": "bench_flow_graph3",
    "code_async": "bench_flow_code3",
    "code_sync": "bench_flow_code3_sync",
    "code_typed": "bench_flow_code3_typed",
}
SIGNAL_WORKFLOW = "bench_flow_signal"
SIGNAL = "bench_flow_go"
NOTIFY_CHANNEL = "bench_flow_done"
TARGETS = {"min_code_first_ratio": 0.9, "signal_latency_p50_ms": 5.0, "signal_latency_p99_ms": 25.0}
DEFAULT_PG = bench_saq.DEFAULT_PG
DEFAULT_REDIS = bench_saq.DEFAULT_REDIS
log = bench_saq.log
percentiles = bench_saq.percentiles


# -- the workflows -----------------------------------------------------------------------------


class SetKey(BaseMachineStep):
    """A machine step that sets one context key to True."""

    def __init__(self, name: str, key: str) -> None:
        super().__init__(name)
        self.key = key

    async def execute(self, context: WorkflowContext) -> None:
        context.set(self.key, True)


def graph_linear3() -> WorkflowDefinition:
    """``s1 -> s2 -> s3`` as a graph: three machine steps, two edges."""
    return WorkflowDefinition(
        name=WORKFLOWS["graph"],
        version="1.0.0",
        steps={f"s{n}": SetKey(f"s{n}", key) for n, key in enumerate(KEYS, 1)},
        edges=[Edge("s1", "s2"), Edge("s2", "s3")],
        initial_step="s1",
        terminal_steps={"s3"},
    )


def signal_workflow() -> WorkflowDefinition:
    """``wait`` (a ``SignalStep``) -> ``after`` (sets ``signalled``): what the signal parts wake."""
    return WorkflowDefinition(
        name=SIGNAL_WORKFLOW,
        version="1.0.0",
        steps={"wait": SignalStep("wait", signal=SIGNAL), "after": SetKey("after", "signalled")},
        edges=[Edge("wait", "after")],
        initial_step="wait",
        terminal_steps={"after"},
    )


class Keys(msgspec.Struct):
    """The typed context of ``code_typed``."""

    n: int
    k1: bool = False
    k2: bool = False
    k3: bool = False


def code_first(reg: _Registry) -> None:
    """The three code-first variants of ``s1 -> s2 -> s3``, registered on ``reg``."""

    @workflow(WORKFLOWS["code_async"], registry=reg)
    class Linear3:
        @step(start=True)
        async def s1(self) -> Any:
            get_context().k1 = True
            return goto(self.s2)

        @step()
        async def s2(self) -> Any:
            get_context().k2 = True
            return goto(self.s3)

        @step()
        async def s3(self) -> Any:
            get_context().k3 = True
            return complete()

    @workflow(WORKFLOWS["code_sync"], registry=reg)
    class Linear3Sync:
        @step(start=True)
        def s1(self) -> Any:
            get_context().k1 = True
            return goto(self.s2)

        @step()
        def s2(self) -> Any:
            get_context().k2 = True
            return goto(self.s3)

        @step()
        def s3(self) -> Any:
            get_context().k3 = True
            return complete()

    @workflow(WORKFLOWS["code_typed"], registry=reg)
    class Linear3Typed(Linear3):
        Context = Keys


def build_registry() -> _Registry:
    """Every workflow of the benchmark (SAQ workers load it as ``bench_flow:registry``)."""
    reg = _Registry()
    reg.register_definition(graph_linear3())
    reg.register_definition(signal_workflow())
    code_first(reg)
    return reg


registry = build_registry()


# -- engines in this process -------------------------------------------------------------------


async def _tables(db: Any) -> None:
    from flowstar.db import metadata as tables

    async with db.begin() as conn:
        await conn.run_sync(tables.create_all)


@contextlib.asynccontextmanager
async def in_process_engine(kind: str, pg_url: str, workdir: Path) -> AsyncIterator[Any]:
    """A fresh engine on ``registry``: in memory, on a new SQLite file, or on a new PostgreSQL database."""
    from flowstar import LocalExecutionEngine
    from flowstar.db import PersistentExecutionEngine, create_database_engine

    if kind == "local":
        engine = LocalExecutionEngine(registry)
        try:
            yield engine
        finally:
            await engine.close()
        return
    async with contextlib.AsyncExitStack() as stack:
        if kind == "sqlite":
            url = f"sqlite+aiosqlite:///{workdir / f'flow-{uuid.uuid4().hex[:8]}.db'}"
        else:
            url = await stack.enter_async_context(fresh_database(pg_url, "flow"))
        db = create_database_engine(url)
        stack.push_async_callback(db.dispose)
        await _tables(db)
        engine = PersistentExecutionEngine(registry, engine=db)
        stack.push_async_callback(engine.close)
        yield engine


async def _limited(calls: Sequence[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    """Run ``calls`` ``limit`` at a time (batches with ``gather``); exceptions come back as values."""
    results: list[Any] = []
    for low in range(0, len(calls), limit):
        results.extend(await asyncio.gather(*(c() for c in calls[low : low + limit]), return_exceptions=True))
    return results


# -- part 1: code-first against graph ----------------------------------------------------------


class Side:
    """One workflow variant on one engine within a round: what it started, its summed clocks."""

    def __init__(self, name: str, engine: Any) -> None:
        self.name = name
        self.engine = engine
        self.facade = FlowEngine(engine)
        self.ids: list[str] = []
        self.errors: list[str] = []
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    async def start(self, i: int) -> str:
        """One instance, returned once it settled: code-first through the facade, graph directly."""
        if self.name == "graph":
            return str((await self.engine.start_workflow(WORKFLOWS["graph"], {"n": i})).id)
        return str((await self.facade.start(WORKFLOWS[self.name], n=i)).id)

    async def run_slice(self, first: int, stop: int, concurrency: int) -> None:
        """Instances ``first``..``stop - 1``, ``concurrency`` at a time, timed."""
        calls = [lambda i=i: self.start(i) for i in range(first, stop)]
        cpu = time.process_time()
        began = time.perf_counter()
        results = await _limited(calls, concurrency)
        self.seconds += time.perf_counter() - began
        self.cpu_seconds += time.process_time() - cpu
        for result in results:
            if isinstance(result, BaseException):
                self.errors.append(f"{type(result).__name__}: {result}")
            else:
                self.ids.append(result)

    async def verify(self) -> dict[str, Any]:
        """Load every instance (untimed): completed with every key, or not counted."""
        views = await _limited([lambda i=i: self.engine.get_instance(i) for i in self.ids], 20)
        statuses: dict[str, int] = {}
        completed = 0
        for view in views:
            status = "load failed" if isinstance(view, BaseException) else view.status.value
            statuses[status] = statuses.get(status, 0) + 1
            completed += status == "completed" and all(view.data.get(k) is True for k in KEYS)
        return {
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "completed": completed,
            "errors": len(self.errors),
            "first_error": self.errors[0] if self.errors else None,
            "statuses": statuses,
        }


def rotated(items: list[str], n: int) -> list[str]:
    """``items`` starting at position ``n`` (modulo its length): who goes first in round ``n``."""
    first = n % len(items)
    return items[first:] + items[:first]


async def flow_round(engine: Any, sides: list[str], args: argparse.Namespace, n: int) -> dict[str, dict[str, Any]]:
    """One round on ``engine``: every side in alternating slices, then verification."""
    lanes = [Side(name, engine) for name in rotated(sides, n)]
    gc.collect()
    for first in range(0, args.instances, args.slice):
        stop = min(first + args.slice, args.instances)
        for lane in lanes:
            await lane.run_slice(first, stop, args.concurrency)
    return {lane.name: await lane.verify() for lane in lanes}


def summarize_side(instances: int, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over one side's rounds."""
    per_s = [r["completed"] / r["seconds"] for r in rounds]
    return {
        "rounds": len(rounds),
        "instances": instances,
        "completed": [r["completed"] for r in rounds],
        "all_completed": all(r["completed"] == instances for r in rounds),
        "errors": sum(r["errors"] for r in rounds),
        "first_error": next((r["first_error"] for r in rounds if r["first_error"]), None),
        "final_statuses": rounds[-1]["statuses"],
        "median_instances_per_s": round(statistics.median(per_s), 1),
        "median_steps_per_s": round(statistics.median(per_s) * len(KEYS), 1),
        "median_instances_per_cpu_s": round(
            statistics.median(r["completed"] / max(r["cpu_seconds"], 1e-9) for r in rounds), 1
        ),
        "instances_per_s_by_round": [round(v, 1) for v in per_s],
    }


def compare_side(code: dict[str, Any], graph: dict[str, Any]) -> dict[str, Any]:
    """Code-first/graph: the median of the rounds' paired ratios, and whether it meets the target."""
    by_round = list(zip(code["instances_per_s_by_round"], graph["instances_per_s_by_round"], strict=True))
    value = paired_ratio([c for c, _ in by_round], [g for _, g in by_round])
    return {
        "ratio": value,
        "ratio_by_round": [ratio(c, g) for c, g in by_round],
        "ratio_of_medians": ratio(code["median_instances_per_s"], graph["median_instances_per_s"]),
        "cpu_ratio": ratio(code["median_instances_per_cpu_s"], graph["median_instances_per_cpu_s"]),
        "meets_target": value is not None and value >= TARGETS["min_code_first_ratio"],
    }


async def bench_flow_engine(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Warm-up and ``--rounds`` rounds of every side on one engine."""
    rounds: dict[str, list[dict[str, Any]]] = {side: [] for side in args.sides}
    async with in_process_engine(kind, args.pg_url, workdir) as engine:
        warm = argparse.Namespace(**{**vars(args), "instances": min(args.instances, args.slice)})
        await flow_round(engine, args.sides, warm, 0)
        for n in range(args.rounds):
            for name, outcome in (await flow_round(engine, args.sides, args, n)).items():
                rounds[name].append(outcome)
                log(
                    f"flow {kind:10} round {n + 1}/{args.rounds} {name:10} {outcome['completed']}/{args.instances} "
                    f"in {outcome['seconds']:.3f}s errors={outcome['errors']}"
                )
    result: dict[str, Any] = {side: summarize_side(args.instances, rounds[side]) for side in args.sides}
    if "graph" in result:
        result["ratios"] = {side: compare_side(result[side], result["graph"]) for side in args.sides if side != "graph"}
    return result


# -- part 2: signal latency on an SAQ worker ---------------------------------------------------

_TRIGGER = f"""
CREATE FUNCTION {NOTIFY_CHANNEL}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('{NOTIFY_CHANNEL}', NEW.id::text); RETURN NULL; END $$;
CREATE TRIGGER {NOTIFY_CHANNEL} AFTER UPDATE ON workflow_instances FOR EACH ROW
WHEN (NEW.status = 'completed' AND OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION {NOTIFY_CHANNEL}();
"""


class CommitWatch:
    """When each instance's completion became visible: a ``LISTEN`` on the trigger's channel.

    PostgreSQL sends a notification when the transaction that raised it commits, so the
    moment it arrives here is the moment the commit is done (plus one local socket hop).
    """

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.expected: dict[str, asyncio.Future[float]] = {}

    @classmethod
    async def open(cls, url: str) -> CommitWatch:
        import asyncpg
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        conn = await asyncpg.connect(
            host=parsed.host,
            port=parsed.port or 5432,
            user=parsed.username,
            password=parsed.password,
            database=parsed.database,
        )
        await conn.execute(_TRIGGER)
        watch = cls(conn)
        await conn.add_listener(NOTIFY_CHANNEL, watch._notified)
        return watch

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        seen = time.time()
        future = self.expected.get(payload)
        if future is not None and not future.done():
            future.set_result(seen)

    def expect(self, instance_id: str) -> asyncio.Future[float]:
        """A future set to the wall-clock time ``instance_id``'s completion is seen."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.expected[instance_id] = future
        return future

    async def close(self) -> None:
        await self.conn.close()


class FlowBench(bench_saq.Bench):
    """``bench_saq``'s worker machinery, with workers loading this module's registry."""

    def env(self, queue: str, gate: str, profile: str | None = None) -> dict[str, str]:
        env = super().env(queue, gate, profile)
        env["FLOWSTAR_REGISTRY"] = "bench_flow:registry"
        env["FLOWSTAR_CONCURRENCY"] = str(self.args.worker_concurrency)
        return env


@dataclass
class Sample:
    """One signal: when it was sent, when ``signal()`` returned, when the commit was seen."""

    instance_id: str
    k: int
    sent: float
    returned: float
    seen: float | None
    woken: int
    pg_calls: int
    records: dict[str, Any] = field(default_factory=dict)


async def _count(bench: FlowBench, status: str) -> int:
    rows = await bench.sql(
        "SELECT count(*) FROM workflow_instances WHERE workflow_name = :w AND status = :s", w=SIGNAL_WORKFLOW, s=status
    )
    return int(rows[0][0])


async def send_signals(engine: Any, watch: CommitWatch, ids: list[str], args: argparse.Namespace) -> list[Sample]:
    """One signal per instance, one at a time, ``--signal-interval`` apart (light load)."""
    samples = []
    for k, instance_id in enumerate(ids):
        await asyncio.sleep(args.signal_interval)
        future = watch.expect(instance_id)
        trips = WireCalls.count
        sent = time.time()
        woken = await engine.signal(SIGNAL, {"k": k}, instance_id=instance_id)
        returned = time.time()
        trips = WireCalls.count - trips
        try:
            seen: float | None = await asyncio.wait_for(future, args.timeout)
        except TimeoutError:
            seen = None
        samples.append(Sample(instance_id, k, sent, returned, seen, woken, trips))
    return samples


async def _attach_records(bench: FlowBench, samples: list[Sample]) -> None:
    """The ``after`` step's record and the instance's data, per sample (from the database)."""
    rows = await bench.sql(
        "SELECT i.id::text AS iid, i.status, i.context_data, r.started_at, r.completed_at"
        " FROM workflow_instances i JOIN workflow_step_executions r ON r.instance_id = i.id"
        " WHERE i.workflow_name = :w AND r.step_name = 'after'",
        w=SIGNAL_WORKFLOW,
    )
    found = {row.iid: row for row in rows}
    for sample in samples:
        row = found.get(sample.instance_id)
        if row is not None:
            sample.records = {
                "status": row.status,
                "data": row.context_data,
                "started": row.started_at.timestamp(),
                "completed": row.completed_at.timestamp(),
            }


def latency_report(samples: list[Sample], warmup: int) -> dict[str, Any]:
    """Percentiles of the measured samples (the first ``warmup`` are left out) and their parts."""
    measured = samples[warmup:]
    seen = [s for s in measured if s.seen is not None and s.records]

    def part(fn: Callable[[Sample], float]) -> dict[str, Any]:
        return percentiles([fn(s) * 1000 for s in seen])

    return {
        **percentiles([(s.seen - s.sent) * 1000 for s in seen if s.seen is not None]),
        "signals": len(measured),
        "warmup_signals": warmup,
        "woken": sum(s.woken for s in measured),
        "completed": sum(1 for s in measured if s.records.get("status") == "completed"),
        "payload_delivered": sum(1 for s in measured if (s.records.get("data") or {}).get("k") == s.k),
        "commit_seen": len(seen),
        "pg_round_trips_per_signal_call": statistics.median(s.pg_calls for s in measured),
        "parts": {
            "signal_call": part(lambda s: s.returned - s.sent),
            "returned_to_step_started": part(lambda s: s.records["started"] - s.returned),
            "step_run": part(lambda s: s.records["completed"] - s.records["started"]),
            "step_completed_to_commit_seen": part(lambda s: (s.seen or 0.0) - s.records["completed"]),
            "sent_to_step_completed_at": part(lambda s: s.records["completed"] - s.sent),
        },
    }


async def signal_latency(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Signals to waiting instances, delivered by one SAQ worker; latency to the next step's commit."""
    from redis.asyncio import Redis

    from flowstar.db import create_database_engine
    from flowstar.db.migrate import upgrade_async

    async with fresh_database(args.pg_url, "flowsig") as url:
        await upgrade_async(url)
        bench = FlowBench(args=args, database_url=url, redis_url=args.redis_url, workdir=workdir)
        bench.redis = Redis.from_url(args.redis_url)
        bench.db = create_database_engine(url, pool_size=2, max_overflow=2)
        watch = await CommitWatch.open(url)
        try:
            return await _signal_rounds(bench, watch, args)
        finally:
            await watch.close()
            keys = await bench.delete_keys()
            log(f"signal: deleted {keys} Redis keys")
            await bench.redis.aclose()
            await bench.db.dispose()


async def _signal_rounds(bench: FlowBench, watch: CommitWatch, args: argparse.Namespace) -> dict[str, Any]:
    queue = bench.queue_name("signal")
    # The API side's engine (``bench_saq.api_engine``) reads ``bench_saq``'s registry: the
    # definition the workers run goes there too (the same object, so registering it again is a no-op).
    bench_saq.registry.register_definition(registry.get_definition(SIGNAL_WORKFLOW))
    gate, workers = bench.spawn("flowstar_settings", queue, 1)
    total = args.signal_warmup + args.signals
    try:
        await bench.ready(gate, workers)
        await bench.go(gate, workers)
        async with bench_saq.api_engine(bench, queue) as engine:
            calls = [lambda i=i: engine.start_workflow(SIGNAL_WORKFLOW, {"i": i}) for i in range(total)]
            ids = [str(view.id) for view in await _limited(calls, 20)]

            async def all_waiting() -> bool:
                return bool(await _count(bench, "waiting") >= total)

            await bench_saq._wait_until(all_waiting, args.timeout, f"{total} waiting instances", workers)
            log(f"signal: {total} instances wait; sending")
            samples = await send_signals(engine, watch, ids, args)
    finally:
        await bench.stop(workers)
    await _attach_records(bench, samples)
    floor = {**await bench_saq.floor(bench, args.floor_samples), "postgres_commit": await commit_floor(watch, args)}
    return {"workers": 1, "instances": total, **latency_report(samples, args.signal_warmup), "floor": floor}


async def commit_floor(watch: CommitWatch, args: argparse.Namespace) -> dict[str, Any]:
    """One-row INSERTs in autocommit on a table of the benchmark's database: a WAL flush each.

    A signal's path commits three times in a row (the log entry, the delivery, the next
    step), so three of these are the latency's floor on this server.
    """
    conn = watch.conn
    await conn.execute("CREATE TABLE bench_flow_floor (id serial PRIMARY KEY, at timestamptz DEFAULT now())")
    times = []
    for _ in range(args.floor_samples):
        began = time.perf_counter()
        await conn.execute("INSERT INTO bench_flow_floor DEFAULT VALUES")
        times.append((time.perf_counter() - began) * 1000)
    await conn.execute("DROP TABLE bench_flow_floor")
    return percentiles(times)


# -- part 3: broadcast -------------------------------------------------------------------------


async def _statuses(engine: Any, tenant: str) -> dict[str, int]:
    counts = {}
    for status in (WorkflowStatus.WAITING, WorkflowStatus.COMPLETED, WorkflowStatus.FAILED):
        counts[status.value] = (await engine.list_instances(tenant_id=tenant, status=status, limit=1))[1]
    return counts


async def _empty(engine: Any) -> None:
    """Delete every row (a broadcast starts on tables as empty as the local engine's memory)."""
    from sqlalchemy import text

    from flowstar.db import metadata as tables

    names = ", ".join(t.name for t in tables.sorted_tables if t.name != "workflow_definitions")
    async with engine.store_sql.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} CASCADE"))


async def broadcast_once(engine: Any, size: int, args: argparse.Namespace) -> dict[str, Any]:
    """``size`` instances of one tenant wait; one signal without an instance id wakes them."""
    tenant = f"bcast-{uuid.uuid4().hex[:8]}"
    calls = [lambda i=i: engine.start_workflow(SIGNAL_WORKFLOW, {"i": i}, tenant_id=tenant) for i in range(size)]
    started = await _limited(calls, args.start_concurrency)
    before = await _statuses(engine, tenant)
    gc.collect()
    trips = WireCalls.count
    cpu = time.process_time()
    began = time.perf_counter()
    woken = await engine.signal(SIGNAL, {"broadcast": True}, tenant_id=tenant)
    seconds = time.perf_counter() - began
    cpu = time.process_time() - cpu
    trips = WireCalls.count - trips
    after = await _statuses(engine, tenant)
    return {
        "size": size,
        "start_errors": sum(isinstance(s, BaseException) for s in started),
        "waiting_before": before["waiting"],
        "woken": woken,
        "completed": after["completed"],
        "waiting_after": after["waiting"],
        "seconds": round(seconds, 4),
        "cpu_seconds": round(cpu, 4),
        "per_instance_ms": round(seconds * 1000 / size, 4),
        "pg_round_trips_per_instance": round(trips / size, 2),
    }


def summarize_broadcast(sizes: list[int], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per size: medians over rounds; the growth of the per-instance time from smallest to largest."""
    by_size: dict[str, Any] = {}
    for size in sizes:
        mine = [r for r in runs if r["size"] == size]
        by_size[str(size)] = {
            "rounds": len(mine),
            "delivered_all": all(r["woken"] == r["completed"] == r["waiting_before"] == size for r in mine),
            "woken": [r["woken"] for r in mine],
            "completed": [r["completed"] for r in mine],
            "median_seconds": round(statistics.median(r["seconds"] for r in mine), 4),
            "median_per_instance_ms": round(statistics.median(r["per_instance_ms"] for r in mine), 4),
            "median_instances_per_s": round(statistics.median(size / r["seconds"] for r in mine), 1),
            "median_cpu_per_instance_ms": round(statistics.median(r["cpu_seconds"] * 1000 / size for r in mine), 4),
            "pg_round_trips_per_instance": statistics.median(r["pg_round_trips_per_instance"] for r in mine),
            "per_round": mine,
        }
    small, large = by_size[str(min(sizes))], by_size[str(max(sizes))]
    return {
        "sizes": by_size,
        "per_instance_growth": round(large["median_per_instance_ms"] / small["median_per_instance_ms"], 3),
        # This process's CPU per instance: steadier than wall time when the database is shared.
        "cpu_per_instance_growth": round(
            large["median_cpu_per_instance_ms"] / max(small["median_cpu_per_instance_ms"], 1e-9), 3
        ),
        "size_ratio": round(max(sizes) / min(sizes), 3),
        "delivered_all": all(entry["delivered_all"] for entry in by_size.values()),
    }


async def broadcast(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Every size on every broadcast engine, interleaved over rounds (sizes and engines rotate)."""
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in args.broadcast_engines}
    sizes = [str(s) for s in args.broadcast_sizes]
    async with contextlib.AsyncExitStack() as stack:
        shared = {}
        if "postgresql" in args.broadcast_engines:
            engine = in_process_engine("postgresql", args.pg_url, workdir)
            shared["postgresql"] = await stack.enter_async_context(engine)
        for n in range(args.broadcast_rounds):
            for size in rotated(sizes, n):
                for kind in rotated(list(args.broadcast_engines), n):
                    outcome = await _broadcast_on(kind, shared, int(size), args, workdir)
                    runs[kind].append(outcome)
                    log(
                        f"broadcast {kind:10} round {n + 1}/{args.broadcast_rounds} size {size:>6}: "
                        f"woke {outcome['woken']}, completed {outcome['completed']} in {outcome['seconds']:.3f}s"
                    )
    return {kind: summarize_broadcast(args.broadcast_sizes, runs[kind]) for kind in args.broadcast_engines}


async def _broadcast_on(
    kind: str, shared: dict[str, Any], size: int, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    if kind in shared:
        await _empty(shared[kind])
        return await broadcast_once(shared[kind], size, args)
    async with in_process_engine(kind, args.pg_url, workdir) as engine:
        return await broadcast_once(engine, size, args)


# -- the run -----------------------------------------------------------------------------------


def targets_met(document: dict[str, Any]) -> dict[str, Any]:
    """Each target against what was measured (only the parts that ran)."""
    met: dict[str, Any] = {}
    for kind, entry in document.get("flow", {}).items():
        for side, compared in entry.get("ratios", {}).items():
            met[f"flow/{kind}/{side}"] = compared["meets_target"]
    latency = document.get("signal", {})
    if latency.get("n"):
        met["signal_latency_p50"] = latency["p50_ms"] <= TARGETS["signal_latency_p50_ms"]
        met["signal_latency_p99"] = latency["p99_ms"] <= TARGETS["signal_latency_p99_ms"]
    for kind, entry in document.get("broadcast", {}).items():
        met[f"broadcast/{kind}/delivered_all"] = entry["delivered_all"]
    return met


def all_completed(document: dict[str, Any]) -> bool:
    """Whether every instance of every part completed as it should have."""
    ok = all(
        summary["all_completed"] and summary["errors"] == 0
        for entry in document.get("flow", {}).values()
        for side, summary in entry.items()
        if side != "ratios"
    )
    latency = document.get("signal")
    if latency is not None:
        ok &= latency["signals"] == latency["woken"] == latency["completed"] == latency["commit_seen"]
        ok &= latency["payload_delivered"] == latency["signals"]
    return ok and all(entry["delivered_all"] for entry in document.get("broadcast", {}).values())


async def run(args: argparse.Namespace) -> dict[str, Any]:
    WireCalls.install()  # counts asyncpg calls (0 on the local engine); costs ~0.1 us a call
    document: dict[str, Any] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="flowstar-bench-flow-") as tmp:
        workdir = Path(tmp)
        if "flow" in args.parts:
            document["flow"] = {kind: await bench_flow_engine(kind, args, workdir) for kind in args.engines}
        if "signal" in args.parts:
            log("signal latency on one SAQ worker")
            document["signal"] = await signal_latency(args, workdir)
        if "broadcast" in args.parts:
            document["broadcast"] = await broadcast(args, workdir)
    document["elapsed_s"] = round(time.monotonic() - started, 1)
    return document


def _names(value: str, known: tuple[str, ...], parser: argparse.ArgumentParser, what: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names or set(names) - set(known):
        parser.error(f"--{what}: a comma list of {', '.join(known)}")
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="small sizes, one round (for tests)")
    add("--parts", default=",".join(PARTS), help="flow,signal,broadcast (default all)")
    add("--engines", default=",".join(ENGINES), help="engines of the flow part (default local,sqlite,postgresql)")
    add("--sides", default=",".join(SIDES), help=f"flow part variants (default {','.join(SIDES)})")
    add("--instances", type=int, default=1000, help="instances per side per round (default 1000)")
    add("--rounds", type=int, default=5, help="flow rounds per engine (default 5)")
    add("--slice", type=int, default=100, help="instances per side before the next side's turn (default 100)")
    add("--concurrency", type=int, default=10, help="flow part: instances in flight at once (default 10)")
    add("--worker-concurrency", type=int, default=20, help="jobs per SAQ worker (default 20, ours)")
    add("--signals", type=int, default=300, help="signals timed (default 300)")
    add("--signal-warmup", type=int, default=10, help="signals sent first, not timed (default 10)")
    add("--signal-interval", type=float, default=0.02, help="seconds between signals (default 0.02)")
    add("--floor-samples", type=int, default=200, help="Redis PING, SELECT 1 and commit samples (default 200)")
    add("--broadcast-sizes", default="2500,5000,10000", help="waiting instances per broadcast")
    add("--broadcast-rounds", type=int, default=3, help="broadcasts per size and engine (default 3)")
    add("--broadcast-engines", default=",".join(BROADCAST_ENGINES), help="local,postgresql (default both)")
    add("--start-concurrency", type=int, default=20, help="starts in flight while filling a broadcast")
    add("--timeout", type=float, default=120.0, help="seconds any wait may take (default 120)")
    add("--pg-url", default=DEFAULT_PG, help="PostgreSQL server URL; databases are made and dropped")
    add("--redis-url", default=DEFAULT_REDIS, help="Redis URL with a db number (default db 11)")
    args = parser.parse_args(argv)
    if args.quick:
        args.instances, args.rounds, args.slice, args.concurrency = 20, 1, 10, 5
        args.signals, args.signal_warmup, args.signal_interval, args.floor_samples = 12, 2, 0.01, 20
        args.broadcast_sizes, args.broadcast_rounds = "20,40", 1
    args.parts = _names(args.parts, PARTS, parser, "parts")
    args.engines = _names(args.engines, ENGINES, parser, "engines")
    args.sides = _names(args.sides, SIDES, parser, "sides")
    args.broadcast_engines = _names(args.broadcast_engines, BROADCAST_ENGINES, parser, "broadcast-engines")
    args.broadcast_sizes = sorted({int(s) for s in args.broadcast_sizes.split(",") if s.strip()})
    if min(args.instances, args.rounds, args.slice, args.concurrency, args.signals, args.broadcast_rounds) < 1:
        parser.error("sizes, rounds and counts must be at least 1")
    if not args.broadcast_sizes or min(args.broadcast_sizes) < 1:
        parser.error("--broadcast-sizes: positive numbers")
    return args


def config_of(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "quick": args.quick,
        "parts": args.parts,
        "engines": args.engines,
        "sides": args.sides,
        "workflows": {side: WORKFLOWS[side] for side in args.sides},
        "instances": args.instances,
        "rounds": args.rounds,
        "slice": args.slice,
        "concurrency": args.concurrency,
        "signals": args.signals,
        "signal_warmup": args.signal_warmup,
        "signal_interval_s": args.signal_interval,
        "broadcast_sizes": args.broadcast_sizes,
        "broadcast_rounds": args.broadcast_rounds,
        "broadcast_engines": args.broadcast_engines,
        "order": "flow: slices alternate between the sides, the first side rotates per round; one warm-up slice",
        "statistic": "median over rounds; ratio: median of the rounds' ratios code-first/graph",
    }


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def source_state() -> dict[str, Any]:
    """The checkout measured: its commit, and whether ``src/`` differs from it (others' work)."""

    def git(*words: str) -> str | None:
        try:
            done = subprocess.run(["git", *words], cwd=BENCH_DIR, capture_output=True, text=True, check=False)
        except OSError:
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    changed = git("status", "--porcelain", "--", "../src")
    return {"commit": git("rev-parse", "HEAD"), "src_modified": None if changed is None else bool(changed)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine = {**machine_info(), "load_average_at_start": _load_average()}
    machine["started_at"] = datetime.now().astimezone().isoformat(timespec="seconds")
    source = source_state()  # at the start: others may commit while it runs
    with contextlib.redirect_stdout(sys.stderr):  # nothing a library prints may corrupt the JSON
        measured = asyncio.run(run(args))
    machine["load_average_at_end"] = _load_average()
    packages = ("flowstar", "saq", "redis", "sqlalchemy", "asyncpg", "msgspec")
    document: dict[str, Any] = {
        "benchmark": "flow",
        "config": config_of(args),
        "machine": machine,
        "versions": {name: metadata.version(name) for name in packages},
        "source": source,
        "targets": dict(TARGETS),
        **measured,
    }
    document.update(targets_met=targets_met(document), all_completed=all_completed(document))
    print(json.dumps(document, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
