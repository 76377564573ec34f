"""flowstar on SAQ against raw SAQ, side by side: throughput, step latency, timers (issue 4, item 10).

One run on one Redis (a dedicated db, unique queue names, keys deleted afterwards) and a fresh
PostgreSQL database (created here, dropped at the end); prints one JSON object on stdout,
progress on stderr.  See ``benchmarks/README.md`` for set-up and what the numbers mean.

Workers are subprocesses started the way a user starts them (``python -m saq <settings>``):

- raw SAQ: ``bench_saq.raw_settings``, a ``saq.Worker`` whose one function does nothing, with
  the concurrency, timers and job options of ours;
- flowstar: ``bench_saq.flowstar_settings``, which is ``flowstar.saq.build_settings()`` (read
  from the ``FLOWSTAR_*`` environment, as ``saq worker.settings`` does) on this module's
  ``registry``.

Both wrap their ``startup`` hook in a gate: the worker starts (imports, connections, the
engine), reports ready on a Redis list and blocks until this process says go.  A throughput
round therefore loads the whole backlog first (raw: N no-op jobs; flowstar: N/10 instances of a
chain of 10 no-op machine steps, started through the API), waits until every worker is ready,
says go, and waits until the backlog is done.  The producer's CPU is not spent while the
workers run, worker start-up is not timed, and both sides are measured alike:

- units: raw SAQ jobs finished (their records' ``started``/``completed``), flowstar step
  records committed as ``succeeded`` (their ``started_at``/``completed_at``);
- ``per_s``: units / (last completion - go);
- ``steady_per_s``: the central 80% of completions / the time they took (no ramp-up, no tail);
- ``per_worker_cpu_s``: units / CPU seconds the worker processes spent between go and the end
  (from ``/proc``): steadier than wall time on a shared machine (PostgreSQL's and Redis's CPU
  are not in it);
- ``pg_transactions_per_unit`` (the database's ``pg_stat_database`` counters, exact) and
  ``redis_calls_per_unit`` (``INFO commandstats``: server-wide, other clients inflate it).

Latency (one worker, light load; times come from the step records and job results, written
by the worker on the machine's one clock):

- ``floor``: Redis ``PING`` and PostgreSQL ``SELECT 1`` round trips from this process;
- ``raw_saq_hop``: raw SAQ's equivalent of a step-to-step hop: chains of 10 jobs, each
  enqueueing the next; body end of job k -> body start of job k+1;

- step-to-step: ``started_at`` of step k+1 - ``completed_at`` of step k, chain instances started
  one every ``--latency-interval`` seconds;
- human task: the time just before ``complete_human_task`` is called -> the next step's
  ``started_at`` (instances one at a time);
- timers: ``TimerStep`` of 2-4 s; lateness = the timer record's ``completed_at`` - its due time
  (the record's ``started_at`` + the duration, exactly how the engine computes it).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from flowstar import (
    BaseHumanStep,
    BaseMachineStep,
    Edge,
    TimerStep,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowStatus,
)
from flowstar import WorkflowRegistry as _Registry

BENCH_DIR = Path(__file__).resolve().parent
CHAIN_STEPS = 10
CHAIN = tuple(f"s{n:02d}" for n in range(1, CHAIN_STEPS + 1))
HUMAN_FORM = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
TARGETS = {
    "min_flowstar_vs_raw_ratio": 0.5,
    "step_latency_p50_ms": 5.0,
    "step_latency_p99_ms": 25.0,
    "timer_lateness_p99_ms": 100.0,
}
DEFAULT_PG = os.environ.get("FLOWSTAR_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
DEFAULT_REDIS = os.environ.get("FLOWSTAR_BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
RAW_FUNCTION = "bench.noop"
RAW_CHAIN_FUNCTION = "bench.chain"
SIDES = ("raw_saq", "flowstar_1w", "flowstar_2w")
# Job statuses SAQ's sweep leaves behind when it aborts a job it should not have.
_SWEPT = ("aborted", "aborting")


_T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


# -- what the workers load ---------------------------------------------------------------------


class Noop(BaseMachineStep):
    """A machine step that does nothing: what is left is the runtime's own cost."""

    async def execute(self, context: WorkflowContext) -> None:
        return None


def _wait_seconds(data: Mapping[str, Any]) -> float:
    return float(data["wait"])


def build_registry() -> _Registry:
    """The benchmark's workflows (loaded by workers through ``FLOWSTAR_REGISTRY``)."""
    reg = _Registry()
    reg.register_definition(
        WorkflowDefinition(
            name="bench_chain",
            version="1.0.0",
            steps={name: Noop(name) for name in CHAIN},
            edges=[Edge(a, b) for a, b in itertools.pairwise(CHAIN)],
            initial_step=CHAIN[0],
            terminal_steps={CHAIN[-1]},
        )
    )
    reg.register_definition(
        WorkflowDefinition(
            name="bench_human",
            version="1.0.0",
            steps={
                "prepare": Noop("prepare"),
                "approval": BaseHumanStep("approval", title="Approve", form_schema=HUMAN_FORM),
                "after": Noop("after"),
            },
            edges=[Edge("prepare", "approval"), Edge("approval", "after")],
            initial_step="prepare",
            terminal_steps={"after"},
        )
    )
    reg.register_definition(
        WorkflowDefinition(
            name="bench_timer",
            version="1.0.0",
            steps={"wait": TimerStep("wait", duration=_wait_seconds), "after": Noop("after")},
            edges=[Edge("wait", "after")],
            initial_step="wait",
            terminal_steps={"after"},
        )
    )
    return reg


