"""A stalled PostgreSQL (SIGSTOP on a private cluster): every call fails within the bound, nothing is lost.

The engine under test is built from a URL with ``FLOWSTAR_DB_TIMEOUT`` set, as an operator
configures it.  A call that fails may or may not have been committed by the server; the tests
read the database after the server resumed and check that the retry agrees with it (a task
completed once says so, one not completed completes) and that the workflow then finishes with
every step recorded exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import text
from tests.integration.private_servers import PrivatePostgres, create_schema, private_postgres

from flowstar import (
    BaseHumanStep,
    BaseMachineStep,
    Edge,
    TaskStatus,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowRegistry,
    WorkflowStatus,
)
from flowstar.db import PersistentExecutionEngine, create_database_engine
from flowstar.model.errors import StoreUnavailableError, TaskAlreadyCompletedError

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BOUND = 2.0
# Above the bound: the event loop's scheduling, terminating the connection, a busy machine.
SLACK = 1.5


class Approve(BaseHumanStep):
    name = "approve"
    title = "Approve"
    description = "Approve it"
    form_schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


class Done(BaseMachineStep):
    async def execute(self, context: WorkflowContext) -> Any:
        context.set("done", True)
        return {"done": True}


def _registry() -> WorkflowRegistry:
    registry = WorkflowRegistry()
    registry.register_definition(
        WorkflowDefinition(
            name="approval",
            version="1.0.0",
            steps={"approve": Approve(), "done": Done("done")},
            edges=[Edge("approve", "done")],
            initial_step="approve",
            terminal_steps={"done"},
        )
    )
    return registry


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        asyncio.run(create_schema(server.url))
        yield server


@pytest.fixture
def server(cluster: PrivatePostgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivatePostgres]:
    """The cluster, running; engines built from a URL in this test get the small bound."""
    monkeypatch.setenv("FLOWSTAR_DB_TIMEOUT", str(BOUND))
    try:
        yield cluster
    finally:
        cluster.thaw()


@asynccontextmanager
async def persistent(url: str) -> AsyncIterator[PersistentExecutionEngine]:
    engine = PersistentExecutionEngine(_registry(), url=url)
    async with engine:
        yield engine


async def fails_within_bound(call: Awaitable[Any]) -> StoreUnavailableError:
    """Await ``call``: it must raise ``StoreUnavailableError`` after about ``BOUND`` seconds."""
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as caught:
        await call
    elapsed = time.monotonic() - started
    assert BOUND - 0.1 <= elapsed < BOUND + SLACK, f"failed after {elapsed:.2f}s, bound {BOUND}s"
    return caught.value


async def rows(url: str, sql: str, **params: Any) -> list[Any]:
    """Rows read on a connection of their own (no engine cache)."""
    engine = create_database_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())
    finally:
        await engine.dispose()


async def task_statuses(url: str, instance_id: Any) -> list[str]:
    found = await rows(url, "SELECT status FROM workflow_human_tasks WHERE instance_id = :i", i=instance_id)
    return [r.status for r in found]


async def retry_completion(engine: PersistentExecutionEngine, instance_id: Any, user: str) -> str:
    """Complete the task again: "completed" now, or "already completed" before."""
    try:
        await engine.complete_human_task(instance_id, "approve", user, {"ok": True})
    except TaskAlreadyCompletedError:
        return "already completed"
    return "completed"


async def assert_finished_once(url: str, engine: PersistentExecutionEngine, instance_id: Any, user: str) -> None:
    """The workflow completes after ``recover()``: one completed task, each step recorded once."""
    await engine.recover()
    finished = await engine.wait_for_status(instance_id, WorkflowStatus.COMPLETED, timeout=10, poll_interval=0.1)
    assert finished.context.get("done") is True
    tasks = await rows(
        url, "SELECT status, completed_by FROM workflow_human_tasks WHERE instance_id = :i", i=instance_id
    )
    assert [(t.status, t.completed_by) for t in tasks] == [(TaskStatus.COMPLETED.value, user)]
    history = [(h.step_name, h.status.value) for h in await engine.get_history(instance_id)]
    assert sorted(history) == [("approve", "succeeded"), ("done", "succeeded")]


async def test_complete_human_task_on_a_frozen_server_fails_within_the_bound_and_applies_once(
    server: PrivatePostgres,
) -> None:
    async with persistent(server.url) as engine:
        waiting = await engine.start_workflow("approval", {})
        with server.stalled():
            await fails_within_bound(engine.complete_human_task(waiting.id, "approve", "alice", {"ok": True}))
        # The server resumed: whatever it did with the statement is settled now.
        applied = await task_statuses(server.url, waiting.id) == [TaskStatus.COMPLETED.value]
        assert await retry_completion(engine, waiting.id, "alice") == ("already completed" if applied else "completed")
        await assert_finished_once(server.url, engine, waiting.id, "alice")


async def test_start_workflow_on_a_frozen_server_fails_within_the_bound_and_creates_at_most_one(
    server: PrivatePostgres, unique_prefix: str
) -> None:
    async with persistent(server.url) as engine:
        await engine.start_workflow("approval", {}, created_by=unique_prefix)  # the definition is recorded
        with server.stalled():
            await fails_within_bound(engine.start_workflow("approval", {}, created_by=unique_prefix))
        await engine.recover()
        mine = "SELECT i.status AS status, t.status AS task FROM workflow_instances i"
        mine += " JOIN workflow_human_tasks t ON t.instance_id = i.id WHERE i.created_by = :c"
        found = await rows(server.url, mine, c=unique_prefix)
        # The failed start left nothing, or one whole instance waiting at its task (never a part).
        assert len(found) <= 2
        assert {(r.status, r.task) for r in found} == {(WorkflowStatus.WAITING.value, TaskStatus.PENDING.value)}
        again = await engine.start_workflow("approval", {}, created_by=unique_prefix)
        assert again.status is WorkflowStatus.WAITING
        assert len(await rows(server.url, mine, c=unique_prefix)) == len(found) + 1


async def test_a_new_connection_to_a_frozen_server_fails_within_the_bound_and_sends_nothing(
    server: PrivatePostgres,
) -> None:
    async with persistent(server.url) as first:
        waiting = await first.start_workflow("approval", {})
    async with persistent(server.url) as engine:  # no connection yet: the call must connect
        with server.stalled():
            await fails_within_bound(engine.complete_human_task(waiting.id, "approve", "bob", {"ok": True}))
        assert await task_statuses(server.url, waiting.id) == [TaskStatus.PENDING.value]
        assert await retry_completion(engine, waiting.id, "bob") == "completed"
        await assert_finished_once(server.url, engine, waiting.id, "bob")


async def test_a_commit_whose_answer_was_lost_is_not_applied_again(server: PrivatePostgres) -> None:
    async with persistent(server.url) as engine, persistent(server.url) as other:
        waiting = await engine.start_workflow("approval", {})
        with server.stalled():
            await fails_within_bound(engine.complete_human_task(waiting.id, "approve", "alice", {"ok": True}))
        # The same outcome committed by someone else stands for a commit whose reply was lost.
        await other.complete_human_task(waiting.id, "approve", "carol", {"ok": True})
        with pytest.raises(TaskAlreadyCompletedError) as caught:
            await engine.complete_human_task(waiting.id, "approve", "alice", {"ok": True})
        assert caught.value.details["completed_by"] == "carol"
        await assert_finished_once(server.url, other, waiting.id, "carol")


async def test_calls_queued_for_the_only_pooled_connection_fail_within_the_bound(server: PrivatePostgres) -> None:
    db = create_database_engine(server.url, pool_size=1, max_overflow=0)
    async with PersistentExecutionEngine(_registry(), engine=db) as engine:
        first = await engine.start_workflow("approval", {})
        second = await engine.start_workflow("approval", {})
        with server.stalled():
            # One call holds the connection, waiting for the server; the other waits for
            # the pool: both give up after the bound.
            await asyncio.gather(
                fails_within_bound(engine.complete_human_task(first.id, "approve", "a", {"ok": True})),
                fails_within_bound(engine.complete_human_task(second.id, "approve", "b", {"ok": True})),
            )
    await db.dispose()


async def test_a_statement_waiting_for_a_lock_gives_up_within_the_bound(server: PrivatePostgres) -> None:
    async with persistent(server.url) as engine:
        waiting = await engine.start_workflow("approval", {})
        holder = create_database_engine(server.url, timeout=0)
        try:
            async with holder.connect() as conn:
                await conn.execute(text("SELECT 1 FROM workflow_instances WHERE id = :i FOR UPDATE"), {"i": waiting.id})
                await fails_within_bound(engine.complete_human_task(waiting.id, "approve", "dave", {"ok": True}))
                await conn.rollback()
        finally:
            await holder.dispose()
        # The server cancelled the statement (statement_timeout): nothing was applied.
        assert await task_statuses(server.url, waiting.id) == [TaskStatus.PENDING.value]
        assert await retry_completion(engine, waiting.id, "dave") == "completed"
        await assert_finished_once(server.url, engine, waiting.id, "dave")
