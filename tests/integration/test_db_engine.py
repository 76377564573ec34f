"""What the SQL store adds to the engine: every way to give the database, rows as written,
reloads by a reader that saw none of the commits, and the database's own limits and faults.

The engine's behaviour (human tasks, joins, timers, retries, cancel, webhooks, events,
tenants) is tested once for every store in ``tests/engine``.  Here, state is always read
back through a FRESH ``SQLAlchemyStore(engine, cache_states=False)`` (or straight from the
tables), never from the engine that wrote it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import msgspec
import pytest
import structlog.testing
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from flowstar import (
    BaseHumanStep,
    BaseMachineStep,
    ContextSerializationError,
    Edge,
    LocalExecutionEngine,
    RetryPolicy,
    StepRecord,
    StepStatus,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowRegistry,
    WorkflowStatus,
)
from flowstar.db import (
    HumanTaskModel,
    PersistentExecutionEngine,
    SQLAlchemyStore,
    StepExecutionModel,
    WorkflowDefinitionModel,
    WorkflowInstanceModel,
)
from flowstar.engine.core import Engine
from flowstar.model.transitions import resume_wait

FORM = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "note": {"type": "string"}},
    "required": ["approved"],
}


class Write(BaseMachineStep):
    """Sets ``<name> = value`` and returns ``{"step": name}``; optional hook before returning."""

    def __init__(self, name: str, value: Any = True, hook: Callable[[WorkflowContext], Any] | None = None) -> None:
        super().__init__(name)
        self.value = value
        self.hook = hook
        self.calls = 0

    async def execute(self, context: WorkflowContext) -> Any:
        self.calls += 1
        if self.hook is not None:
            result = self.hook(context)
            if asyncio.iscoroutine(result):
                await result
        context.set(self.name, self.value)
        return {"step": self.name}


class Approve(BaseHumanStep):
    name = "approve"
    title = "Approve it"
    description = "Look at it"
    form_schema = FORM
    assignee = "alice"
    assignee_group = "managers"
    due_in = timedelta(days=1)


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


def registry_of(*definitions: WorkflowDefinition) -> WorkflowRegistry:
    registry = WorkflowRegistry()
    for definition in definitions:
        registry.register_definition(definition)
    return registry


@pytest.fixture
def fresh(db_engine: AsyncEngine) -> SQLAlchemyStore:
    """A reader that has seen none of the engine's commits."""
    return SQLAlchemyStore(db_engine, cache_states=False)


@pytest.fixture
async def engines(db_engine: AsyncEngine) -> AsyncIterator[list[Engine]]:
    """Engines a test builds; closed at teardown."""
    built: list[Engine] = []
    yield built
    for engine in built:
        await engine.close()


async def _rows(db_engine: AsyncEngine, model: Any) -> list[Any]:
    async with db_engine.connect() as conn:
        return list((await conn.execute(select(model.__table__))).all())


# -- construction ----------------------------------------------------------------------------


async def test_every_way_to_give_the_database(
    db_engine: AsyncEngine, database_url: str, fresh: SQLAlchemyStore, engines: list[Engine]
) -> None:
    registry = registry_of(chain("three", Write("a"), Write("b"), Write("c")))
    factory = async_sessionmaker(db_engine, expire_on_commit=False)
    async with factory() as session:
        variants: list[Engine] = [
            PersistentExecutionEngine(registry, session=session),
            PersistentExecutionEngine(registry, session_factory=factory),
            PersistentExecutionEngine(registry, engine=db_engine),
            PersistentExecutionEngine(registry, url=database_url),
            LocalExecutionEngine(registry, persistence=db_engine),
            LocalExecutionEngine(registry, persistence=factory),
            LocalExecutionEngine(registry, persistence=SQLAlchemyStore(db_engine)),
            LocalExecutionEngine(registry, persistence=session),
        ]
        engines.extend(variants)
        for engine in variants:
            done = await engine.start_workflow("three", {"via": type(engine).__name__})
            assert done.status is WorkflowStatus.COMPLETED
            state = await fresh.load_instance(str(done.id))
            assert state is not None
            assert state.status is WorkflowStatus.COMPLETED
            assert state.data == {"via": type(engine).__name__, "a": True, "b": True, "c": True}
            assert [r.step_name for r in await fresh.step_records(str(done.id))] == ["a", "b", "c"]
    assert len(await _rows(db_engine, WorkflowInstanceModel)) == len(variants)

    with pytest.raises(TypeError, match="exactly one"):
        PersistentExecutionEngine(registry)
    with pytest.raises(TypeError, match="exactly one"):
        PersistentExecutionEngine(registry, engine=db_engine, url=database_url)