registry = build_registry()


def _gated(settings: dict[str, Any]) -> dict[str, Any]:
    """Wrap the worker's startup: report ready on Redis, then block until the benchmark says go.

    With ``BENCH_SAQ_PROFILE`` set, the worker also runs cProfile from go until it shuts down
    and writes the stats to that path.
    """
    gate = os.environ.get("BENCH_SAQ_GATE")
    if not gate:
        return settings
    from redis.asyncio import Redis

    redis_url = os.environ["BENCH_SAQ_REDIS_URL"]
    profile_path = os.environ.get("BENCH_SAQ_PROFILE")
    startup = settings.get("startup")
    shutdown = settings.get("shutdown")
    profiler: list[Any] = []

    async def gated_startup(ctx: dict[str, Any]) -> None:
        if startup is not None:
            await startup(ctx)
        client = Redis.from_url(redis_url)
        try:
            await client.rpush(f"{gate}:ready", os.getpid())
            # Short blocking calls: redis-py's socket timeout would end one long BLPOP.
            while not await client.blpop([f"{gate}:go"], timeout=1):
                pass
        finally:
            await client.aclose()
        if profile_path:
            import cProfile

            profiler.append(cProfile.Profile())
            profiler[0].enable()

    async def gated_shutdown(ctx: dict[str, Any]) -> None:
        if profiler:
            profiler[0].disable()
            profiler[0].dump_stats(profile_path)
        if shutdown is not None:
            await shutdown(ctx)

    settings["startup"] = gated_startup
    settings["shutdown"] = gated_shutdown
    return settings


def _raw_job_options() -> dict[str, Any]:
    """Raw SAQ jobs get the options our activations get (the same Redis work per job)."""
    from flowstar.saq.worker import job_options
    from flowstar.settings import FlowstarSettings

    options = job_options(FlowstarSettings())
    return {
        "timeout": options.timeout,
        "heartbeat": options.heartbeat,
        "retries": options.retries,
        "retry_delay": options.retry_delay,
        "retry_backoff": options.retry_backoff,
        "ttl": options.ttl,
    }


async def _noop(ctx: dict[str, Any], **kwargs: Any) -> None:
    return None


async def _chain(ctx: dict[str, Any], *, prefix: str, left: int, prev_end: float | None = None) -> dict[str, Any]:
    """A raw SAQ job that enqueues the next one of its chain: SAQ's own hop, for comparison."""
    from saq.job import Job

    started = time.time()
    if left > 1:
        end = time.time()  # like a flowstar step's completed_at: before anything is sent
        await ctx["worker"].queue.enqueue(
            Job(
                function=RAW_CHAIN_FUNCTION,
                key=f"{prefix}-{left - 1}",
                kwargs={"prefix": prefix, "left": left - 1, "prev_end": end},
                **_raw_job_options(),
            )
        )
    return {"started": started, "prev_end": prev_end}


def raw_settings() -> dict[str, Any]:
    """``python -m saq bench_saq.raw_settings``: a plain SAQ worker with our worker's knobs."""
    from saq.queue.redis import RedisQueue

    from flowstar.saq.worker import build_settings
    from flowstar.settings import FlowstarSettings

    config = FlowstarSettings.from_env()
    # Only read for its timers (every upkeep loop wakes once a second, so a stopped worker
    # exits promptly) and knobs; its startup never runs.
    ours = build_settings(config)
    assert config.redis_url
    return _gated(
        {
            "queue": RedisQueue.from_url(config.redis_url, name=config.queue),
            "functions": [(RAW_FUNCTION, _noop), (RAW_CHAIN_FUNCTION, _chain)],
            "concurrency": config.concurrency,
            "timers": ours["timers"],
            "dequeue_timeout": ours["dequeue_timeout"],
            "shutdown_grace_period_s": ours["shutdown_grace_period_s"],
        }
    )


def flowstar_settings() -> dict[str, Any]:
    """``python -m saq bench_saq.flowstar_settings``: ``worker.settings`` plus the gate."""
    from flowstar.saq.worker import build_settings

    return _gated(build_settings())


# -- processes -----------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``); 0.0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


