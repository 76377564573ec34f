"""``SQLAlchemyStore`` details: the PostgreSQL one-statement commit writes exactly what the
transactional path writes, refuses stale versions, falls back when it must; the outbox."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from flowstar import (
    BaseHumanStep,
    BaseMachineStep,
    Edge,
    ManualClock,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowRegistry,
    WorkflowStatus,
)
from flowstar.backends.inline import InlineDispatcher
from flowstar.db import (
    HumanTaskModel,
    OutboxModel,
    PersistentExecutionEngine,
    SQLAlchemyStore,
    StepExecutionModel,
    WorkflowDefinitionModel,
    WorkflowInstanceModel,
    _onestatement,
)
from flowstar.db._plan import PlanRows, plan_rows
from flowstar.engine.core import Engine
from flowstar.engine.views import definition_uuid
from flowstar.model.enums import StepStatus, TaskStatus
from flowstar.model.events import decode_event
from flowstar.model.state import HumanTask, RecordUpdate, StepRecord, TaskUpdate

postgres_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


class Write(BaseMachineStep):
    async def execute(self, context: WorkflowContext) -> dict[str, Any]:
        context.set(self.name, {"at": self.name, "none": None})
        return {"step": self.name, "nothing": None}


class Boom(BaseMachineStep):
    async def execute(self, context: WorkflowContext) -> None:
        raise RuntimeError("boom")


class Approve(BaseHumanStep):
    name = "approve"
    title = "Approve"
    assignee = "alice"
    assignee_group = "managers"
    form_schema = {"type": "object"}


def _registry() -> WorkflowRegistry:
    registry = WorkflowRegistry()
    registry.register_definition(
        WorkflowDefinition(
            name="human",
            version="1.0.0",
            steps={s.name: s for s in (Write("prepare"), Approve(), Write("ship"))},
            edges=[Edge("prepare", "approve"), Edge("approve", "ship")],
            initial_step="prepare",
            terminal_steps={"ship"},
        )
    )
    registry.register_definition(
        WorkflowDefinition(
            name="fan",
            version="1.0.0",
            steps={s.name: s for s in (Write("split"), Write("a"), Write("b"), Write("join"))},
            edges=[Edge("split", "a"), Edge("split", "b"), Edge("a", "join"), Edge("b", "join")],
            initial_step="split",
            terminal_steps={"join"},
        )
    )
    registry.register_definition(
        WorkflowDefinition(
            name="fails",
            version="1.0.0",
            steps={s.name: s for s in (Write("first"), Boom("boom"))},
            edges=[Edge("first", "boom")],
            initial_step="first",
            terminal_steps={"boom"},
        )
    )
    return registry


async def _scenario(
    db_engine: AsyncEngine, *, one_statement: bool, through_asyncpg: bool = True, through_aiosqlite: bool = True
) -> list[str]:
    """Every kind of plan: creates, steps, task creation, reassignment, completion,
    cancellation, failure; with the outbox on."""
    store = SQLAlchemyStore(db_engine, outbox=True, one_statement=one_statement)
    store._asyncpg = store._asyncpg and through_asyncpg  # False: the path another PostgreSQL driver takes
    if not through_aiosqlite:
        store._sqlite = None  # SQLite's commits through SQLAlchemy's transaction
    clock = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
    engine = Engine(_registry(), store, InlineDispatcher(clock), clock=clock)
    try:
        ids: list[str] = []
        done = await engine.start_workflow("human", {"n": 1}, tenant_id="t", created_by="u")
        ids.append(str(done.id))
        [task] = await engine.get_tasks(instance_id=done.id)
        await engine.reassign_task(task.id, "bob", reassigned_by="admin")
        await engine.reassign_task(task.id, None, assignee_group="clerks")
        finished = await engine.complete_task(task.id, "carol", {"ok": True, "missing": None})
        assert finished.status is WorkflowStatus.COMPLETED
        canceled = await engine.start_workflow("human", {"n": 2})
        ids.append(str(canceled.id))
        await engine.cancel_workflow(canceled.id, "changed my mind")
        # (No fan-out here: which branch commits first is up to the scheduler.)
        ids.append(str((await engine.start_workflow("fails", {"n": 3})).id))
        return ids
    finally:
        await engine.close()


async def _canonical(db_engine: AsyncEngine, instance_ids: list[str]) -> list[Any]:
    """The rows of the given instances with every id replaced by a label of first sight."""
    labels: dict[str, str] = {}

    def canon(value: Any) -> Any:
        if isinstance(value, uuid.UUID):
            value = str(value)
        if isinstance(value, str):
            try:
                key = str(uuid.UUID(value))
            except ValueError:
                return value
            return labels.setdefault(key, f"id{len(labels)}")
        if isinstance(value, dict):
            return {canon(k): canon(v) for k, v in sorted(value.items())}
        if isinstance(value, list | tuple):
            return [canon(v) for v in value]
        return value

    def rows(result: Any) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in result]

    out: list[Any] = []
    async with db_engine.connect() as conn:
        for iid in instance_ids:
            key = uuid.UUID(iid)
            [instance] = rows(
                await conn.execute(select(WorkflowInstanceModel.__table__).where(WorkflowInstanceModel.id == key))
            )
            records = rows(
                await conn.execute(select(StepExecutionModel.__table__).where(StepExecutionModel.instance_id == key))
            )
            records.sort(key=lambda r: (r["started_at"], r["step_name"], r["attempt"], r["status"]))
            tasks = rows(await conn.execute(select(HumanTaskModel.__table__).where(HumanTaskModel.instance_id == key)))
            outbox = rows(
                await conn.execute(
                    select(OutboxModel.__table__).where(OutboxModel.instance_id == key).order_by(OutboxModel.id)
                )
            )
            instance.pop("definition_id")
            events = [msgspec.to_builtins(decode_event(o["payload"])) for o in outbox]
            out.append([canon(instance), canon(records), canon(tasks), canon(events)])
    return out


@postgres_only
async def test_one_statement_commit_writes_what_the_transaction_writes(db_engine: AsyncEngine) -> None:
    fast = await _canonical(db_engine, await _scenario(db_engine, one_statement=True))
    slow = await _canonical(db_engine, await _scenario(db_engine, one_statement=False))
    assert fast == slow
    via_sqlalchemy = await _scenario(db_engine, one_statement=True, through_asyncpg=False)
    assert await _canonical(db_engine, via_sqlalchemy) == fast
    # Spot checks that the scenario did what it says.
    human, canceled, fails = fast
    assert human[0]["status"] == "completed"
    assert [(t["assignee_id"], t["assignee_group"], t["status"], t["completed_by"]) for t in human[2]] == [
        (None, "clerks", "completed", "carol")
    ]
    assert human[2][0]["data"] == {"ok": True, "missing": None}
    assert canceled[2][0]["status"] == "canceled"
    assert fails[0]["status"] == "failed"
    assert {"WorkflowStarted", "HumanTaskReassigned", "HumanTaskCompleted", "WorkflowCompleted"} <= {
        e["type"] for e in human[3]
    }


def _counting_statements(db_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """The first word of every statement, through SQLAlchemy or straight through asyncpg."""
    from sqlalchemy import event

    from flowstar.db._asyncpg import RawStatement
    from flowstar.db._leases import Leases

    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.split(maxsplit=1)[0])

    event.listen(db_engine.sync_engine, "before_cursor_execute", before)
    run = RawStatement._run

    async def counted(self: RawStatement, leases: Leases, method: str, params: Any) -> Any:
        seen.append(self.sql.split(maxsplit=1)[0])
        return await run(self, leases, method, params)

    monkeypatch.setattr(RawStatement, "_run", counted)
    return lambda: seen


@postgres_only
async def test_machine_steps_commit_in_one_statement_each(
    db_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _counting_statements(db_engine, monkeypatch)
    engine = PersistentExecutionEngine(_registry(), engine=db_engine)
    try:
        await engine.start_workflow("fan")  # warm-up: registers the definition
        seen().clear()
        done = await engine.start_workflow("fan")
    finally:
        await engine.close()
    assert done.status is WorkflowStatus.COMPLETED
    # create, split, a, b, join; the view returned is the state committed last, not read
    # back.  One branch goes on in the split's run; the other is dispatched, and its task
    # reads the instance from the database (one SELECT: the database, not a cache, says
    # whether it still needs work).  When both branches built on the same version, the
    # second commit is refused and that branch reloads (one SELECT more) and commits again.
    statements = seen()
    writes = [s for s in statements if s != "SELECT"]
    assert 5 <= len(writes) <= 6, statements
    assert statements.count("SELECT") == 1 + len(writes) - 5, statements
    assert all(s == "WITH" for s in writes), statements  # WITH inst AS (UPDATE ...) ...


async def test_a_stale_version_writes_nothing(db_engine: AsyncEngine) -> None:
    engine = PersistentExecutionEngine(_registry(), engine=db_engine)
    try:
        started = await engine.start_workflow("human", {"n": 1})
    finally:
        await engine.close()
    store = SQLAlchemyStore(db_engine, cache_states=False)
    state = await store.load_instance(str(started.id))
    assert state is not None
    now = state.updated_at
    record = _succeeded_record(state.id, "x", now)
    from flowstar.model.state import CommitPlan

    stale = CommitPlan(
        instance=msgspec.structs.replace(state, version=state.version, data={"stale": True}),
        expected_version=state.version - 1,
        new_records=[record],
    )
    assert await store.commit(stale) is False
    after = await store.load_instance(str(started.id))
    assert after == state
    assert [r.step_name for r in await store.step_records(state.id)] == ["prepare", "approve"]


def _succeeded_record(instance_id: str, step_name: str, now: datetime) -> StepRecord:
    return StepRecord(
        id=str(uuid.uuid4()),
        instance_id=instance_id,
        step_name=step_name,
        step_type="machine",
        status=StepStatus.SUCCEEDED,
        started_at=now,
    )


def _running_state(now: datetime) -> Any:
    from flowstar.model.state import InstanceState

    return InstanceState(
        id=str(uuid.uuid4()),
        workflow_name="w",
        workflow_version="1",
        status=WorkflowStatus.RUNNING,
        data={},
        started_at=now,
        updated_at=now,
    )


def test_plans_one_statement_cannot_express_take_the_transactional_path() -> None:
    from flowstar.model.state import CommitPlan

    now = datetime(2030, 1, 1, tzinfo=UTC)
    state = _running_state(now)
    record_id, task_id = str(uuid.uuid4()), str(uuid.uuid4())
    record = StepRecord(
        id=record_id, instance_id=state.id, step_name="s", step_type="human", status=StepStatus.WAITING, started_at=now
    )
    task = HumanTask(id=task_id, instance_id=state.id, workflow_name="w", step_name="s", title="t", created_at=now)

    def plan(**kwargs: Any) -> PlanRows:
        return plan_rows(CommitPlan(instance=state, expected_version=1, **kwargs), definition_id=None, outbox=False)

    cancel = RecordUpdate(id=record_id, status=StepStatus.CANCELED, completed_at=now)
    close = TaskUpdate(id=task_id, status=TaskStatus.CANCELED, completed_at=now)
    assert _onestatement.eligible(plan(new_records=[record], new_tasks=[task]))
    assert _onestatement.eligible(plan(record_updates=[cancel], task_updates=[close]))
    assert not _onestatement.eligible(plan(new_records=[record], record_updates=[cancel]))
    assert not _onestatement.eligible(plan(new_tasks=[task], task_updates=[close]))
    assert not _onestatement.eligible(plan(record_updates=[cancel, cancel]))
    assert not _onestatement.eligible(plan(task_updates=[close, close]))


def test_a_commit_statement_names_only_the_writes_its_plan_has() -> None:
    from flowstar.model.state import CommitPlan

    now = datetime(2030, 1, 1, tzinfo=UTC)
    state = _running_state(now)
    record = _succeeded_record(state.id, "s", now)
    step_commit = plan_rows(
        CommitPlan(instance=state, expected_version=1, new_records=[record]), definition_id=None, outbox=True
    )
    parts = _onestatement.parts_of(step_commit)
    assert parts == (True,) + (False,) * (len(_onestatement.PARTS) - 1)
    sql = _onestatement.statement(False, parts).text
    assert "new_records AS" in sql
    for absent in ("record_updates AS", "new_tasks AS", "task_updates AS", "new_outbox AS", "workflow_human_tasks"):
        assert absent not in sql
    params = _onestatement.parameters(step_commit)
    assert {"records", "expected_version"} <= set(params)
    assert not {"record_updates", "tasks", "task_updates", "payloads", "event_times"} & set(params)
    # Every combination is a statement whose parameters the matching plans supply.
    for created in (False, True):
        for combination in itertools.product((False, True), repeat=len(_onestatement.PARTS)):
            text_ = _onestatement.statement(created, combination).text
            for name, present in zip(_onestatement.PARTS, combination, strict=True):
                assert (f":{'payloads' if name == 'outbox' else name}" in text_) is present, (created, combination)


async def test_outbox_rows_are_committed_with_the_transition(db_engine: AsyncEngine) -> None:
    store = SQLAlchemyStore(db_engine, outbox=True)
    engine = Engine(_registry(), store, InlineDispatcher())
    try:
        done = await engine.start_workflow("fails")
    finally:
        await engine.close()
    taken = await store.take_outbox()
    types = [e.type for _id, e in taken if e.instance_id == str(done.id)]
    assert types[0] == "WorkflowStarted"
    assert types[-1] == "WorkflowFailed"
    assert "StepFailed" in types
    assert [i for i, _e in taken] == sorted(i for i, _e in taken)
    await store.delete_outbox([i for i, _e in taken])
    assert await store.take_outbox() == []


async def test_a_definition_row_has_the_id_steps_see_as_workflow_id(db_engine: AsyncEngine) -> None:
    store = SQLAlchemyStore(db_engine)
    engine = Engine(_registry(), store, InlineDispatcher())
    try:
        done = await engine.start_workflow("fails")
    finally:
        await engine.close()
    async with db_engine.connect() as conn:
        row_id = await conn.scalar(
            select(WorkflowDefinitionModel.id).where(
                WorkflowDefinitionModel.name == "fails", WorkflowDefinitionModel.version == "1.0.0"
            )
        )
    assert uuid.UUID(str(row_id)) == done.context.workflow_id
    assert uuid.UUID(str(row_id)).version == 5  # derived from name and version: the same in every database


@postgres_only
async def test_two_processes_recording_a_definition_at_once_both_succeed(db_engine: AsyncEngine) -> None:
    """Another process inserts the same definition row and has not committed yet: this one
    waits for it, then finds that row and writes none of its own.

    (The narrower race, both inserts passing PostgreSQL's conflict check before either
    writes its index entries, is not reproducible on demand; the insert ignores a conflict
    on any unique key for it.)"""
    definition = _registry().get_definition("fails")
    row = {
        "id": definition_uuid(definition.name, definition.version),
        "name": definition.name,
        "version": definition.version,
        "definition_json": definition.describe(),
        "is_active": True,
    }
    store = SQLAlchemyStore(db_engine)
    async with db_engine.connect() as other:
        transaction = await other.begin()
        await other.execute(insert(WorkflowDefinitionModel.__table__), row)
        ensuring = asyncio.create_task(store.ensure_definition(definition))
        waiting = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        blocked = False
        # Autocommit: within one transaction PostgreSQL answers pg_stat_activity from the
        # snapshot it took at the first read, which may predate the wait.
        async with db_engine.execution_options(isolation_level="AUTOCOMMIT").connect() as probe:
            for _ in range(1000):
                blocked = bool(await probe.scalar(waiting))
                if blocked or ensuring.done():
                    break
                await asyncio.sleep(0.01)
        if ensuring.done():
            await ensuring  # it did not wait for the row: its error, if it raised one, says why
        assert blocked  # waiting for the other process's row
        assert not ensuring.done()
        await transaction.commit()
    await ensuring
    async with db_engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(WorkflowDefinitionModel.__table__)) == 1
