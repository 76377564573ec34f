"""One plan, the same result on every store: the memory store, SQLite and PostgreSQL (both of
its commit paths) apply the same ``CommitPlan``s with the same meaning of ``None`` and of
missing fields, and answer the same queries with the same values in the same order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from flowstar.backends.memory import MemoryStore
from flowstar.db import SQLAlchemyStore
from flowstar.engine.ports import Store
from flowstar.model.enums import StepStatus, TaskStatus, WorkflowStatus
from flowstar.model.state import (
    CommitPlan,
    HumanTask,
    InstanceState,
    RecordUpdate,
    StepRecord,
    TaskUpdate,
    Token,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _id() -> str:
    return str(uuid.uuid4())


class _Ids(msgspec.Struct):
    instance: str
    other: str
    records: list[str]
    tasks: list[str]
    tokens: list[str]


def _plans(ids: _Ids) -> list[tuple[CommitPlan, bool]]:
    """Plans and whether each commits; every kind of write, with ``None`` where it matters."""
    r_wait, r_done, r_other = ids.records
    t_a, t_b, t_other = ids.tasks
    token = Token(id=ids.tokens[0], step="review", kind="human", task_id=t_a, record_id=r_wait, created_at=T0)
    timer = Token(id=ids.tokens[1], step="later", kind="timer", due_at=T0 + timedelta(hours=1), created_at=T0)
    v1 = InstanceState(
        id=ids.instance,
        workflow_name="w",
        workflow_version="1.0.0",
        status=WorkflowStatus.WAITING,
        data={"n": 1, "nested": {"list": [1, "two", None]}},
        version=1,
        tokens={token.id: token, timer.id: timer},
        joins={"j": ["a"]},
        current_step="review",
        tenant_id="acme",
        created_by="u1",
        metadata={"source": "test"},
        started_at=T0,
        updated_at=T0,
    )

    def task(task_id: str, minute: int, **kwargs: Any) -> HumanTask:
        return HumanTask(
            id=task_id,
            instance_id=ids.instance,
            workflow_name="w",
            step_name="review",
            title="Review",
            form_schema={"type": "object"},
            assignee_id="alice",
            assignee_group="managers",
            created_at=T0 + timedelta(minutes=minute),
            tenant_id="acme",
            **kwargs,
        )

    def record(record_id: str, status: StepStatus, minute: int, **kwargs: Any) -> StepRecord:
        return StepRecord(
            id=record_id,
            instance_id=ids.instance,
            step_name="review",
            step_type="human",
            status=status,
            started_at=T0 + timedelta(minutes=minute),
            tenant_id="acme",
            **kwargs,
        )

    create = CommitPlan(
        instance=v1,
        expected_version=0,
        new_records=[
            record(r_done, StepStatus.SUCCEEDED, 0, output_data="a string", input_data={"x": None}),
            record(r_wait, StepStatus.WAITING, 0, assigned_to="alice"),
        ],
        # Two tasks created at the same moment: ties are ordered by id everywhere.
        new_tasks=[task(t_b, 1, description="second"), task(t_a, 1, step_execution_id=r_wait)],
    )
    t1 = T0 + timedelta(minutes=5)
    v2 = msgspec.structs.replace(
        v1,
        version=2,
        data={"n": 2},
        updated_at=t1,
        # Fields fixed at creation: a plan that changes them changes nothing of them.
        metadata={"changed": True},
        tenant_id="other",
        created_by="someone else",
    )
    reassign = CommitPlan(
        instance=v2,
        expected_version=1,
        # A reassignment sets both fields: no group is no group (and, as the engine builds it,
        # it replaces the candidate rows the old group had).
        task_updates=[
            TaskUpdate(id=t_a, assignee_id="bob", assignee_group=None, reassign=True, candidates=()),
            # Not a reassignment: only the fields with a value change (data, completed_by stay).
            TaskUpdate(id=t_b, status=TaskStatus.CANCELED, completed_at=t1),
            TaskUpdate(id=_id(), status=TaskStatus.CANCELED, completed_at=t1),  # unknown: nothing
        ],
        record_updates=[RecordUpdate(id=_id(), status=StepStatus.CANCELED, completed_at=t1)],  # unknown
    )
    t2 = T0 + timedelta(minutes=9)
    v3 = msgspec.structs.replace(
        v2,
        version=3,
        status=WorkflowStatus.COMPLETED,
        tokens={},
        joins={},
        current_step=None,
        completed_at=t2,
        updated_at=t2,
    )
    complete = CommitPlan(
        instance=v3,
        expected_version=2,
        record_updates=[
            # Every field of a record update is set, None included.
            RecordUpdate(id=r_wait, status=StepStatus.SUCCEEDED, completed_at=t2, completed_by="bob"),
        ],
        task_updates=[
            TaskUpdate(id=t_a, status=TaskStatus.COMPLETED, completed_at=t2, completed_by="bob", data={"ok": None}),
            # Data only: status and completed_at stay as the cancellation left them.
            TaskUpdate(id=t_b, data={"late": True}),
        ],
        new_records=[record(r_other, StepStatus.SUCCEEDED, 9, output_data=None)],
    )
    stale = CommitPlan(instance=msgspec.structs.replace(v3, data={"stale": True}), expected_version=2)
    again = CommitPlan(instance=v1, expected_version=0, new_tasks=[task(t_other, 2)])
    missing = CommitPlan(instance=msgspec.structs.replace(v1, id=ids.other), expected_version=4)
    return [(create, True), (reassign, True), (complete, True), (stale, False), (again, False), (missing, False)]


async def _apply(store: Store, ids: _Ids) -> list[Any]:
    """Commit every plan; return what each step's commit and the queries then say."""
    seen: list[Any] = []
    for plan, commits in _plans(ids):
        assert await store.commit(plan) is commits
        store.forget(ids.instance)
        seen.append(await _observe(store, ids))
    return seen