@dataclass
class Bench:
    """The servers, names and options of one run."""

    args: argparse.Namespace
    database_url: str
    redis_url: str
    workdir: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    redis: Any = None
    db: Any = None
    gates: int = 0
    settings_module: str = "bench_saq"

    def queue_name(self, side: str) -> str:
        return f"bench-saq-{self.run_id}-{side}"

    def env(self, queue: str, gate: str, profile: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWSTAR_", "BENCH_SAQ_"))}
        env.update(
            FLOWSTAR_DATABASE_URL=self.database_url,
            FLOWSTAR_REDIS_URL=self.redis_url,
            FLOWSTAR_QUEUE=queue,
            FLOWSTAR_REGISTRY="bench_saq:registry",
            FLOWSTAR_CONCURRENCY=str(self.args.concurrency),
            BENCH_SAQ_GATE=gate,
            BENCH_SAQ_REDIS_URL=self.redis_url,
            PYTHONPATH=os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH")])),
            PYTHONUNBUFFERED="1",
        )
        if profile:
            env["BENCH_SAQ_PROFILE"] = profile
        return env

    def spawn(self, settings: str, queue: str, count: int, profile: str | None = None) -> tuple[str, list[Worker]]:
        """Start ``count`` worker processes behind one gate; returns the gate and the workers."""
        self.gates += 1
        gate = f"bench-saq-{self.run_id}:gate:{self.gates}"
        workers = []
        for n in range(count):
            path = self.workdir / f"{gate.rsplit(':', 1)[-1]}-{settings}-{n}.log"
            with path.open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "saq", f"{self.settings_module}.{settings}", "-q"],
                    cwd=str(BENCH_DIR),
                    env=self.env(queue, gate, profile if n == 0 else None),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            workers.append(Worker(f"{settings}-{n}", proc, path))
        return gate, workers

    async def ready(self, gate: str, workers: list[Worker], limit_s: float = 60.0) -> None:
        """Wait until every worker of ``gate`` finished its startup and waits for go."""
        deadline = time.monotonic() + limit_s
        while await self.redis.llen(f"{gate}:ready") < len(workers):
            for worker in workers:
                if worker.proc.poll() is not None:
                    raise RuntimeError(f"worker {worker.name} exited with {worker.proc.returncode}:\n{worker.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers of {gate} not ready after {limit_s}s")
            await asyncio.sleep(0.05)

    async def go(self, gate: str, workers: list[Worker]) -> float:
        """Release the workers; returns the wall-clock time of go."""
        log(f"  go: {len(workers)} worker(s) of {gate}")
        at = time.time()
        await self.redis.rpush(f"{gate}:go", *["go"] * len(workers))
        return at

    async def stop(self, workers: list[Worker], limit_s: float = 30.0) -> None:
        """SIGTERM (SAQ's graceful shutdown), SIGKILL whatever is left after ``limit_s``."""
        log(f"  stopping {len(workers)} worker(s)")
        for worker in workers:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + limit_s
        for worker in workers:
            try:
                await asyncio.to_thread(worker.proc.wait, max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                await asyncio.to_thread(worker.proc.wait)

    async def sql(self, statement: str, **params: Any) -> list[Any]:
        from sqlalchemy import text

        async with self.db.connect() as conn:
            result = await conn.execute(text(statement), params)
            return list(result.all()) if result.returns_rows else []

    async def counters(self) -> tuple[int, dict[str, int]]:
        """PostgreSQL transactions committed in the benchmark's database (autocommit statements
        included) and Redis calls per command (server-wide: other clients count too)."""
        rows = await self.sql(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        )
        stats = await self.redis.info("commandstats")
        return int(rows[0][0]), {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}

    async def truncate(self) -> None:
        from sqlalchemy import text

        from flowstar.db import metadata as tables

        async with self.db.begin() as conn:
            names = ", ".join(t.name for t in tables.sorted_tables if t.name != "workflow_definitions")
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))

    async def delete_keys(self) -> int:
        deleted = 0
        # Queue names, gates and flowstar's per-queue keys all contain the run id.
        keys = [k async for k in self.redis.scan_iter(match=f"*bench-saq-{self.run_id}*", count=1000)]
        for start in range(0, len(keys), 500):
            deleted += await self.redis.delete(*keys[start : start + 500])
        return deleted


@contextlib.asynccontextmanager
async def api_engine(bench: Bench, queue_name: str) -> AsyncIterator[Any]:
    """An API-side flowstar engine (commits and enqueues; runs no steps)."""
    from saq.queue.redis import RedisQueue

    from flowstar.saq import build_engine
    from flowstar.settings import FlowstarSettings

    settings = FlowstarSettings(
        database_url=bench.database_url,
        redis_url=bench.redis_url,
        queue=queue_name,
        registry="bench_saq:registry",
        concurrency=bench.args.concurrency,
    )
    queue = RedisQueue.from_url(bench.redis_url, name=queue_name)
    engine = build_engine(settings, queue, run_reconciler=False)
    try:
        yield engine
    finally:
        await engine.close()
        await queue.disconnect()


async def _gather_limited(calls: Iterable[Callable[[], Any]], limit: int) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Any]) -> Any:
        async with semaphore:
            return await call()

    return list(await asyncio.gather(*(one(c) for c in calls)))


# -- throughput ----------------------------------------------------------------------------------


def rates(go: float, starts: list[float], ends: list[float]) -> dict[str, Any]:
    """Throughput figures of one round from per-unit start and completion times (epoch s)."""
    ends = sorted(ends)
    n = len(ends)
    lo, hi = int(n * 0.1), max(int(n * 0.9) - 1, int(n * 0.1) + 1)
    steady = (hi - lo) / (ends[hi] - ends[lo]) if n > 10 and ends[hi] > ends[lo] else None
    return {
        "units": n,
        "seconds": round(ends[-1] - go, 4),
        "per_s": round(n / (ends[-1] - go), 1),
        "steady_per_s": round(steady, 1) if steady else None,
        "first_start_after_go_ms": round((min(starts) - go) * 1000, 1),
    }


