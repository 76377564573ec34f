"""The SAQ runtime in one process: a client engine commits and enqueues, a ``saq.Worker``
task (built from ``build_settings``) runs the steps, ``wait_for_status`` hears the outcome
over Redis pub/sub."""

from __future__ import annotations

import asyncio
import os

import pytest
from redis.asyncio import Redis
from tests.integration.saq_support import REGISTRY, SaqEnv, inprocess_worker, side_effects, wait_for

from flowstar import StepStatus, TaskStatus, WorkflowStatus
from flowstar.model.registry import load_registry
from flowstar.saq import SAQExecutionEngine


async def test_quickstart_approval_waits_for_the_manager_then_completes(saq_env: SaqEnv) -> None:
    async with inprocess_worker(saq_env), saq_env.client() as client:
        started = await client.start_workflow(
            "approval_workflow", {"request_id": "REQ-001", "amount": 500.0}, created_by="alice@example.com"
        )
        # The SAQ engine returns right after the commit; the worker runs ``submit``.
        assert started.status in (WorkflowStatus.PENDING, WorkflowStatus.RUNNING)
        waiting = await client.wait_for_status(started.id, WorkflowStatus.WAITING, timeout=20)
        assert waiting.current_step == "manager_approval"
        assert waiting.context.get("submitted") is True
        assert waiting.context.get("submitted_by") == "alice@example.com"
        [task] = await client.get_tasks(instance_id=started.id)
        assert (task.step_name, task.status) == ("manager_approval", TaskStatus.PENDING)

        await client.complete_human_task(
            started.id, "manager_approval", "manager@example.com", {"approved": True, "comments": "Looks good!"}
        )
        done = await client.wait_for_status(started.id, timeout=20)
        assert done.status is WorkflowStatus.COMPLETED, done.error
        assert done.context.data == {
            "request_id": "REQ-001",
            "amount": 500.0,
            "submitted": True,
            "submitted_by": "alice@example.com",
            "approved": True,
            "comments": "Looks good!",
            "status": "processed",
        }
        history = await client.get_history(started.id)
        assert [(r.step_name, r.status) for r in history] == [
            ("submit", StepStatus.SUCCEEDED),
            ("manager_approval", StepStatus.SUCCEEDED),
            ("process", StepStatus.SUCCEEDED),
        ]
        assert history[1].completed_by == "manager@example.com"


async def test_linear_workflow_runs_every_step_once_in_order(saq_env: SaqEnv) -> None:
    async with inprocess_worker(saq_env), saq_env.client() as client:
        instances = [await client.start_workflow("linear3", {"n": i}) for i in range(5)]
        done = await asyncio.gather(*(client.wait_for_status(i.id, timeout=20) for i in instances))
    for instance, finished in zip(instances, done, strict=True):
        assert finished.status is WorkflowStatus.COMPLETED, finished.error
        assert finished.context.get("trail") == ["one", "two", "three"]
        assert finished.context.get("n") == instance.context.get("n")
        assert finished.context.get("three_pid") == os.getpid()
    rows = await side_effects(saq_env)
    assert sorted((r.instance_id, r.step) for r in rows) == sorted(
        (str(i.id), s) for i in instances for s in ("one", "two", "three")
    )


async def test_gateway_routes_on_the_context(saq_env: SaqEnv) -> None:
    async with inprocess_worker(saq_env), saq_env.client() as client:
        big = await client.start_workflow("routed", {"amount": 500})
        small = await client.start_workflow("routed", {"amount": 5})
        big_done, small_done = await asyncio.gather(
            client.wait_for_status(big.id, timeout=20), client.wait_for_status(small.id, timeout=20)
        )
        steps = [r.step_name for r in await client.get_history(big.id)]
    assert big_done.status is small_done.status is WorkflowStatus.COMPLETED
    assert big_done.context.get("trail") == ["check", "big", "done"]
    assert small_done.context.get("trail") == ["check", "small", "done"]
    assert steps == ["check", "route", "big", "done"]


async def test_wait_for_status_falls_back_to_polling_when_pubsub_is_unreachable(saq_env: SaqEnv) -> None:
    async with inprocess_worker(saq_env), saq_env.client() as client:
        # Commits and jobs go through the queue; notifications through this dead client.
        client.redis = Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.5)
        try:
            instance = await client.start_workflow("linear3", {"n": 1})
            done = await client.wait_for_status(instance.id, timeout=15, poll_interval=0.2)
        finally:
            await client.redis.aclose()
    assert done.status is WorkflowStatus.COMPLETED


async def test_the_engine_takes_queue_and_persistence_only_as_documented(
    saq_env: SaqEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 03-execution: ``SAQExecutionEngine(queue=queue, persistence=persistence)``; the registry
    # is the one FLOWSTAR_REGISTRY names (the workers' registry).
    monkeypatch.setenv("FLOWSTAR_REGISTRY", REGISTRY)
    queue = await saq_env.queue_client()
    engine = SAQExecutionEngine(queue=queue, persistence=saq_env.database_url, run_reconciler=False)
    try:
        assert engine.registry is load_registry(REGISTRY)
        async with inprocess_worker(saq_env):
            started = await engine.start_workflow("linear3", {"n": 1})
            done = await engine.wait_for_status(started.id, timeout=20)
        assert done.status is WorkflowStatus.COMPLETED, done.error
        assert done.context.get("trail") == ["one", "two", "three"]
    finally:
        await engine.close()
        await queue.disconnect()


async def test_a_task_escalation_fires_on_a_worker(saq_env: SaqEnv) -> None:
    async with inprocess_worker(saq_env), saq_env.client() as client:
        started = await client.start_workflow("escalating", {})
        await client.wait_for_status(started.id, WorkflowStatus.WAITING, timeout=20)
        [task] = await client.get_tasks(instance_id=started.id)
        assert task.assignee_id == "bob"

        async def moved() -> bool:
            return (await client.get_task(task.id)).assignee_id == "carol"

        # The escalation is a scheduled SAQ job, due a second after the task opened.
        await wait_for(moved, within=20, what="the escalation to reassign the task to carol")
        audit = await client.task_audit(task.id)
        assert [(e.action, e.actor) for e in audit] == [("created", None), ("escalated", None)]
        await client.complete_task(task.id, "carol", {})
        done = await client.wait_for_status(started.id, timeout=20)
    assert done.status is WorkflowStatus.COMPLETED, done.error
