"""The outbox relay: committed events reach the Redis Stream in commit order, events of a
commit that did not happen never do, and a process that died before publishing loses none."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.integration.saq_support import SaqEnv, engine_of, inprocess_worker, wait_for
from tests.integration.saq_workflows import build_registry

from flowstar import EventBus, LocalExecutionEngine, WorkflowStatus
from flowstar.db import PersistentExecutionEngine, SQLAlchemyStore
from flowstar.model.events import WorkflowEvent, decode_event
from flowstar.model.transitions import cancel_instance, resume_wait
from flowstar.redis import RedisStreamEventBus


def _bus(env: SaqEnv) -> RedisStreamEventBus:
    # The stream a worker of this queue publishes to (see ``build_engine``).
    return RedisStreamEventBus(env.redis, key_prefix=f"flowstar:{env.queue}:")


async def _stream(env: SaqEnv) -> list[WorkflowEvent]:
    entries = await env.redis.xrange(_bus(env).stream_key)
    return [decode_event(fields[b"data"]) for _id, fields in entries]


def _per_instance(events: list[WorkflowEvent]) -> dict[str, list[WorkflowEvent]]:
    found: dict[str, list[WorkflowEvent]] = {}
    for event in events:
        found.setdefault(event.instance_id, []).append(event)
    return found


def _shape(events: list[WorkflowEvent]) -> list[tuple[str, str | None]]:
    return [(e.type, getattr(e, "step_name", None)) for e in events]


async def _outbox_size(env: SaqEnv) -> int:
    return int(await env.scalar("SELECT count(*) FROM workflow_outbox"))


async def _expected_shapes(workflow: str, data: dict[str, Any], human: dict[str, Any] | None = None) -> list[Any]:
    """The events the in-memory engine emits, in order, for the same run."""
    seen: list[WorkflowEvent] = []
    bus = EventBus()

    async def record(event: WorkflowEvent) -> None:
        seen.append(event)

    bus.add_handler(record)
    local = LocalExecutionEngine(build_registry(), event_bus=bus)
    instance = await local.start_workflow(workflow, data)
    if human is not None:
        await local.complete_human_task(instance.id, human["step"], "manager", human["data"])
    await local.close()
    return _shape(seen)


async def test_events_reach_the_stream_in_commit_order_per_instance(saq_env: SaqEnv) -> None:
    approve = {"step": "manager_approval", "data": {"approved": True}}
    async with inprocess_worker(saq_env), saq_env.client() as client:
        linear = [str((await client.start_workflow("linear3", {"i": i})).id) for i in range(5)]
        routed = [str((await client.start_workflow("routed", {"amount": a})).id) for a in (5, 500)]
        approval = str((await client.start_workflow("approval_workflow", {"amount": 1})).id)
        await client.wait_for_status(approval, WorkflowStatus.WAITING, timeout=20)
        await client.complete_human_task(approval, "manager_approval", "manager", approve["data"])
        await asyncio.gather(*(client.wait_for_status(i, timeout=20) for i in [*linear, *routed, approval]))

        async def relayed() -> bool:
            return await _outbox_size(saq_env) == 0

        await wait_for(relayed, within=10, what="the outbox to drain")
    streams = _per_instance(await _stream(saq_env))
    assert set(streams) == {*linear, *routed, approval}
    expected_linear = await _expected_shapes("linear3", {})
    for iid in linear:
        assert _shape(streams[iid]) == expected_linear
    assert _shape(streams[routed[0]]) == await _expected_shapes("routed", {"amount": 5})
    assert _shape(streams[routed[1]]) == await _expected_shapes("routed", {"amount": 500})
    assert _shape(streams[approval]) == await _expected_shapes("approval_workflow", {"amount": 1}, approve)
    for events in streams.values():
        assert [e.timestamp for e in events] == sorted(e.timestamp for e in events)
        assert events[-1].type == "WorkflowCompleted"


async def test_events_of_a_commit_that_lost_the_race_are_never_published(saq_env: SaqEnv) -> None:
    async with inprocess_worker(saq_env) as worker, saq_env.client() as client:
        iid = str((await client.start_workflow("approval_workflow", {"amount": 1})).id)
        await client.wait_for_status(iid, WorkflowStatus.WAITING, timeout=20)
        # Two transitions built from the same version: a cancel and a task completion.
        reader = SQLAlchemyStore(saq_env.db, cache_states=False, outbox=True)
        first, second = await reader.load_instance(iid), await reader.load_instance(iid)
        assert first is not None
        assert second is not None
        definition = client.registry.get_definition(first.workflow_name, first.workflow_version)
        [human] = [t for t in first.tokens.values() if t.kind == "human"]
        now = datetime.now(UTC)

        def ids() -> str:
            return str(uuid.uuid4())

        cancel = cancel_instance(definition, first, reason="withdrawn", now=now, new_id=ids)
        complete = resume_wait(
            definition, second, human.id, changes={"approved": True}, output={}, completed_by="m", now=now, new_id=ids
        )
        assert "HumanTaskCompleted" in {e.type for e in complete.events}
        assert await reader.commit(cancel) is True
        assert await reader.commit(complete) is False  # rolled back: version moved on
        engine_of(worker).relay.wake()  # type: ignore[union-attr]

        async def relayed() -> bool:
            return await _outbox_size(saq_env) == 0

        await wait_for(relayed, within=10, what="the outbox to drain")
    types = [e.type for e in _per_instance(await _stream(saq_env))[iid]]
    assert "WorkflowCanceled" in types
    assert "HumanTaskCompleted" not in types
    assert "WorkflowCompleted" not in types


async def test_events_committed_by_a_process_that_never_published_them_are_relayed(saq_env: SaqEnv) -> None:
    # A process that commits with the outbox and dies before any relay ran.
    dead = PersistentExecutionEngine(build_registry(), engine=saq_env.db, outbox=True)
    instance = await dead.start_workflow("approval_workflow", {"amount": 1})
    assert instance.status is WorkflowStatus.WAITING
    iid = str(instance.id)
    committed = await _outbox_size(saq_env)
    assert committed > 0
    assert await _stream(saq_env) == []

    async with inprocess_worker(saq_env) as worker:

        async def relayed() -> bool:
            return await _outbox_size(saq_env) == 0

        await wait_for(relayed, within=10, what="the next relay to publish the outbox")
        assert engine_of(worker).relay.published >= committed  # type: ignore[union-attr]
    streams = _per_instance(await _stream(saq_env))
    assert list(streams) == [iid]
    assert _shape(streams[iid]) == (await _expected_shapes("approval_workflow", {"amount": 1}))[: len(streams[iid])]
    assert streams[iid][-1].type == "HumanTaskCreated"
    await dead.close()