def round_trips(before: tuple[int, dict[str, int]], after: tuple[int, dict[str, int]], units: int) -> dict[str, Any]:
    """PostgreSQL transactions and Redis calls per unit between two ``Bench.counters()``."""
    if not units:
        return {}
    calls = {k: v - before[1].get(k, 0) for k, v in after[1].items() if v > before[1].get(k, 0)}
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:12]
    return {
        "pg_transactions_per_unit": round((after[0] - before[0]) / units, 2),
        "redis_calls_per_unit": round(sum(calls.values()) / units, 2),
        "redis_calls_per_unit_by_command": {k: round(v / units, 2) for k, v in top},
    }


async def _wait_until(
    check: Callable[[], Any], limit_s: float, what: str, workers: list[Worker], interval: float = 0.1
) -> None:
    deadline = time.monotonic() + limit_s
    while not await check():
        for worker in workers:
            if worker.proc.poll() is not None:
                raise RuntimeError(f"worker {worker.name} exited with {worker.proc.returncode}:\n{worker.tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {limit_s}s waiting for {what}")
        await asyncio.sleep(interval)


async def round_raw(bench: Bench, jobs: int, label: str) -> dict[str, Any]:
    """Raw SAQ: ``jobs`` no-op jobs through one worker."""
    from saq.job import Job
    from saq.queue.redis import RedisQueue

    name = bench.queue_name("raw")
    queue = RedisQueue.from_url(bench.redis_url, name=name)
    gate, workers = bench.spawn("raw_settings", name, 1)
    try:
        options = _raw_job_options()
        keys = [f"{label}-{i}" for i in range(jobs)]
        enqueued = await _gather_limited(
            (lambda k=k: queue.enqueue(Job(function=RAW_FUNCTION, key=k, **options)) for k in keys), 20
        )
        await bench.ready(gate, workers)
        before = await bench.counters()
        cpu0 = sum(_cpu_seconds(w.proc.pid) for w in workers)
        go = await bench.go(gate, workers)
        await _wait_until(lambda: _raw_done(queue), bench.args.timeout, f"{jobs} raw jobs", workers, 0.05)
        cpu = sum(_cpu_seconds(w.proc.pid) for w in workers) - cpu0
        after = await bench.counters()
        found = [j for j in await queue.jobs(keys) if j is not None]
        complete = [j for j in found if j.status.value == "complete"]
        # SAQ's sweep aborts a job it finds in the active list before the worker has marked
        # it active (SAQ issue #277): raw SAQ loses such a job, so it is counted, not hidden.
        # Its first pass runs the moment the gate opens (SAQ starts its upkeep loops when the
        # startup hook returns), while the dequeuers move the backlog into the active list.
        swept = sum(1 for j in found if j.status.value in _SWEPT)
        result = rates(go, [j.started / 1000 for j in complete], [j.completed / 1000 for j in complete])
        result.update(
            ok=len(complete) + swept == jobs and all(j is not None for j in enqueued),
            given=jobs,
            completed=len(complete),
            lost_to_sweep=swept,
            statuses=dict(collections.Counter(j.status.value for j in found)),
            worker_cpu_s=round(cpu, 3),
            per_worker_cpu_s=round(len(complete) / cpu, 1) if cpu else None,
            **round_trips(before, after, len(complete)),
        )
        await bench.redis.delete(*[queue.job_id(k) for k in keys])
        return result
    finally:
        await bench.stop(workers)
        await queue.disconnect()


async def _raw_done(queue: Any) -> bool:
    return int(await queue.count("incomplete")) == 0


async def start_chains(engine: Any, instances: int, limit: int, **data: Any) -> list[str]:
    calls = (lambda i=i: engine.start_workflow("bench_chain", {"i": i, **data}) for i in range(instances))
    return [str(v.id) for v in await _gather_limited(calls, limit)]


