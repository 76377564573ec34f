"""Worker processes (``saq worker.settings``) sharing the work, dying and shutting down.

Step bodies record themselves in ``saq_side_effects`` before working (see
``saq_workflows.py``): bodies may run more than once after a crash, committed outcomes
(step records) never do.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from saq.job import Job, Status
from saq.utils import now
from tests.integration.saq_support import SaqEnv, WorkerPool, side_effects, wait_for
from tests.integration.saq_workflows import FANOUT

from flowstar import WorkflowStatus
from flowstar.engine.clock import ManualClock
from flowstar.saq import build_settings
from flowstar.saq.redis_queue import FlowstarRedisQueue

CHAIN = ("c1", "c2", "c3", "c4")


async def _start_many(client: Any, workflow: str, count: int, data: dict[str, Any]) -> list[str]:
    semaphore = asyncio.Semaphore(8)

    async def one(i: int) -> str:
        async with semaphore:
            return str((await client.start_workflow(workflow, {**data, "i": i})).id)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _succeeded_records(env: SaqEnv, workflow: str) -> Counter[tuple[str, str, str]]:
    rows = await env.rows(
        "SELECT r.instance_id::text AS instance_id, r.step_name, r.status FROM workflow_step_executions r"
        " JOIN workflow_instances i ON i.id = r.instance_id WHERE i.workflow_name = :w",
        w=workflow,
    )
    return Counter((r.instance_id, r.step_name, r.status) for r in rows)


async def _contexts(env: SaqEnv, workflow: str) -> dict[str, dict[str, Any]]:
    rows = await env.rows(
        "SELECT id::text AS id, context_data FROM workflow_instances WHERE workflow_name = :w", w=workflow
    )
    return {r.id: r.context_data for r in rows}


@pytest.mark.slow
async def test_two_workers_share_the_work(saq_env: SaqEnv, workers: WorkerPool) -> None:
    first, second = await asyncio.gather(workers.start("a"), workers.start("b"))
    async with saq_env.client() as client:
        ids = await _start_many(client, "linear3", 200, {"sleep": 0.01})
        await saq_env.wait_all("linear3", 200, within=60)
    records = await _succeeded_records(saq_env, "linear3")
    assert records == {(i, s, "succeeded"): 1 for i in ids for s in ("one", "two", "three")}
    contexts = await _contexts(saq_env, "linear3")
    assert all(c["trail"] == ["one", "two", "three"] for c in contexts.values())
    by_pid = Counter(r.pid for r in await side_effects(saq_env))
    assert set(by_pid) == {first.pid, second.pid}, by_pid
    # Both did a real share, not a token step or two.
    assert min(by_pid.values()) >= 60, by_pid
    # The pid a step saw is the one recorded in its committed output.
    outputs = await saq_env.rows("SELECT output_data FROM workflow_step_executions")
    assert {o.output_data["pid"] for o in outputs} == {first.pid, second.pid}


async def _in_flight_tokens(env: SaqEnv, pid: int) -> dict[str, str]:
    """Activations whose body ``pid`` started and nobody committed: token id -> instance id."""
    started = {
        (r.instance_id, r.step)
        for r in await env.rows("SELECT instance_id, step FROM saq_side_effects WHERE pid = :p", p=pid)
    }
    rows = await env.rows("SELECT id::text AS id, tokens FROM workflow_instances WHERE status = 'running'")
    return {
        token_id: row.id
        for row in rows
        for token_id, token in (row.tokens or {}).items()
        if (row.id, token["step"]) in started
    }


async def _stranded(queue: Any, tokens: dict[str, str], killed_at_ms: int) -> set[str]:
    """Tokens whose job still sits "active" with the dead worker (not handed back yet)."""
    jobs = await queue.jobs([f"act:{t}" for t in tokens])
    return {
        t
        for t, job in zip(tokens, jobs, strict=True)
        if job is not None and job.status.name in ("ACTIVE", "ABORTING") and job.started <= killed_at_ms
    }


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_sigkill_one_worker_repeatedly_loses_nothing_and_commits_once(
    saq_env: SaqEnv, workers: WorkerPool
) -> None:
    count, kills = 500, 3
    steady, victim = await asyncio.gather(workers.start("steady"), workers.start("victim-0"))
    killed: list[int] = []
    rescues: list[float] = []
    stranded_total = 0
    queue = await saq_env.queue_client()
    async with saq_env.client() as client:
        ids = await _start_many(client, "chain4", count, {"sleep": 0.1})
        for round_ in range(kills):
            pid = victim.pid

            async def victim_busy(pid: int = pid) -> bool:
                return len(await _in_flight_tokens(saq_env, pid)) >= 3

            await wait_for(victim_busy, within=30, what=f"victim {round_} to be running steps")
            victim.kill()
            killed_at = time.time()
            assert await victim.exited(within=10) == -9
            killed.append(pid)
            in_flight = await _in_flight_tokens(saq_env, pid)
            stranded = await _stranded(queue, in_flight, int(killed_at * 1000))
            stranded_total += len(stranded)

            async def handed_back(tokens: set[str] = stranded) -> bool:
                return not await _stranded(queue, dict.fromkeys(tokens, ""), int(killed_at * 1000))

            # The jobs the dead worker held go back to the queue (the reconciler notices
            # the missed heartbeats and the expired leases).
            await wait_for(handed_back, within=30, interval=0.1, what="the dead worker's jobs to be handed back")
            rescues.append(time.time() - killed_at)
            victim = await workers.start(f"victim-{round_ + 1}")
        await saq_env.wait_all("chain4", count, within=120)
    await queue.disconnect()

    assert stranded_total > 0, "no kill caught a step in flight"
    records = await _succeeded_records(saq_env, "chain4")
    # Exactly one committed outcome per step of every instance, and no other record.
    assert records == {(i, s, "succeeded"): 1 for i in ids for s in CHAIN}
    contexts = await _contexts(saq_env, "chain4")
    assert len(contexts) == count
    for iid, data in contexts.items():
        assert data["trail"] == list(CHAIN), (iid, data)
    bodies = Counter((r.instance_id, r.step) for r in await side_effects(saq_env))
    assert set(bodies) == {(i, s) for i in ids for s in CHAIN}
    by_pid = Counter(r.pid for r in await side_effects(saq_env))
    assert all(by_pid[pid] > 0 for pid in killed)
    assert by_pid[steady.pid] > 0
    print(
        f"\nSIGKILL x{kills}: {stranded_total} jobs stranded, handed back after"
        f" {[round(r, 2) for r in rescues]} s; re-run bodies {sum(n - 1 for n in bodies.values())}"
    )


@pytest.mark.slow
async def test_fan_out_across_two_workers_joins_exactly_once(saq_env: SaqEnv, workers: WorkerPool) -> None:
    first, second = await asyncio.gather(workers.start("a"), workers.start("b"))
    count = 20
    async with saq_env.client() as client:
        ids = await _start_many(client, "fanout", count, {"sleep": 0.05})
        await saq_env.wait_all("fanout", count, within=60)
    branches = [f"b{n}" for n in range(FANOUT)]
    records = await _succeeded_records(saq_env, "fanout")
    assert records == {(i, s, "succeeded"): 1 for i in ids for s in ["split", *branches, "join"]}
    bodies = Counter((r.instance_id, r.step) for r in await side_effects(saq_env))
    assert all(bodies[(i, "join")] == 1 for i in ids), bodies
    contexts = await _contexts(saq_env, "fanout")
    for data in contexts.values():
        # Every branch's write was merged before the join ran, and kept after it.
        assert data["joined"] == sorted(f"{b}_value" for b in branches)
        assert all(data[f"{b}_value"] == b.upper() for b in branches)
    # The branches of one instance really ran in both processes.
    pids = {r.pid for r in await side_effects(saq_env) if r.step.startswith("b")}
    assert pids == {first.pid, second.pid}


@pytest.mark.slow
async def test_sigterm_lets_the_running_step_finish_or_hands_it_back(saq_env: SaqEnv, workers: WorkerPool) -> None:
    leaving = await workers.start("leaving", concurrency=4)
    async with saq_env.client() as client:
        ids = await _start_many(client, "single", 4, {"sleep": 2})

        async def all_running() -> bool:
            return await saq_env.scalar("SELECT count(*) FROM saq_side_effects WHERE pid = :p", p=leaving.pid) == 4

        await wait_for(all_running, within=20, what="four steps running")
        stayer = workers.spawn("staying")
        leaving.terminate()
        # SAQ's graceful stop: the steps finish (2 s) within the grace period, then it exits.
        assert await leaving.exited(within=20) == 0
        await stayer.ready()
        done = await asyncio.gather(*(client.wait_for_status(i, timeout=30) for i in ids))
    assert {d.status for d in done} == {WorkflowStatus.COMPLETED}
    records = await _succeeded_records(saq_env, "single")
    assert records == {(i, "only", "succeeded"): 1 for i in ids}
    # Committed by the leaving worker itself: nothing had to be re-run.
    assert Counter(r.pid for r in await side_effects(saq_env)) == {leaving.pid: 4}


@pytest.mark.slow
async def test_sigterm_hands_back_a_step_longer_than_the_grace_period(saq_env: SaqEnv, workers: WorkerPool) -> None:
    leaving = await workers.start("leaving", concurrency=2, shutdown_grace=1)
    async with saq_env.client() as client:
        ids = await _start_many(client, "single", 2, {"sleep": 4})

        async def all_running() -> bool:
            return await saq_env.scalar("SELECT count(*) FROM saq_side_effects WHERE pid = :p", p=leaving.pid) == 2

        await wait_for(all_running, within=20, what="two steps running")
        stayer = workers.spawn("staying")
        leaving.terminate()
        # After the grace period SAQ cancels the steps and puts their jobs back.
        assert await leaving.exited(within=10) == 0
        await stayer.ready()
        done = await asyncio.gather(*(client.wait_for_status(i, timeout=30) for i in ids))
    assert {d.status for d in done} == {WorkflowStatus.COMPLETED}
    assert await _succeeded_records(saq_env, "single") == {(i, "only", "succeeded"): 1 for i in ids}
    # Each body ran twice (cancelled, then again elsewhere); the stayer's run committed.
    assert Counter(r.pid for r in await side_effects(saq_env)) == {leaving.pid: 2, stayer.pid: 2}
    outputs = await saq_env.rows("SELECT output_data FROM workflow_step_executions")
    assert {o.output_data["pid"] for o in outputs} == {stayer.pid}


# The sweep of dead jobs against a worker's dequeue.  A worker moves a job into the active
# list, then marks it active a moment later; workers sweep every second and, with SAQ's own
# sweep, took a job caught in between for a dead one: the worker's abort check cancelled
# the step it had just started and the job ran again (the SIGTERM test above then saw the
# staying worker run each body twice).  The tests below drive the worker's queue by hand.

# The heartbeat of the jobs below: how long a dequeued job may go unmarked.
HEARTBEAT = 3


@contextlib.asynccontextmanager
async def _worker_queue(env: SaqEnv, clock: ManualClock | None = None) -> AsyncIterator[FlowstarRedisQueue]:
    """The queue a worker process builds for ``env`` (``build_settings``), on this loop."""
    queue = build_settings(env.settings(), logs=False)["queue"]
    assert isinstance(queue, FlowstarRedisQueue)
    if clock is not None:
        queue.clock = clock
    await queue.connect()
    try:
        yield queue
    finally:
        await queue.disconnect()


async def _taken(queue: FlowstarRedisQueue, key: str, **options: Any) -> Job:
    """A job a worker has just dequeued: in the active list, its record still queued."""
    await queue.enqueue(Job(function="flowstar.run_activation", key=key, heartbeat=HEARTBEAT, retries=5, **options))
    job = await _dequeued(queue, key)
    assert job.status is Status.QUEUED
    return job


async def _dequeued(queue: FlowstarRedisQueue, key: str) -> Job:
    """Dequeue as a worker does; the job must be ``key``."""
    job = await queue.dequeue(timeout=1)
    assert job is not None
    assert job.key == key
    return job


async def _stored(queue: FlowstarRedisQueue, key: str) -> Job:
    """The job's record in Redis."""
    job = await queue.job(key)
    assert job is not None
    return job


