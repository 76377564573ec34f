"""Concurrency on PostgreSQL and SQLite: many instances, simultaneous branch arrivals, racing
task completions, and two engines (separate stores and connection pools, as two processes would
have) on one database.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from flowstar import (
    BaseHumanStep,
    BaseMachineStep,
    Edge,
    StepStatus,
    TaskAlreadyCompletedError,
    TaskStatus,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowRegistry,
    WorkflowStatus,
)
from flowstar.db import PersistentExecutionEngine, SQLAlchemyStore, create_database_engine


class Write(BaseMachineStep):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.calls = 0

    async def execute(self, context: WorkflowContext) -> None:
        self.calls += 1
        context.set(self.name, True)


class Gated(BaseMachineStep):
    """Announces that it runs, then waits for the shared gate: all branches finish together."""

    def __init__(self, name: str, gate: asyncio.Event, started: list[str]) -> None:
        super().__init__(name)
        self.gate = gate
        self.started = started

    async def execute(self, context: WorkflowContext) -> None:
        self.started.append(self.name)
        await self.gate.wait()
        context.set(self.name, True)


class Review(BaseHumanStep):
    name = "review"
    title = "Review"
    form_schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


def registry_of(*definitions: WorkflowDefinition) -> WorkflowRegistry:
    registry = WorkflowRegistry()
    for definition in definitions:
        registry.register_definition(definition)
    return registry


def chain(name: str, *steps: Any) -> WorkflowDefinition:
    names = [s.name for s in steps]
    return WorkflowDefinition(
        name=name,
        version="1.0.0",
        steps={s.name: s for s in steps},
        edges=[Edge(a, b) for a, b in zip(names, names[1:], strict=False)],
        initial_step=names[0],
        terminal_steps={names[-1]},
    )


@pytest.fixture
async def make_engine(
    db_engine: AsyncEngine, database_url: str
) -> AsyncIterator[Callable[[WorkflowRegistry], PersistentExecutionEngine]]:
    """``make_engine(registry)``: the first engine shares ``db_engine``; each further one gets a
    connection pool (and store, and cache) of its own, like another process."""
    built: list[PersistentExecutionEngine] = []

    def factory(registry: WorkflowRegistry) -> PersistentExecutionEngine:
        if built:
            engine = PersistentExecutionEngine(registry, engine=create_database_engine(database_url))
        else:
            engine = PersistentExecutionEngine(registry, engine=db_engine)
        built.append(engine)
        return engine

    yield factory
    for i, engine in enumerate(built):
        await engine.close()
        if i:
            await engine.store_sql.engine.dispose()


async def _gather_until(condition: Callable[[], bool]) -> None:
    """Poll a condition that plain step code changes (no event to wait on), for 10 s at most."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 - the steps append to a list; polling is simplest
            await asyncio.sleep(0.005)


async def test_200_instances_started_concurrently_all_complete(
    make_engine: Callable[[WorkflowRegistry], PersistentExecutionEngine], db_engine: AsyncEngine
) -> None:
    steps = [Write("a"), Write("b"), Write("c")]
    engine = make_engine(registry_of(chain("many", *steps)))
    done = await asyncio.gather(*(engine.start_workflow("many", {"i": i}) for i in range(200)))
    assert Counter(d.status for d in done) == {WorkflowStatus.COMPLETED: 200}
    assert [s.calls for s in steps] == [200, 200, 200]
    fresh = SQLAlchemyStore(db_engine, cache_states=False)
    states, total = await fresh.find_instances(status=WorkflowStatus.COMPLETED, limit=500)
    assert total == 200
    assert sorted(s.data["i"] for s in states) == list(range(200))
    assert all(s.data.keys() == {"i", "a", "b", "c"} for s in states)
    for state in states[:20]:
        assert [r.step_name for r in await fresh.step_records(state.id)] == ["a", "b", "c"]


def _fan_out(gate: asyncio.Event, started: list[str], join: Write) -> WorkflowDefinition:
    branches = [Gated(n, gate, started) for n in ("b1", "b2", "b3", "b4")]
    return WorkflowDefinition(
        name="fan",
        version="1.0.0",
        steps={s.name: s for s in (Write("split"), *branches, join)},
        edges=[*(Edge("split", b.name) for b in branches), *(Edge(b.name, "join") for b in branches)],
        initial_step="split",
        terminal_steps={"join"},
    )


async def _check_join(db_engine: AsyncEngine, instance_id: str, join: Write) -> None:
    fresh = SQLAlchemyStore(db_engine, cache_states=False)
    state = await fresh.load_instance(instance_id)
    assert state is not None
    assert state.status is WorkflowStatus.COMPLETED
    assert state.data == {"split": True, "b1": True, "b2": True, "b3": True, "b4": True, "join": True}
    records = Counter((r.step_name, r.status) for r in await fresh.step_records(instance_id))
    assert records == {(n, StepStatus.SUCCEEDED): 1 for n in ("split", "b1", "b2", "b3", "b4", "join")}
    assert join.calls == 1


async def test_branches_finishing_at_the_same_moment_run_the_join_once(
    make_engine: Callable[[WorkflowRegistry], PersistentExecutionEngine], db_engine: AsyncEngine
) -> None:
    gate, started, join = asyncio.Event(), [], Write("join")
    engine = make_engine(registry_of(_fan_out(gate, started, join)))
    run = asyncio.create_task(engine.start_workflow("fan"))
    await _gather_until(lambda: len(started) == 4)
    gate.set()  # all four branches commit at once; three of them conflict and retry
    done = await run
    assert done.status is WorkflowStatus.COMPLETED
    await _check_join(db_engine, str(done.id), join)