async def round_flowstar(
    bench: Bench, instances: int, workers_count: int, profile: str | None = None
) -> dict[str, Any]:
    """flowstar: ``instances`` chains of 10 no-op steps through ``workers_count`` workers."""
    name = bench.queue_name("flowstar")
    await bench.truncate()
    gate, workers = bench.spawn("flowstar_settings", name, workers_count, profile)
    try:
        async with api_engine(bench, name) as engine:
            await start_chains(engine, instances, 20)
        await bench.ready(gate, workers)
        before = await bench.counters()
        cpu0 = sum(_cpu_seconds(w.proc.pid) for w in workers)
        go = await bench.go(gate, workers)

        async def done() -> bool:
            rows = await bench.sql("SELECT count(*) FROM workflow_instances WHERE status IN ('completed', 'failed')")
            return int(rows[0][0]) >= instances

        await _wait_until(done, bench.args.timeout, f"{instances} flowstar instances", workers)
        cpu = sum(_cpu_seconds(w.proc.pid) for w in workers) - cpu0
    finally:
        await bench.stop(workers)
    await asyncio.sleep(0.5)  # exited backends flush their statistics
    after = await bench.counters()
    records = await bench.sql(
        "SELECT started_at, completed_at FROM workflow_step_executions WHERE status = 'succeeded'"
    )
    statuses = dict(await bench.sql("SELECT status, count(*) FROM workflow_instances GROUP BY status"))
    result = rates(go, [r.started_at.timestamp() for r in records], [r.completed_at.timestamp() for r in records])
    complete = statuses.get("completed", 0)
    result.update(
        ok=complete == instances and len(records) == instances * CHAIN_STEPS,
        given=instances * CHAIN_STEPS,
        instances=instances,
        completed=complete,
        statuses=statuses,
        worker_cpu_s=round(cpu, 3),
        per_worker_cpu_s=round(len(records) / cpu, 1) if cpu else None,
        **round_trips(before, after, len(records)),
    )
    return result


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds.  ``units_per_round`` is the work each round was given (raw jobs
    enqueued, flowstar steps of the started chains); each round's ``units`` are the ones it
    completed, which its rates count, and raw rounds add the jobs ``lost_to_sweep``."""
    return {
        "rounds": len(rounds),
        "all_ok": all(r["ok"] for r in rounds),
        "units_per_round": rounds[0]["given"] if rounds else 0,
        "units_lost_to_sweep": sum(r.get("lost_to_sweep", 0) for r in rounds),
        "median_per_s": _median([r["per_s"] for r in rounds]),
        "median_steady_per_s": _median([r["steady_per_s"] for r in rounds if r["steady_per_s"]]),
        "median_per_worker_cpu_s": _median([r["per_worker_cpu_s"] for r in rounds if r["per_worker_cpu_s"]]),
        "per_round": rounds,
    }


async def throughput(bench: Bench) -> dict[str, Any]:
    args = bench.args
    runs: dict[str, Callable[[int], Any]] = {
        "raw_saq": lambda scale: round_raw(bench, scale * args.instances * CHAIN_STEPS, f"r{uuid.uuid4().hex[:6]}"),
        "flowstar_1w": lambda scale: round_flowstar(bench, scale * args.instances, 1),
        "flowstar_2w": lambda scale: round_flowstar(bench, scale * args.instances, 2),
    }
    sides = [side for side in SIDES if side in args.sides]
    for side in sides if args.warmup else ():
        log(f"warm-up {side}")
        await runs[side](1)
    rounds: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for n in range(args.rounds):
        order = sides if n % 2 == 0 else list(reversed(sides))
        for side in order:
            outcome = await runs[side](1)
            rounds[side].append(outcome)
            log(
                f"round {n + 1}/{args.rounds} {side:12} {outcome['units']:6} units {outcome['per_s']:8.1f}/s "
                f"steady {outcome['steady_per_s']}/s cpu {outcome['per_worker_cpu_s']}/cpu-s ok={outcome['ok']}"
            )
    result = {side: summarize(rounds[side]) for side in sides}
    raw, one, two = (result.get(s, {}) for s in SIDES)

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a and b else None

    result["ratios"] = {
        "flowstar_1w_vs_raw": ratio(one.get("median_per_s"), raw.get("median_per_s")),
        "flowstar_1w_vs_raw_steady": ratio(one.get("median_steady_per_s"), raw.get("median_steady_per_s")),
        "flowstar_1w_vs_raw_per_cpu": ratio(one.get("median_per_worker_cpu_s"), raw.get("median_per_worker_cpu_s")),
        "flowstar_2w_vs_1w": ratio(two.get("median_per_s"), one.get("median_per_s")),
        "flowstar_2w_vs_1w_steady": ratio(two.get("median_steady_per_s"), one.get("median_steady_per_s")),
    }
    return result


# -- latency -------------------------------------------------------------------------------------


def percentiles(values_ms: list[float]) -> dict[str, Any]:
    if not values_ms:
        return {"n": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values_ms)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))], 2)

    return {"n": len(ordered), "p50_ms": pick(0.5), "p90_ms": pick(0.9), "p99_ms": pick(0.99), "max_ms": pick(1.0)}


def _ms(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000


async def _records_by_instance(bench: Bench, workflow: str) -> dict[str, dict[str, Any]]:
    rows = await bench.sql(
        "SELECT r.instance_id::text AS iid, r.step_name, r.status, r.started_at, r.completed_at, i.context_data"
        " FROM workflow_step_executions r JOIN workflow_instances i ON i.id = r.instance_id"
        " WHERE i.workflow_name = :w AND i.status = 'completed'",
        w=workflow,
    )
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = found.setdefault(row.iid, {"data": row.context_data})
        entry[row.step_name] = row
    return found


async def _wait_completed(
    bench: Bench, workflow: str, count: int, limit_s: float, workers: list[Worker]
) -> dict[str, int]:
    async def done() -> bool:
        rows = await bench.sql(
            "SELECT count(*) FROM workflow_instances WHERE workflow_name = :w AND status IN ('completed', 'failed')",
            w=workflow,
        )
        return int(rows[0][0]) >= count

    try:
        await _wait_until(done, limit_s, f"{count} {workflow} instances", workers)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; unfinished: {await unfinished(bench, workflow)}") from None
    return dict(
        await bench.sql(
            "SELECT status, count(*) FROM workflow_instances WHERE workflow_name = :w GROUP BY status", w=workflow
        )
    )


async def unfinished(bench: Bench, workflow: str, limit: int = 5) -> list[dict[str, Any]]:
    """Diagnostics for a timeout: unfinished instances, their tokens and their SAQ jobs."""
    from saq.queue.redis import RedisQueue

    from flowstar.saq import job_key

    rows = await bench.sql(
        "SELECT id::text AS id, status, current_step, tokens, updated_at FROM workflow_instances"
        " WHERE workflow_name = :w AND status NOT IN ('completed', 'failed') LIMIT :n",
        w=workflow,
        n=limit,
    )
    found = []
    for row in rows:
        jobs: dict[str, Any] = {}
        for token_id in row.tokens or {}:
            raw = [k async for k in bench.redis.scan_iter(match=f"saq:job:*:{job_key(token_id)}", count=1000)]
            for key in raw:
                queue = RedisQueue(bench.redis, name=key.decode().split(":")[2])
                job = await queue.job(job_key(token_id))
                jobs[token_id] = None if job is None else {"status": job.status.value, "attempts": job.attempts}
        found.append(
            {
                "id": row.id,
                "status": row.status,
                "step": row.current_step,
                "tokens": row.tokens,
                "updated_at": str(row.updated_at),
                "jobs": jobs,
            }
        )
    return found


async def floor(bench: Bench, samples: int = 200) -> dict[str, Any]:
    """Round-trip times from this process: Redis ``PING`` and PostgreSQL ``SELECT 1`` (asyncpg)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(bench.database_url)
    conn = await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username, database=url.database)
    redis_ms, pg_ms = [], []
    try:
        for _ in range(samples):
            t0 = time.perf_counter()
            await bench.redis.ping()
            t1 = time.perf_counter()
            await conn.fetchval("SELECT 1")
            t2 = time.perf_counter()
            redis_ms.append((t1 - t0) * 1000)
            pg_ms.append((t2 - t1) * 1000)
    finally:
        await conn.close()
    return {"redis_ping": percentiles(redis_ms), "postgres_select_1": percentiles(pg_ms)}


