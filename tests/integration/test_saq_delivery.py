"""Duplicate deliveries of one activation: one body at a time (the lease), one commit."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration import saq_workflows
from tests.integration.saq_support import SaqEnv, inprocess_worker, side_effects, wait_for

from flowstar import WorkflowStatus
from flowstar.model.state import Token
from flowstar.saq import job_key
from flowstar.saq.lease import lease_key


@pytest.fixture
def bodies_recorded_here(saq_env: SaqEnv) -> Iterator[None]:
    """Step bodies run by engines of this process record their side effects too."""
    saq_workflows.SIDE_EFFECTS.engine = saq_env.db
    try:
        yield
    finally:
        saq_workflows.SIDE_EFFECTS.engine = None


async def _only_token(client: Any, instance_id: str) -> Token:
    state = await client.store.load_instance(instance_id)
    [token] = state.tokens.values()
    assert isinstance(token, Token)
    return token


async def _records(env: SaqEnv) -> list[tuple[str, str]]:
    rows = await env.rows("SELECT step_name, status FROM workflow_step_executions ORDER BY started_at")
    return [(r.step_name, r.status) for r in rows]


async def test_a_duplicate_job_finds_the_lease_taken_and_commits_nothing(saq_env: SaqEnv) -> None:
    async with inprocess_worker(saq_env), saq_env.client() as client:
        instance = await client.start_workflow("single", {"sleep": 1.5})
        iid = str(instance.id)
        token = await _only_token(client, iid)

        async def body_started() -> bool:
            return len(await side_effects(saq_env)) == 1

        async def finished(key: str) -> Any:
            job = await client.queue.job(key)
            return job if job is not None and job.status.name == "COMPLETE" else None

        await wait_for(body_started, within=10, what="the step body to start")
        # The same activation delivered again while it runs (under another key, so SAQ
        # accepts it: what a sweep or a re-enqueue after a Redis restart amounts to).
        duplicate = client.saq_dispatcher.job_for(iid, token)
        duplicate.key = f"dup:{token.id}"
        assert await client.queue.enqueue(duplicate) is not None
        dup = await wait_for(lambda: finished(duplicate.key), within=10, what="the duplicate job")
        assert dup.result == "leased-elsewhere"

        done = await client.wait_for_status(iid, timeout=10)
        assert done.status is WorkflowStatus.COMPLETED
        original = await client.queue.job(job_key(token.id))
        assert original is not None
        assert original.result == "ran"

        # And once more after the commit: the activation is no longer pending.
        late = client.saq_dispatcher.job_for(iid, token)
        late.key = f"late:{token.id}"
        await client.queue.enqueue(late)
        await wait_for(lambda: finished(late.key), within=10, what="the late duplicate")
    assert len(await side_effects(saq_env)) == 1
    assert await _records(saq_env) == [("only", "succeeded")]


@pytest.mark.usefixtures("bodies_recorded_here")
async def test_concurrent_execute_job_in_two_engines_runs_the_body_once(saq_env: SaqEnv) -> None:
    async with saq_env.client() as first, saq_env.client() as second:
        instance = await first.start_workflow("single", {"sleep": 0.5})
        iid = str(instance.id)
        token_id = (await _only_token(first, iid)).id
        results = await asyncio.gather(first.execute_job(None, iid, token_id), second.execute_job(None, iid, token_id))
        assert sorted(results) == ["leased-elsewhere", "ran"]
        done = await first.get_instance(iid)
        assert done.status is WorkflowStatus.COMPLETED
        # A third delivery after the commit runs nothing.
        assert await second.execute_job(None, iid, token_id) == "ran"
    assert len(await side_effects(saq_env)) == 1
    assert await _records(saq_env) == [("only", "succeeded")]


@pytest.mark.usefixtures("bodies_recorded_here")
async def test_a_run_whose_lease_was_taken_over_is_cancelled_and_commits_nothing(saq_env: SaqEnv) -> None:
    async with saq_env.client() as client:
        instance = await client.start_workflow("single", {"sleep": 5})
        iid = str(instance.id)
        token_id = (await _only_token(client, iid)).id
        run = asyncio.create_task(client.execute_job(None, iid, token_id))

        async def body_started() -> bool:
            return len(await side_effects(saq_env)) == 1

        await wait_for(body_started, within=10, what="the step body to start")
        # As if the lease had expired during a stall and another worker had taken it.
        await saq_env.redis.set(lease_key(client.key_prefix, token_id), "another-worker", px=10_000)
        async with asyncio.timeout(3):
            assert await run == "lease-lost"
        state = await client.get_instance(iid)
        assert state.status is WorkflowStatus.RUNNING  # still pending for the lease holder
        await saq_env.redis.delete(lease_key(client.key_prefix, token_id))
    assert await _records(saq_env) == []


@pytest.mark.usefixtures("bodies_recorded_here")
async def test_a_run_whose_lease_vanished_takes_it_again_and_commits(saq_env: SaqEnv) -> None:
    async with saq_env.client() as client:
        instance = await client.start_workflow("single", {"sleep": 2})
        iid = str(instance.id)
        token_id = (await _only_token(client, iid)).id
        run = asyncio.create_task(client.execute_job(None, iid, token_id))

        async def body_started() -> bool:
            return len(await side_effects(saq_env)) == 1

        await wait_for(body_started, within=10, what="the step body to start")
        key = lease_key(client.key_prefix, token_id)
        await saq_env.redis.delete(key)  # Redis lost it (FLUSHDB, a restart)

        async def lease_back() -> bool:
            return bool(await saq_env.redis.exists(key))

        await wait_for(lease_back, within=5, what="the lease to be taken again")
        assert await run == "ran"
        assert (await client.get_instance(iid)).status is WorkflowStatus.COMPLETED
    assert await _records(saq_env) == [("only", "succeeded")]