async def _mark_active(job: Job, started: int | None = None) -> None:
    """What ``saq.Worker.process`` does right after dequeueing."""
    job.attempts += 1
    await job.update(status=Status.ACTIVE, started=now() if started is None else started)


async def _sweep_now(queue: FlowstarRedisQueue, abort: float = 0.2) -> list[str]:
    """One sweep pass at once: the lock a pass holds for the sweep interval is dropped first."""
    await queue.redis.delete(queue.namespace("sweep"))
    return await queue.sweep(lock=1, abort=abort)


async def _active_ids(queue: FlowstarRedisQueue) -> list[str]:
    """The ids in the queue's active list (jobs some worker has taken)."""
    return [i.decode() for i in await queue.redis.lrange(queue.namespace("active"), 0, -1)]


async def test_a_sweep_right_after_a_dequeue_leaves_the_job_to_its_worker(saq_env: SaqEnv) -> None:
    async with _worker_queue(saq_env) as queue:
        job = await _taken(queue, "act:just-taken")
        assert await _sweep_now(queue) == []
        stored = await _stored(queue, job.key)
        assert (stored.status, stored.error) == (Status.QUEUED, None)
        assert await _active_ids(queue) == [job.id]
        await _mark_active(job)
        assert await _sweep_now(queue) == []
        await job.finish(Status.COMPLETE, result="ran")
        stored = await _stored(queue, job.key)
        assert (stored.status, stored.attempts, stored.error) == (Status.COMPLETE, 1, None)
        # Nothing was queued again behind the worker's back.
        assert await queue.count("incomplete") == 0