async def raw_hops(bench: Bench, name: str, gate: str, workers: list[Worker]) -> dict[str, Any]:
    """Raw SAQ's hop at the same light load: chains of 10 jobs, each job enqueueing the next."""
    from saq.job import Job
    from saq.queue.redis import RedisQueue

    args = bench.args
    queue = RedisQueue.from_url(bench.redis_url, name=name)
    label = f"c{uuid.uuid4().hex[:6]}"
    keys = [f"{label}-{i}-{left}" for i in range(args.latency_instances) for left in range(CHAIN_STEPS, 0, -1)]
    try:
        await bench.go(gate, workers)
        for i in range(args.latency_instances):
            prefix = f"{label}-{i}"
            job = Job(
                function=RAW_CHAIN_FUNCTION,
                key=f"{prefix}-{CHAIN_STEPS}",
                kwargs={"prefix": prefix, "left": CHAIN_STEPS},
                **_raw_job_options(),
            )
            await queue.enqueue(job)
            await asyncio.sleep(args.latency_interval)
        await _wait_until(lambda: _raw_done(queue), args.timeout, "raw chains", workers, 0.05)
        found = [j for j in await queue.jobs(keys) if j is not None]
        jobs = [j for j in found if j.status.value == "complete"]
        # A link that SAQ's sweep aborted (SAQ issue #277) ends its chain: it and the links
        # it would have enqueued are lost; the key's last part is how many links it had left.
        lost = sum(int(j.key.rsplit("-", 1)[1]) for j in found if j.status.value in _SWEPT)
        gaps = [
            (j.result["started"] - j.result["prev_end"]) * 1000
            for j in jobs
            if isinstance(j.result, dict) and j.result.get("prev_end") is not None
        ]
        await bench.redis.delete(*[queue.job_id(k) for k in keys])
    finally:
        await bench.stop(workers)
        await queue.disconnect()
    return {
        **percentiles(gaps),
        "chains": args.latency_instances,
        "jobs": len(keys),
        "completed": len(jobs),
        "lost_to_sweep": lost,
    }


