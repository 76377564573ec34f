"""SAQ worker processes ride out a stalled PostgreSQL, and a stalled Redis, without a restart.

A worker (``saq worker.settings``, as users run it) works against a private PostgreSQL
cluster and a private redis-server; a test freezes one of them (SIGSTOP) while steps are in
flight and timers are due, resumes it, and every workflow completes in the same worker
process, each step's outcome recorded exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from redis.asyncio import Redis
from saq.queue.redis import RedisQueue
from sqlalchemy import text
from tests.integration.private_servers import (
    PrivatePostgres,
    PrivateRedis,
    create_schema,
    private_postgres,
    private_redis_server,
)
from tests.integration.saq_support import SaqEnv, WorkerPool, wait_for
from tests.integration.saq_workflows import SIDE_EFFECTS_DDL

from flowstar import TaskStatus, WorkflowStatus
from flowstar.db import create_database_engine, metadata
from flowstar.model.errors import StoreUnavailableError, TaskAlreadyCompletedError
from flowstar.saq import SAQExecutionEngine, build_engine
from flowstar.saq.jobrun import JobRun
from flowstar.saq.lease import Lease
from flowstar.saq.worker import redis_client

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DB_TIMEOUT = 2.0
# redis-py's bound on one socket operation, set in the URL as an operator would (above the
# worker's 1 s dequeue wait, which an idle worker's BLMOVE spends on the socket).
REDIS_TIMEOUT = 2.0
# Above a bound: the event loop's scheduling, dropping a connection, a busy machine.
SLACK = 1.5
CHAIN = ("c1", "c2", "c3", "c4")


@dataclass
class FaultEnv(SaqEnv):
    """A ``SaqEnv`` whose worker processes get the small database bound too.

    Their steps record no side effects: a step body's own write to the stalled server would
    time out and fail the step (as it should, without a retry policy), and these tests are
    about the worker's calls, which they check through the step records.
    """

    def worker_env(self, **overrides: Any) -> dict[str, str]:
        env = super().worker_env(**overrides)
        env["FLOWSTAR_DB_TIMEOUT"] = str(DB_TIMEOUT)
        del env["FLOWSTAR_TEST_SIDE_EFFECTS_URL"]
        return env


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        asyncio.run(create_schema(server.url, SIDE_EFFECTS_DDL))
        yield server


@pytest.fixture(scope="module")
def redis_server() -> Iterator[PrivateRedis]:
    with private_redis_server() as server:
        yield server


@pytest.fixture
async def saq_env(
    postgres: PrivatePostgres, redis_server: PrivateRedis, unique_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FaultEnv]:
    monkeypatch.setenv("FLOWSTAR_DB_TIMEOUT", str(DB_TIMEOUT))  # the API-side client's engine
    db = create_database_engine(postgres.url, pool_size=2, max_overflow=2)
    async with db.begin() as conn:
        # SaqEnv counts instances by workflow name: every test starts from empty tables.
        tables = ", ".join([*(t.name for t in metadata.sorted_tables), "saq_side_effects"])
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    redis_url = f"{redis_server.url}/0?socket_timeout={REDIS_TIMEOUT}&socket_connect_timeout={REDIS_TIMEOUT}"
    redis = Redis.from_url(redis_url)
    fault_env = FaultEnv(database_url=postgres.url, redis_url=redis_url, queue=unique_prefix, db=db, redis=redis)
    try:
        yield fault_env
    finally:
        postgres.thaw()
        redis_server.thaw()
        await fault_env.delete_redis_keys()
        await redis.aclose()
        await db.dispose()


async def _records(env: SaqEnv, ids: list[str]) -> Counter[tuple[str, str, str]]:
    found = await env.rows(
        "SELECT instance_id::text AS instance_id, step_name, status FROM workflow_step_executions"
        " WHERE instance_id::text = ANY(:ids)",
        ids=ids,
    )
    return Counter((r.instance_id, r.step_name, r.status) for r in found)


async def _some_steps_done(env: SaqEnv, ids: list[str]) -> bool:
    done = await env.scalar(
        "SELECT count(*) FROM workflow_step_executions WHERE status = 'succeeded' AND instance_id::text = ANY(:ids)",
        ids=ids,
    )
    return int(done) > 0


async def _start_work(env: FaultEnv) -> tuple[list[str], list[str]]:
    """Chains with steps in flight, and timers due in a few seconds."""
    async with env.client() as client:
        chains = [str((await client.start_workflow("chain4", {"sleep": 0.3})).id) for _ in range(6)]
        timed = [str((await client.start_workflow("timed", {"delay": 2})).id) for _ in range(3)]
    return chains, timed


async def _assert_all_done_once(env: FaultEnv, chains: list[str], timed: list[str]) -> None:
    await env.wait_all("chain4", len(chains), within=40)
    await env.wait_all("timed", len(timed), within=40)
    assert await _records(env, chains) == {(i, s, "succeeded"): 1 for i in chains for s in CHAIN}
    assert await _records(env, timed) == {(i, s, "succeeded"): 1 for i in timed for s in ("arm", "wait", "fired")}


# What a worker logs once the stall hit it: the fault lasts at least that long.
_FELT = {
    "postgres": "StoreUnavailableError",
    "redis": "Timeout reading from",
}


@pytest.mark.parametrize("stalled", ["postgres", "redis"])
async def test_a_worker_comes_back_by_itself_after_a_server_stalled(
    saq_env: FaultEnv, workers: WorkerPool, request: pytest.FixtureRequest, stalled: str
) -> None:
    server: PrivatePostgres | PrivateRedis = request.getfixturevalue(
        "postgres" if stalled == "postgres" else "redis_server"
    )
    worker = await workers.start(stalled)
    chains, timed = await _start_work(saq_env)
    await wait_for(lambda: _some_steps_done(saq_env, chains), within=20, what="steps in flight")
    seen = len(worker.output())

    async def felt() -> bool:
        return _FELT[stalled] in worker.output()[seen:]

    with server.stalled():
        # Until the worker's own calls failed on it (commits, loads, dequeues, heartbeats).
        await wait_for(felt, within=20, interval=0.1, what=f"the worker to notice the {stalled} stall")
    await _assert_all_done_once(saq_env, chains, timed)
    assert worker.proc.poll() is None, worker.output()[-3000:]


class _CancelLosingLease(Lease):
    """A lease whose renewal loses a cancellation, as redis-py's ``wait_for`` does on Python 3.11.

    (There the request completes in the same loop pass that the cancellation lands in, and
    ``asyncio.wait_for`` returns the result instead of raising; the window is too narrow to
    hit on purpose, so the renewal here swallows the cancellation outright.)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.renewing = asyncio.Event()

    async def extend(self) -> bool:
        self.renewing.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        return await super().extend()