async def test_two_engines_racing_on_every_branch_commit_each_outcome_once(
    make_engine: Callable[[WorkflowRegistry], PersistentExecutionEngine], db_engine: AsyncEngine
) -> None:
    """Engine B recovers the branches engine A is running: each branch body runs in both
    engines, all eight finish together, and still each outcome and the join commit once."""
    gate, started, join = asyncio.Event(), [], Write("join")
    first = make_engine(registry_of(_fan_out(gate, started, join)))
    second = make_engine(registry_of(_fan_out(gate, started, join)))
    run = asyncio.create_task(first.start_workflow("fan"))
    await _gather_until(lambda: len(started) == 4)
    assert await second.recover() == 4
    await _gather_until(lambda: len(started) == 8)
    assert sorted(started) == sorted(["b1", "b2", "b3", "b4"] * 2)
    gate.set()
    done = await run
    await second.wait_for_status(done.id, timeout=10, poll_interval=0.05)
    await _check_join(db_engine, str(done.id), join)


async def test_one_task_completed_by_50_callers_succeeds_once(
    make_engine: Callable[[WorkflowRegistry], PersistentExecutionEngine], db_engine: AsyncEngine
) -> None:
    after = Write("after")
    engine = make_engine(registry_of(chain("inbox", Write("before"), Review(), after)))
    started = await engine.start_workflow("inbox")
    [task] = await engine.get_tasks(instance_id=started.id)

    async def complete(i: int) -> Any:
        if i % 2:
            return await engine.complete_task(task.id, f"user{i}", {"ok": True, "by": i})
        return await engine.complete_human_task(started.id, "review", f"user{i}", {"ok": True, "by": i})

    results = await asyncio.gather(*(complete(i) for i in range(50)), return_exceptions=True)
    await _assert_one_winner(db_engine, results, str(started.id), task.id)
    assert after.calls == 1


async def test_two_engines_complete_one_task_once(
    make_engine: Callable[[WorkflowRegistry], PersistentExecutionEngine], db_engine: AsyncEngine
) -> None:
    afters = [Write("after"), Write("after")]
    first = make_engine(registry_of(chain("inbox", Write("before"), Review(), afters[0])))
    second = make_engine(registry_of(chain("inbox", Write("before"), Review(), afters[1])))
    started = await first.start_workflow("inbox")
    [task] = await second.get_tasks(instance_id=started.id)
    results = await asyncio.gather(
        *((first if i % 2 else second).complete_task(task.id, f"user{i}", {"ok": True, "by": i}) for i in range(50)),
        return_exceptions=True,
    )
    await _assert_one_winner(db_engine, results, str(started.id), task.id)
    assert sum(a.calls for a in afters) == 1
    # Both engines see the outcome (neither serves a stale copy of the instance).
    for engine in (first, second):
        assert (await engine.get_instance(started.id)).status is WorkflowStatus.COMPLETED


async def _assert_one_winner(db_engine: AsyncEngine, results: list[Any], instance_id: str, task_id: str) -> None:
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert len(losers) == 49
    assert all(isinstance(e, TaskAlreadyCompletedError) for e in losers), {type(e) for e in losers}
    assert winners[0].status is WorkflowStatus.COMPLETED
    fresh = SQLAlchemyStore(db_engine, cache_states=False)
    stored = await fresh.get_task(task_id)
    assert stored is not None
    assert stored.status is TaskStatus.COMPLETED
    assert stored.data is not None
    assert stored.completed_by == f"user{stored.data['by']}"
    state = await fresh.load_instance(instance_id)
    assert state is not None
    assert state.data["by"] == stored.data["by"]  # the winner's form data, and only it
    records = Counter((r.step_name, r.status) for r in await fresh.step_records(instance_id))
    assert records == {
        ("before", StepStatus.SUCCEEDED): 1,
        ("review", StepStatus.SUCCEEDED): 1,
        ("after", StepStatus.SUCCEEDED): 1,
    }


async def test_an_engine_sees_what_another_engine_committed(
    make_engine: Callable[[WorkflowRegistry], PersistentExecutionEngine],
) -> None:
    """Engine A started the instance (and remembers its state); engine B moves it on; A's
    reads and writes must follow the database, not A's memory of it."""

    class Second(BaseHumanStep):
        name = "second"
        title = "Second"

    definition = chain("relay", Write("start"), Review(), Second(), Write("end"))
    first, second = make_engine(registry_of(definition)), make_engine(registry_of(definition))
    started = await first.start_workflow("relay")
    assert started.current_step == "review"
    await second.complete_human_task(started.id, "review", "bob", {"ok": True})

    seen = await first.get_instance(started.id)
    assert (seen.status, seen.current_step) == (WorkflowStatus.WAITING, "second")
    with pytest.raises(TaskAlreadyCompletedError):
        await first.complete_human_task(started.id, "review", "carol", {"ok": False})
    done = await first.complete_human_task(started.id, "second", "carol", {})
    assert done.status is WorkflowStatus.COMPLETED
    assert (await second.wait_for_status(started.id, timeout=5, poll_interval=0.05)).data["end"] is True