async def latency(bench: Bench) -> dict[str, Any]:
    """Step-to-step, human-task and timer latency on one flowstar worker at light load."""
    args = bench.args
    name = bench.queue_name("latency")
    await bench.truncate()
    result: dict[str, Any] = {"workers": 1, "floor": await floor(bench)}
    # Both workers start now (start-up takes seconds on a busy machine); the flowstar one
    # waits at its gate, idle, while raw SAQ's hops are measured.
    raw_name = bench.queue_name("rawlat")
    raw_gate, raw_workers = bench.spawn("raw_settings", raw_name, 1)
    gate, workers = bench.spawn("flowstar_settings", name, 1)
    try:
        await bench.ready(raw_gate, raw_workers)
        await bench.ready(gate, workers)
        log("raw SAQ hops")
        result["raw_saq_hop"] = await raw_hops(bench, raw_name, raw_gate, raw_workers)
    except BaseException:
        await bench.stop(workers)
        raise
    log("flowstar latency")
    try:
        async with api_engine(bench, name) as engine:
            await bench.ready(gate, workers)
            await bench.go(gate, workers)
            cpu0 = _cpu_seconds(workers[0].proc.pid)
            began = time.monotonic()

            # 1. step to step: one chain started every --latency-interval seconds.
            for i in range(args.latency_instances):
                await engine.start_workflow("bench_chain", {"i": i})
                await asyncio.sleep(args.latency_interval)
            statuses = await _wait_completed(bench, "bench_chain", args.latency_instances, args.timeout, workers)
            gaps: list[float] = []
            for entry in (await _records_by_instance(bench, "bench_chain")).values():
                gaps.extend(_ms(entry[b].started_at, entry[a].completed_at) for a, b in itertools.pairwise(CHAIN))
            result["step_to_step"] = {
                **percentiles(gaps),
                "instances": args.latency_instances,
                "completed": statuses.get("completed", 0),
                "offered_steps_per_s": round(CHAIN_STEPS / args.latency_interval, 1),
            }

            # 2. human task: one instance at a time.
            called: dict[str, datetime] = {}
            returned: list[float] = []
            for i in range(args.human_instances):
                view = await engine.start_workflow("bench_human", {"i": i})
                await engine.wait_for_status(view.id, WorkflowStatus.WAITING, timeout=args.timeout)
                await asyncio.sleep(0.02)
                called[str(view.id)] = datetime.now(UTC)
                t0 = time.perf_counter()
                await engine.complete_human_task(view.id, "approval", "bench@example.com", {"ok": True})
                returned.append((time.perf_counter() - t0) * 1000)
            statuses = await _wait_completed(bench, "bench_human", args.human_instances, args.timeout, workers)
            from_call, from_record = [], []
            for iid, entry in (await _records_by_instance(bench, "bench_human")).items():
                from_call.append(_ms(entry["after"].started_at, called[iid]))
                from_record.append(_ms(entry["after"].started_at, entry["approval"].completed_at))
            result["human_task"] = {
                **percentiles(from_call),
                "instances": args.human_instances,
                "completed": statuses.get("completed", 0),
                "from_task_record_completed_at": percentiles(from_record),
                "complete_human_task_call": percentiles(returned),
            }

            # 3. timers of 2-4 s, started every 0.1 s.
            rng = random.Random(7)
            for i in range(args.timer_instances):
                await engine.start_workflow("bench_timer", {"i": i, "wait": round(rng.uniform(2.0, 4.0), 3)})
                await asyncio.sleep(0.1)
            statuses = await _wait_completed(bench, "bench_timer", args.timer_instances, args.timeout + 10, workers)
            late, next_step = [], []
            for entry in (await _records_by_instance(bench, "bench_timer")).values():
                record = entry["wait"]
                due = record.started_at.timestamp() + float(entry["data"]["wait"])
                late.append((record.completed_at.timestamp() - due) * 1000)
                next_step.append((entry["after"].started_at.timestamp() - due) * 1000)
            result["timer"] = {
                **percentiles(late),
                "instances": args.timer_instances,
                "completed": statuses.get("completed", 0),
                "min_ms": round(min(late), 2) if late else None,
                "due_to_next_step_started": percentiles(next_step),
            }
            result["worker_cpu_share"] = round(
                (_cpu_seconds(workers[0].proc.pid) - cpu0) / (time.monotonic() - began), 3
            )
    finally:
        await bench.stop(workers)
    return result


async def profile_round(bench: Bench) -> dict[str, Any]:
    """One extra flowstar 1-worker round under cProfile (not timed): where the worker's time goes."""
    import pstats

    path = bench.args.profile
    outcome = await round_flowstar(bench, bench.args.instances, 1, profile=str(path))
    stats = pstats.Stats(str(path))
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (filename, line, func), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((tottime, cumtime, calls, f"{Path(filename).name}:{line}({func})"))
    top_self = sorted(rows, reverse=True)[:25]
    top_cum = sorted(rows, key=lambda r: r[1], reverse=True)[:40]
    return {
        "stats_file": str(path),
        "steps": outcome["units"],
        "profiled_seconds": round(total, 3),
        "top_self": [{"fn": r[3], "self_s": round(r[0], 3), "cum_s": round(r[1], 3), "calls": r[2]} for r in top_self],
        "top_cumulative": [
            {"fn": r[3], "self_s": round(r[0], 3), "cum_s": round(r[1], 3), "calls": r[2]} for r in top_cum
        ],
    }


# -- databases and the run -----------------------------------------------------------------------


