"""Redis holds only work in flight: losing it (FLUSHDB), a lost job, a stopped worker with
timers pending, none of it loses an instance.  And the job options are what we set."""

from __future__ import annotations

import asyncio
import socket
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from tests.conftest import require_executable
from tests.integration.saq_support import (
    SaqEnv,
    WorkerPool,
    engine_of,
    inprocess_worker,
    side_effects,
    wait_for,
)

from flowstar import StepStatus, WorkflowStatus
from flowstar.model.state import Token
from flowstar.saq import JobOptions, SAQDispatcher, job_key
from flowstar.saq.worker import job_options

CHAIN = ("c1", "c2", "c3", "c4")


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis server of this test's own: FLUSHDB must not hit anybody else's keys."""
    executable = require_executable("redis-server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(timeout=10)


async def _records(env: SaqEnv, workflow: str) -> Counter[tuple[str, str, str]]:
    rows = await env.rows(
        "SELECT r.instance_id::text AS instance_id, r.step_name, r.status FROM workflow_step_executions r"
        " JOIN workflow_instances i ON i.id = r.instance_id WHERE i.workflow_name = :w",
        w=workflow,
    )
    return Counter((r.instance_id, r.step_name, r.status) for r in rows)


@pytest.mark.slow
async def test_flushdb_mid_run_rebuilds_every_job_and_timer(
    private_redis: str, saq_env: SaqEnv, workers: WorkerPool
) -> None:
    saq_env.redis_url = private_redis
    first, second = await asyncio.gather(workers.start("a"), workers.start("b"))
    async with saq_env.client() as client:
        chains = [str((await client.start_workflow("chain4", {"sleep": 0.05, "i": i})).id) for i in range(100)]
        timed = [str((await client.start_workflow("timed", {"delay": 4, "i": i})).id) for i in range(10)]

        async def mid_run() -> bool:
            done = await saq_env.scalar("SELECT count(*) FROM workflow_step_executions WHERE status = 'succeeded'")
            return done >= 100

        await wait_for(mid_run, within=30, what="the run to be under way")
        # Jobs queued, running and scheduled (the timers) all vanish.
        async with Redis.from_url(private_redis) as redis:
            assert await redis.zcard(f"saq:{saq_env.queue}:incomplete") > 0  # the timers at least
            await redis.flushdb()
        await saq_env.wait_all("chain4", 100, within=60)
        await saq_env.wait_all("timed", 10, within=30)

    assert await _records(saq_env, "chain4") == {(i, s, "succeeded"): 1 for i in chains for s in CHAIN}
    assert await _records(saq_env, "timed") == {(i, s, "succeeded"): 1 for i in timed for s in ("arm", "wait", "fired")}
    logs = first.output() + second.output()
    assert "full_rebuild=True" in logs, "the reconciler never noticed the lost epoch"


@pytest.mark.slow
async def test_timers_fire_after_the_only_worker_was_stopped_and_replaced(saq_env: SaqEnv, workers: WorkerPool) -> None:
    worker = await workers.start("first")
    delay = 3.0
    async with saq_env.client() as client:
        ids = [str((await client.start_workflow("timed", {"delay": delay, "i": i})).id) for i in range(10)]
        await asyncio.gather(*(client.wait_for_status(i, WorkflowStatus.WAITING, timeout=20) for i in ids))
        worker.terminate()
        assert await worker.exited(within=15) == 0
        rows = await saq_env.rows(
            "SELECT max(started_at) AS last FROM workflow_step_executions WHERE step_name = 'wait'"
        )
        due = rows[0].last + timedelta(seconds=delay)
        # Nobody runs anything while the timers come due.
        await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.5)
        assert await saq_env.count_status("timed", WorkflowStatus.WAITING) == 10
        await workers.start("second")
        done = await asyncio.gather(*(client.wait_for_status(i, timeout=20) for i in ids))
    assert {d.status for d in done} == {WorkflowStatus.COMPLETED}
    assert await _records(saq_env, "timed") == {(i, s, "succeeded"): 1 for i in ids for s in ("arm", "wait", "fired")}
    for instance in done:
        assert instance.context.get("trail") == ["arm", "fired"]


@pytest.mark.slow
async def test_timer_lateness_at_light_load(saq_env: SaqEnv) -> None:
    count = 20
    async with inprocess_worker(saq_env), saq_env.client() as client:
        ids = [str((await client.start_workflow("timed", {"delay": 1.0 + 0.15 * i, "i": i})).id) for i in range(count)]
        done = await asyncio.gather(*(client.wait_for_status(i, timeout=30) for i in ids))
        histories = [await client.get_history(i) for i in ids]
    assert {d.status for d in done} == {WorkflowStatus.COMPLETED}
    lateness = []
    for instance, history in zip(done, histories, strict=True):
        [timer] = [r for r in history if r.step_name == "wait"]
        assert timer.status is StepStatus.SUCCEEDED
        assert timer.completed_at is not None
        due = timer.started_at + timedelta(seconds=instance.context.get("delay"))
        late = (timer.completed_at - due).total_seconds()
        assert late >= 0, f"timer fired {-late:.3f}s early"
        lateness.append(late)
    lateness.sort()
    p99 = lateness[-1]  # 20 samples: the 99th percentile is the worst one
    print(
        f"\ntimer lateness over {count} timers: median {statistics.median(lateness) * 1000:.1f} ms,"
        f" p99 {p99 * 1000:.1f} ms"
    )
    assert p99 <= 0.25, lateness


async def test_reconciler_redispatches_an_activation_whose_job_was_never_enqueued(saq_env: SaqEnv) -> None:
    async with inprocess_worker(saq_env) as worker, saq_env.client() as client:
        reconciler = engine_of(worker).reconciler

        async def first_pass_done() -> bool:
            return reconciler.passes > 0

        await wait_for(first_pass_done, within=10, what="the reconciler's first pass")

        async def lost(instance_id: str, tokens: Any) -> None:
            """The process "died" between its commit and the enqueue."""

        client.saq_dispatcher.dispatch = lost  # type: ignore[method-assign]
        committed = time.monotonic()
        instance = await client.start_workflow("linear3", {"n": 1})
        done = await client.wait_for_status(instance.id, timeout=20)
        elapsed = time.monotonic() - committed
    assert done.status is WorkflowStatus.COMPLETED
    assert reconciler.redispatched >= 1
    # Only the first activation was lost: the later ones were enqueued by the worker.
    # Not before the grace period (a job may just be slow to start), and within a pass after it.
    bound = reconciler.interval + reconciler.grace
    assert elapsed >= reconciler.grace, f"re-dispatched after {elapsed:.2f}s, within the grace period"
    assert elapsed <= bound + 2.0, f"re-dispatched after {elapsed:.2f}s (bound {bound}s)"
    print(f"\nlost activation re-dispatched and finished {elapsed:.2f}s after its commit (bound {bound}s)")


async def test_reconciler_redispatches_an_activation_whose_job_was_deleted(saq_env: SaqEnv) -> None:
    async with saq_env.client() as client:
        instance = await client.start_workflow("single", {"n": 1})
        iid = str(instance.id)
        [token_id] = (await client.store.load_instance(iid)).tokens  # type: ignore[union-attr]
        queue = client.queue
        job = await queue.job(job_key(token_id))
        assert job is not None
        # Gone from Redis entirely, as if it had expired or been deleted by hand.
        await queue.redis.lrem(f"saq:{queue.name}:queued", 0, job.id)  # type: ignore[attr-defined]
        await queue.redis.zrem(f"saq:{queue.name}:incomplete", job.id)  # type: ignore[attr-defined]
        await queue.redis.delete(job.id)  # type: ignore[attr-defined]
        assert await queue.job(job_key(token_id)) is None
        async with inprocess_worker(saq_env) as worker:
            done = await client.wait_for_status(iid, timeout=20)
            assert engine_of(worker).reconciler.redispatched >= 1
    assert done.status is WorkflowStatus.COMPLETED
    assert [r.step for r in await side_effects(saq_env)] == ["only"]


async def test_job_options_are_applied_to_enqueued_jobs(saq_env: SaqEnv) -> None:
    queue = await saq_env.queue_client()
    try:
        options = JobOptions(
            timeout=123, heartbeat=7, retries=4, retry_delay=2.0, retry_backoff=20.0, ttl=99, early=1.5
        )
        dispatcher = SAQDispatcher(queue, options)
        now = datetime.now(UTC)
        ready = Token(id="ready-token", step="s", created_at=now)
        later = Token(id="timer-token", step="t", kind="timer", due_at=now + timedelta(seconds=30), created_at=now)
        await dispatcher.dispatch("instance-1", [ready, later])

        job = await queue.job(job_key("ready-token"))
        assert job is not None
        assert (job.function, job.kwargs) == (
            "flowstar.run_activation",
            {"instance_id": "instance-1", "token_id": "ready-token"},
        )
        assert (job.timeout, job.heartbeat, job.retries, job.ttl) == (123, 7, 4, 99)
        assert (job.retry_delay, job.retry_backoff, job.scheduled) == (2.0, 20.0, 0)

        timer = await queue.job(job_key("timer-token"))
        assert timer is not None
        # Scheduled in whole seconds, early enough for SAQ's 1 s tick: the worker waits out the rest.
        wake = (now + timedelta(seconds=30)).timestamp()
        assert wake - options.early - 1 < timer.scheduled <= wake - options.early
        assert (timer.timeout, timer.heartbeat, timer.retries) == (123, 7, 4)

        # A second dispatch of a pending activation is dropped by SAQ (same key).
        assert await queue.enqueue(dispatcher.job_for("instance-1", ready)) is None
    finally:
        await queue.disconnect()

    # What a worker configured from FLOWSTAR_* uses: never SAQ's defaults.
    settings = saq_env.settings(heartbeat=2, step_timeout=600)
    from_settings = job_options(settings)
    assert (from_settings.heartbeat, from_settings.timeout) == (6, 600)
    assert from_settings.retries > 1
    assert from_settings.ttl > 0