async def test_a_heartbeat_whose_cancellation_was_lost_in_redis_still_stops(saq_env: FaultEnv) -> None:
    async with saq_env.client() as engine:
        lease = _CancelLosingLease(engine.redis, f"flowstar:{saq_env.queue}:lease:t", owner="me", ttl_ms=5000)
        assert await lease.acquire()
        step: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        beat = asyncio.create_task(engine._beat(JobRun("i", lease=lease), 0.01, step))
        await asyncio.wait_for(lease.renewing.wait(), 5)
        beat.cancel()
        # A beat that carried on would keep its finished job alive and the lease held for ever.
        done, _ = await asyncio.wait({beat}, timeout=5)
        assert done == {beat}
        assert beat.cancelled()
        assert not step.done()
        await lease.release()


async def _fails_within(bound: float, call: Awaitable[Any]) -> None:
    """``call`` raises ``StoreUnavailableError`` after about ``bound`` seconds."""
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        await call
    elapsed = time.monotonic() - started
    assert bound - 0.1 <= elapsed < bound + SLACK, f"failed after {elapsed:.2f}s, bound {bound}s"


async def _complete_again(client: SAQExecutionEngine, instance_id: UUID) -> str:
    try:
        await client.complete_human_task(instance_id, "manager_approval", "manager", {"approved": True})
    except TaskAlreadyCompletedError:
        return "already completed"
    return "completed"