async def _pg_admin(server_url: str, sql: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

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


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from redis.asyncio import Redis
    from sqlalchemy.engine import make_url

    from flowstar.db import create_database_engine
    from flowstar.db.migrate import upgrade_async

    db_name = f"flowstar_bench_saq_{uuid.uuid4().hex[:8]}"
    await _pg_admin(args.pg_url, f'CREATE DATABASE "{db_name}"')
    database_url = make_url(args.pg_url).set(database=db_name).render_as_string(hide_password=False)
    document: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="flowstar-bench-saq-") as tmp:
        workdir = Path(tmp)
        if args.keep_logs:
            workdir = args.keep_logs
            workdir.mkdir(parents=True, exist_ok=True)
        bench = Bench(args=args, database_url=database_url, redis_url=args.redis_url, workdir=workdir)
        bench.redis = Redis.from_url(args.redis_url)
        bench.db = create_database_engine(database_url, pool_size=2, max_overflow=2)
        try:
            await upgrade_async(database_url)
            started = time.monotonic()
            if "throughput" in args.parts:
                document["throughput"] = await throughput(bench)
            if "latency" in args.parts:
                log("latency at light load")
                document["latency"] = await latency(bench)
            if args.profile:
                log(f"profiled round -> {args.profile}")
                document["profile"] = await profile_round(bench)
            document["elapsed_s"] = round(time.monotonic() - started, 1)
        finally:
            document["redis_keys_deleted"] = await bench.delete_keys()
            await bench.redis.aclose()
            await bench.db.dispose()
            await _pg_admin(args.pg_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    return document


def targets_met(document: dict[str, Any]) -> dict[str, Any]:
    met: dict[str, Any] = {}
    ratios = document.get("throughput", {}).get("ratios", {})
    if ratios.get("flowstar_1w_vs_raw") is not None:
        met["flowstar_vs_raw"] = ratios["flowstar_1w_vs_raw"] >= TARGETS["min_flowstar_vs_raw_ratio"]
    lat = document.get("latency", {})
    if lat.get("step_to_step", {}).get("n"):
        met["step_latency_p50"] = lat["step_to_step"]["p50_ms"] <= TARGETS["step_latency_p50_ms"]
        met["step_latency_p99"] = lat["step_to_step"]["p99_ms"] <= TARGETS["step_latency_p99_ms"]
    if lat.get("timer", {}).get("n"):
        met["timer_lateness_p99"] = lat["timer"]["p99_ms"] <= TARGETS["timer_lateness_p99_ms"]
    return met


def all_completed(document: dict[str, Any]) -> bool:
    ok = True
    for side in SIDES:
        if side in document.get("throughput", {}):
            ok &= document["throughput"][side]["all_ok"]
    raw_hop = document.get("latency", {}).get("raw_saq_hop")
    if raw_hop is not None:
        ok &= raw_hop["completed"] + raw_hop["lost_to_sweep"] == raw_hop["jobs"]
    for part in ("step_to_step", "human_task", "timer"):
        entry = document.get("latency", {}).get(part)
        if entry is not None:
            ok &= entry["completed"] == entry["instances"] == entry["n"] / (9 if part == "step_to_step" else 1)
    return ok


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small N, one round, no warm-up (for tests)")
    parser.add_argument("--instances", type=int, default=200, help="chain instances per flowstar round (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per side (default 5)")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false", help="skip the untimed warm-up rounds")
    parser.add_argument("--concurrency", type=int, default=20, help="jobs per worker process (default 20, ours)")
    parser.add_argument("--latency-instances", type=int, default=60, help="chains for step latency (default 60)")
    parser.add_argument("--latency-interval", type=float, default=0.1, help="seconds between chains (default 0.1)")
    parser.add_argument("--human-instances", type=int, default=40, help="human round trips (default 40)")
    parser.add_argument("--timer-instances", type=int, default=40, help="2-4 s timers (default 40)")
    parser.add_argument("--sides", default=",".join(SIDES), help=f"throughput sides (default {','.join(SIDES)})")
    parser.add_argument("--parts", default="throughput,latency", help="throughput,latency (default both)")
    parser.add_argument("--profile", type=Path, help="also run one cProfiled flowstar round, stats to this file")
    parser.add_argument("--keep-logs", type=Path, help="write the workers' output to this directory and keep it")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds any phase may take (default 120)")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="PostgreSQL server; a database is made and dropped")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help="Redis URL with a db number (default db 11)")
    args = parser.parse_args(argv)
    if args.quick:
        args.instances, args.rounds, args.warmup = 30, 1, False
        args.latency_instances, args.human_instances, args.timer_instances = 10, 5, 6
    args.parts = [p for p in args.parts.split(",") if p]
    args.sides = [s for s in args.sides.split(",") if s]
    if set(args.sides) - set(SIDES):
        parser.error(f"unknown side in {args.sides}")
    if set(args.parts) - {"throughput", "latency"}:
        parser.error(f"unknown part in {args.parts}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    document: dict[str, Any] = {
        "benchmark": "saq",
        "config": {
            "quick": args.quick,
            "instances": args.instances,
            "steps_per_instance": CHAIN_STEPS,
            "raw_jobs_per_round": args.instances * CHAIN_STEPS,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "concurrency": args.concurrency,
            "latency_instances": args.latency_instances,
            "latency_interval_s": args.latency_interval,
            "human_instances": args.human_instances,
            "timer_instances": args.timer_instances,
            "workers": "subprocesses: python -m saq bench_saq.raw_settings | bench_saq.flowstar_settings",
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": {p: metadata.version(p) for p in ("flowstar", "saq", "redis", "sqlalchemy", "asyncpg")},
        "targets": dict(TARGETS),
    }
    document.update(asyncio.run(run(args)))
    document["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    document["targets_met"] = targets_met(document)
    document["all_completed"] = all_completed(document)
    print(json.dumps(document, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