# -- what is stored --------------------------------------------------------------------------


async def test_context_is_committed_after_every_step(
    db_engine: AsyncEngine, fresh: SQLAlchemyStore, engines: list[Engine]
) -> None:
    """Each step looks at the database while it runs: every earlier step is committed."""
    seen: dict[str, tuple[dict[str, Any], list[str], int]] = {}

    def look(name: str) -> Callable[[WorkflowContext], Any]:
        async def hook(context: WorkflowContext) -> None:
            state = await fresh.load_instance(str(context.instance_id))
            assert state is not None
            records = await fresh.step_records(str(context.instance_id))
            seen[name] = (dict(state.data), [r.step_name for r in records], state.version)

        return hook

    steps = [Write(n, value=i, hook=look(n)) for i, n in enumerate(["one", "two", "three", "four"])]
    engine = PersistentExecutionEngine(registry_of(chain("look", *steps)), engine=db_engine)
    engines.append(engine)
    done = await engine.start_workflow("look", {"start": 1})
    assert done.status is WorkflowStatus.COMPLETED
    assert seen == {
        "one": ({"start": 1}, [], 1),
        "two": ({"start": 1, "one": 0}, ["one"], 2),
        "three": ({"start": 1, "one": 0, "two": 1}, ["one", "two"], 3),
        "four": ({"start": 1, "one": 0, "two": 1, "three": 2}, ["one", "two", "three"], 4),
    }


async def test_step_records_hold_input_output_error_timing_and_attempt(
    db_engine: AsyncEngine, fresh: SQLAlchemyStore, engines: list[Engine]
) -> None:
    attempts = {"n": 0}

    class Flaky(BaseMachineStep):
        name = "flaky"
        retry_policy = RetryPolicy(max_attempts=3, initial_delay=0.01, jitter=0)

        async def execute(self, context: WorkflowContext) -> Any:
            attempts["n"] += 1
            if attempts["n"] == 1:
                raise RuntimeError("first try fails")
            context.set("flaky", attempts["n"])
            return {"tries": attempts["n"], "nested": [1, {"x": None}]}

    class Broken(BaseMachineStep):
        name = "broken"

        async def execute(self, context: WorkflowContext) -> None:
            raise ValueError("no good")

    engine = PersistentExecutionEngine(registry_of(chain("records", Write("a"), Flaky(), Broken())), engine=db_engine)
    engines.append(engine)
    started = await engine.start_workflow("records", {"x": 1})
    done = await engine.wait_for_status(started.id, timeout=10)
    assert done.status is WorkflowStatus.FAILED
    assert done.failed_step == "broken"

    records = await fresh.step_records(str(done.id))
    assert [(r.step_name, r.status, r.attempt) for r in records] == [
        ("a", StepStatus.SUCCEEDED, 1),
        ("flaky", StepStatus.FAILED, 1),
        ("flaky", StepStatus.SUCCEEDED, 2),
        ("broken", StepStatus.FAILED, 1),
    ]
    a, flaky1, flaky2, broken = records
    assert a.input_data == {"x": 1}
    assert a.output_data == {"step": "a"}
    assert flaky1.error == "RuntimeError: first try fails"
    assert flaky1.output_data is None
    assert flaky2.input_data == {"x": 1, "a": True}
    assert flaky2.output_data == {"tries": 2, "nested": [1, {"x": None}]}
    assert broken.input_data == {"x": 1, "a": True, "flaky": 2}
    assert broken.error == "ValueError: no good"
    for record in records:
        assert record.completed_at is not None
        assert record.started_at <= record.completed_at
        assert record.started_at.tzinfo is not None
        assert record.instance_id == str(done.id)
    assert a.completed_at <= flaky1.started_at
    assert flaky1.completed_at is not None
    assert flaky1.completed_at + timedelta(seconds=0.01) <= flaky2.started_at

    state = await fresh.load_instance(str(done.id))
    assert state is not None
    assert state.error is not None
    assert "ValueError: no good" in state.error
    assert (state.failed_step, state.data) == ("broken", {"x": 1, "a": True, "flaky": 2})