async def _approval_finished_once(env: FaultEnv, client: SAQExecutionEngine, instance_id: UUID) -> None:
    done = await client.wait_for_status(instance_id, WorkflowStatus.COMPLETED, timeout=30, poll_interval=0.2)
    assert done.context.get("status") == "processed"
    history = sorted((h.step_name, h.status.value) for h in await client.get_history(instance_id))
    assert history == [("manager_approval", "succeeded"), ("process", "succeeded"), ("submit", "succeeded")]
    tasks = await env.rows("SELECT status FROM workflow_human_tasks WHERE instance_id = :i", i=instance_id)
    assert [t.status for t in tasks] == [TaskStatus.COMPLETED.value]


async def _singles_finished_once(env: FaultEnv, count: int) -> None:
    await env.wait_all("single", count, within=30)
    ids = [str(r.id) for r in await env.rows("SELECT id FROM workflow_instances WHERE workflow_name = 'single'")]
    assert len(ids) == count
    assert await _records(env, ids) == {(i, "only", "succeeded"): 1 for i in ids}


async def _waiting_for_approval(client: SAQExecutionEngine) -> UUID:
    started = await client.start_workflow("approval_workflow", {"request_id": "R-1", "amount": 5.0})
    await client.wait_for_status(started.id, WorkflowStatus.WAITING, timeout=20, poll_interval=0.2)
    return started.id


async def test_saq_calls_on_a_stalled_postgres_fail_within_the_bound_and_apply_once(
    saq_env: FaultEnv, workers: WorkerPool, postgres: PrivatePostgres
) -> None:
    await workers.start("api-pg")
    async with saq_env.client() as client:
        instance_id = await _waiting_for_approval(client)
        with postgres.stalled():
            await _fails_within(
                DB_TIMEOUT,
                client.complete_human_task(instance_id, "manager_approval", "manager", {"approved": True}),
            )
            await _fails_within(DB_TIMEOUT, client.start_workflow("single", {}))
        # Resumed: each outcome committed once or not at all, and a retry agrees with the rows.
        tasks = await saq_env.rows("SELECT status FROM workflow_human_tasks WHERE instance_id = :i", i=instance_id)
        applied = [t.status for t in tasks] == [TaskStatus.COMPLETED.value]
        assert await _complete_again(client, instance_id) == ("already completed" if applied else "completed")
        await _approval_finished_once(saq_env, client, instance_id)
        started = await saq_env.count_status("single", WorkflowStatus.PENDING)
        started += await saq_env.count_status("single", WorkflowStatus.RUNNING)
        started += await saq_env.count_status("single", WorkflowStatus.COMPLETED)
        assert started <= 1
        await client.start_workflow("single", {})
        await _singles_finished_once(saq_env, started + 1)


async def test_saq_calls_on_a_stalled_redis_commit_once_within_the_bound(
    saq_env: FaultEnv, workers: WorkerPool, redis_server: PrivateRedis
) -> None:
    await workers.start("api-redis")
    # The client as an API process builds it (flowstar's Redis client: one retry).
    settings = saq_env.settings()
    client = build_engine(settings, RedisQueue(redis_client(settings), name=settings.queue), run_reconciler=False)
    try:
        instance_id = await _waiting_for_approval(client)
        with redis_server.stalled():
            # The outcome is committed in the database; its job could not be enqueued: the
            # call says so in the log and returns, and the reconciler enqueues the job later.
            await client.complete_human_task(instance_id, "manager_approval", "manager", {"approved": True})
            started = await client.start_workflow("single", {})
        assert await _complete_again(client, instance_id) == "already completed"
        await _approval_finished_once(saq_env, client, instance_id)
        assert (await client.get_instance(started.id)).id == started.id
        await _singles_finished_once(saq_env, 1)
    finally:
        await client.close()
        await client.queue.disconnect()