async def test_a_job_whose_worker_died_before_marking_it_is_swept_after_its_heartbeat(saq_env: SaqEnv) -> None:
    clock = ManualClock()
    async with _worker_queue(saq_env, clock) as queue:
        job = await _taken(queue, "act:orphaned", retry_delay=0.0)
        assert await _sweep_now(queue) == []
        clock.advance(HEARTBEAT - 0.1)
        assert await _sweep_now(queue) == []
        clock.advance(0.2)
        assert await _sweep_now(queue) == [job.id]
        assert await _active_ids(queue) == []
        again = await _dequeued(queue, job.key)
        assert (again.status, again.error) == (Status.QUEUED, queue.swept_error_message)


async def test_a_job_dequeued_again_after_a_retry_gets_a_fresh_grace(saq_env: SaqEnv) -> None:
    clock = ManualClock()
    async with _worker_queue(saq_env, clock) as queue:
        job = await _taken(queue, "act:retried", retry_delay=0.0)
        assert await _sweep_now(queue) == []
        await _mark_active(job)
        await queue.retry(job, "step infrastructure error")
        clock.advance(HEARTBEAT + 0.5)
        # Seen once unmarked before, but this is a new delivery: its worker gets its own grace.
        await _dequeued(queue, job.key)
        assert await _sweep_now(queue) == []
        clock.advance(HEARTBEAT + 0.1)
        assert await _sweep_now(queue) == [job.id]


async def test_a_swept_job_its_worker_finished_meanwhile_is_not_queued_again(saq_env: SaqEnv) -> None:
    async with _worker_queue(saq_env) as queue:
        job = await _taken(queue, "act:slow", timeout=5)
        # Running for longer than its timeout: the sweep takes it for stuck and aborts it.
        await _mark_active(job, started=now() - 10_000)
        sweep = asyncio.create_task(_sweep_now(queue, abort=10))

        async def aborting() -> bool:
            return (await _stored(queue, job.key)).status is Status.ABORTING

        await wait_for(aborting, within=5, what="the sweep to abort the job")
        # Its worker was alive and finishes it before it noticed the abort.
        await job.finish(Status.COMPLETE, result="ran")
        assert await asyncio.wait_for(sweep, 5) == [job.id]
        stored = await _stored(queue, job.key)
        assert (stored.status, stored.result) == (Status.COMPLETE, "ran")
        assert await queue.count("incomplete") == 0