async def test_callable_conditions_and_definition_json(
    db_engine: AsyncEngine, fresh: SQLAlchemyStore, engines: list[Engine]
) -> None:
    def big(context: WorkflowContext) -> bool:
        return bool(context.get("amount", 0) > 100)

    definition = WorkflowDefinition(
        name="route",
        version="2.1.0",
        description="routes by amount",
        steps={s.name: s for s in (Write("check"), Write("big"), Write("small"))},
        edges=[
            Edge("check", "big", condition=big),
            Edge("check", "small", condition=lambda ctx: ctx.get("amount", 0) <= 100),
        ],
        initial_step="check",
        terminal_steps={"big", "small"},
    )
    engine = PersistentExecutionEngine(registry_of(definition), engine=db_engine)
    engines.append(engine)
    large = await engine.start_workflow("route", {"amount": 500})
    small = await engine.start_workflow("route", {"amount": 5})
    for instance, taken in ((large, "big"), (small, "small")):
        assert instance.status is WorkflowStatus.COMPLETED
        assert [r.step_name for r in await fresh.step_records(str(instance.id))] == ["check", taken]

    [row] = await _rows(db_engine, WorkflowDefinitionModel)
    assert (row.name, row.version, row.description, row.is_active) == ("route", "2.1.0", "routes by amount", True)
    stored = row.definition_json if isinstance(row.definition_json, dict) else msgspec.json.decode(row.definition_json)
    assert stored == msgspec.json.decode(msgspec.json.encode(definition.describe()))
    assert [e["source"] for e in stored["edges"]] == ["check", "check"]
    assert stored["edges"][0]["condition"]
    assert {i.definition_id for i in await _rows(db_engine, WorkflowInstanceModel)} == {row.id}


# -- bad input -------------------------------------------------------------------------------


async def _snapshot(db_engine: AsyncEngine) -> tuple[list[Any], ...]:
    tables = []
    for model in (WorkflowInstanceModel, StepExecutionModel, HumanTaskModel):
        tables.append(sorted(await _rows(db_engine, model), key=lambda r: str(r.id)))
    return tuple(tables)


async def test_a_failing_child_insert_rolls_back_the_whole_commit(
    db_engine: AsyncEngine, fresh: SQLAlchemyStore, engines: list[Engine]
) -> None:
    """The task insert (the commit's last write) fails: the instance update and the step
    records written before it in the same commit are rolled back too."""
    poison = Approve("approve")
    poison.title = "poison"
    engine = PersistentExecutionEngine(registry_of(chain("poisoned", Write("prepare"), poison)), engine=db_engine)
    engines.append(engine)
    postgres = db_engine.dialect.name == "postgresql"
    async with db_engine.begin() as conn:
        if postgres:
            await conn.execute(
                text(
                    "CREATE OR REPLACE FUNCTION flowstar_test_poison() RETURNS trigger AS $$ BEGIN "
                    "IF NEW.title = 'poison' THEN RAISE EXCEPTION 'poisoned task'; END IF; RETURN NEW; "
                    "END $$ LANGUAGE plpgsql"
                )
            )
            await conn.execute(
                text(
                    "CREATE TRIGGER poison BEFORE INSERT ON workflow_human_tasks "
                    "FOR EACH ROW EXECUTE FUNCTION flowstar_test_poison()"
                )
            )
        else:
            await conn.execute(
                text(
                    "CREATE TRIGGER poison BEFORE INSERT ON workflow_human_tasks WHEN NEW.title = 'poison' "
                    "BEGIN SELECT RAISE(ABORT, 'poisoned task'); END"
                )
            )
    try:
        # (capture_logs: the engine logs the failed commit; rendering its traceback is slow.)
        with structlog.testing.capture_logs() as logs:
            started = await engine.start_workflow("poisoned", {"n": 1})
        assert any(entry["event"] == "activation crashed" for entry in logs)
        # The outcome of "prepare" could not be committed: the instance is as it was created.
        assert started.status is WorkflowStatus.RUNNING
        state = await fresh.load_instance(str(started.id))
        assert state is not None
        assert (state.version, state.data, state.current_step) == (1, {"n": 1}, "prepare")
        assert [t.step for t in state.tokens.values()] == ["prepare"]
        assert await fresh.step_records(str(started.id)) == []
        assert await fresh.find_tasks(instance_id=str(started.id)) == []
        instances, records, tasks = await _snapshot(db_engine)
        assert (len(instances), records, tasks) == (1, [], [])
    finally:
        async with db_engine.begin() as conn:
            await conn.execute(
                text("DROP TRIGGER poison ON workflow_human_tasks" if postgres else "DROP TRIGGER poison")
            )

    # The pending activation is still there: a new engine recovers it once the fault is gone.
    again = PersistentExecutionEngine(registry_of(chain("poisoned", Write("prepare"), poison)), engine=db_engine)
    engines.append(again)
    assert await again.recover() == 1
    waiting = await again.wait_for_status(started.id, WorkflowStatus.WAITING, timeout=10)
    assert waiting.data == {"n": 1, "prepare": True}
    assert len(await fresh.find_tasks(instance_id=str(started.id))) == 1