async def _observe(store: Store, ids: _Ids) -> list[Any]:
    return [
        await store.load_instance(ids.instance),
        await store.load_instance(ids.other),
        [await store.get_task(t) for t in ids.tasks],
        await store.find_tasks(instance_id=ids.instance),
        await store.find_tasks(status=TaskStatus.PENDING, assignee_id="bob"),
        await store.find_tasks(assignee_group="managers", tenant_id="acme"),
        await store.step_records(ids.instance),
        await store.find_instances(workflow_name="w"),
        await store.pending_tokens(),
        await store.pending_tokens(due_before=T0 + timedelta(minutes=1)),
    ]


def _fresh_ids() -> _Ids:
    return _Ids(
        instance=_id(), other=_id(), records=[_id(), _id(), _id()], tasks=[_id(), _id(), _id()], tokens=[_id(), _id()]
    )


async def test_memory_and_sql_stores_apply_plans_alike(db_engine: AsyncEngine) -> None:
    stores = [SQLAlchemyStore(db_engine, cache_states=False)]
    if db_engine.dialect.name == "postgresql":
        # Its transactional path too (the one-statement path is the default).
        stores.append(SQLAlchemyStore(db_engine, cache_states=False, one_statement=False))
    # One memory store for both runs, as the database holds both (queries span instances).
    memory = MemoryStore()
    for store in stores:
        ids = _fresh_ids()
        on_memory = await _apply(memory, ids)
        assert on_memory[0][0] is not None
        try:
            assert await _apply(store, ids) == on_memory
        finally:
            await store.close()


async def test_the_rules_the_stores_share() -> None:
    """Spot checks of the shared semantics, on the memory store (the SQL ones equal it)."""
    ids = _fresh_ids()
    final = (await _apply(MemoryStore(), ids))[-1]
    state, _missing, (t_a, t_b, t_other), *_rest = final
    assert state.metadata == {"source": "test"}
    assert (state.tenant_id, state.created_by) == ("acme", "u1")
    assert state.data == {"n": 2}
    assert (t_a.assignee_id, t_a.assignee_group, t_a.status, t_a.data) == (
        "bob",
        None,
        TaskStatus.COMPLETED,
        {"ok": None},
    )
    assert (t_b.status, t_b.description, t_b.assignee_group) == (TaskStatus.CANCELED, "second", "managers")
    assert (t_b.completed_at, t_b.data) == (T0 + timedelta(minutes=5), {"late": True})
    assert t_other is None
    records = final[6]
    waited = next(r for r in records if r.id == ids.records[0])
    assert (waited.status, waited.output_data, waited.error, waited.completed_by) == (
        StepStatus.SUCCEEDED,
        None,
        None,
        "bob",
    )
    # After the first commit, the timer and nothing else is pending; due after T0 + 1 min.
    first = (await _apply(MemoryStore(), _fresh_ids()))[0]
    assert [t.kind for _i, t in first[8]] == ["timer"]
    assert first[9] == []