async def test_a_record_id_collision_leaves_everything_unchanged(
    db_engine: AsyncEngine, fresh: SQLAlchemyStore, engines: list[Engine]
) -> None:
    definition = chain("collide", Write("prepare"), Approve(), Write("ship"))
    engine = PersistentExecutionEngine(registry_of(definition), engine=db_engine)
    engines.append(engine)
    started = await engine.start_workflow("collide", {"n": 1})
    state = await fresh.load_instance(str(started.id))
    assert state is not None
    [token] = state.tokens.values()
    existing = (await fresh.step_records(str(started.id)))[0]
    before = await _snapshot(db_engine)

    def new_id() -> str:
        return str(uuid.uuid4())

    # The plan completing the task (record update, task update, context, next activation),
    # plus one more record whose id is already taken: the database refuses the insert.
    plan = resume_wait(
        definition,
        state,
        token.id,
        changes={"approved": True},
        completed_by="alice",
        now=state.updated_at,
        new_id=new_id,
    )
    plan.new_records.append(
        msgspec.structs.replace(plan.new_records[0] if plan.new_records else _record_like(existing), id=existing.id)
    )
    store = SQLAlchemyStore(db_engine)
    for attempt in range(2):
        with pytest.raises(IntegrityError):
            await store.commit(plan)
        assert await _snapshot(db_engine) == before, f"attempt {attempt} left a partial write"

    # The same plan without the colliding record commits.
    plan.new_records.pop()
    assert await store.commit(plan) is True
    after = await fresh.load_instance(str(started.id))
    assert after is not None
    assert (after.version, after.data["approved"]) == (state.version + 1, True)


def _record_like(record: StepRecord) -> StepRecord:
    return msgspec.structs.replace(record, id=str(uuid.uuid4()))


async def test_a_value_the_database_cannot_hold_fails_the_step(
    db_engine: AsyncEngine, fresh: SQLAlchemyStore, engines: list[Engine]
) -> None:
    """PostgreSQL refuses a NUL character in JSON: the step fails with that error (instead of
    its activation crashing on every recovery); a form with one is refused and nothing
    changes.  SQLite stores it."""
    engine = PersistentExecutionEngine(
        registry_of(
            chain("nul", Write("before"), Write("nul", value="a\x00b"), Write("after")),
            chain("form", Write("before"), Approve(), Write("after")),
        ),
        engine=db_engine,
    )
    engines.append(engine)
    done = await engine.start_workflow("nul", {"n": 1})
    waiting = await engine.start_workflow("form", {"n": 2})
    assert waiting.status is WorkflowStatus.WAITING
    state = await fresh.load_instance(str(done.id))
    assert state is not None
    if db_engine.dialect.name == "sqlite":
        assert state.status is WorkflowStatus.COMPLETED
        assert state.data["nul"] == "a\x00b"
        return

    assert state.status is WorkflowStatus.FAILED
    assert state.error is not None
    assert "ContextSerializationError: the database refused a value" in state.error
    # Said in words for whoever sent it: no driver classes or statement placeholders.
    assert "cannot contain the NUL character" in state.error
    assert "<class" not in state.error
    assert "$" not in state.error
    assert state.data == {"n": 1, "before": True}
    failed = (await fresh.step_records(str(done.id)))[-1]
    assert (failed.step_name, failed.status) == ("nul", StepStatus.FAILED)

    before = await _snapshot(db_engine)
    with pytest.raises(ContextSerializationError, match="refused"):
        await engine.complete_human_task(waiting.id, "approve", "alice", {"approved": True, "note": "\x00"})
    assert await _snapshot(db_engine) == before
    finished = await engine.complete_human_task(waiting.id, "approve", "alice", {"approved": True})
    assert finished.status is WorkflowStatus.COMPLETED
    assert await fresh.pending_tokens() == []
