"""Every documented repository method, on SQLite and PostgreSQL, including tenant isolation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from flowstar import TaskStatus, WorkflowStatus
from flowstar.db import (
    HumanTaskModel,
    HumanTaskRepository,
    StepExecutionModel,
    StepExecutionRepository,
    WorkflowDefinitionModel,
    WorkflowDefinitionRepository,
    WorkflowInstanceModel,
    WorkflowInstanceRepository,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def session(db_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    factory = async_sessionmaker(db_engine, expire_on_commit=False)
    async with factory() as session:
        yield session


def _instance(name: str, status: WorkflowStatus, minute: int, **kwargs: Any) -> WorkflowInstanceModel:
    return WorkflowInstanceModel(
        id=uuid4(),
        workflow_name=name,
        workflow_version="1.0.0",
        status=status.value,
        context_data={},
        metadata_={},
        started_at=T0 + timedelta(minutes=minute),
        tokens={},
        joins={},
        history=[],
        lock_version=1,
        **kwargs,
    )


def _record(instance: WorkflowInstanceModel, step: str, status: str, minute: int, **kwargs: Any) -> StepExecutionModel:
    return StepExecutionModel(
        id=uuid4(),
        instance_id=instance.id,
        step_name=step,
        step_type="machine",
        status=status,
        started_at=T0 + timedelta(minutes=minute),
        tenant_id=instance.tenant_id,
        **kwargs,
    )


def _task(instance: WorkflowInstanceModel, step: str, minute: int, **kwargs: Any) -> HumanTaskModel:
    kwargs.setdefault("status", TaskStatus.PENDING.value)
    return HumanTaskModel(
        id=uuid4(),
        instance_id=instance.id,
        workflow_name=instance.workflow_name,
        step_name=step,
        title=f"Task {step}",
        created_at=T0 + timedelta(minutes=minute),
        tenant_id=instance.tenant_id,
        **kwargs,
    )


def _ids(models: Any) -> set[UUID]:
    return {m.id for m in models}


# -- definitions -----------------------------------------------------------------------------


async def test_definition_repository(session: AsyncSession) -> None:
    repo = WorkflowDefinitionRepository(session=session)
    for name, version in [("wf", "1.9.0"), ("wf", "1.10.0"), ("wf", "1.2.0"), ("other", "2.0.0")]:
        session.add(WorkflowDefinitionModel(name=name, version=version, definition_json={"v": version}, is_active=True))
    await session.commit()

    latest = await repo.get_by_name("wf")
    assert latest is not None
    assert latest.version == "1.10.0"  # semantic-version order, not text order
    exact = await repo.get_by_name("wf", "1.9.0")
    assert exact is not None
    assert exact.definition_json == {"v": "1.9.0"}
    assert await repo.get_by_name("wf", "3.0.0") is None
    assert await repo.get_by_name("missing") is None
    latest_version = await repo.get_latest_version("wf")
    assert latest_version is not None
    assert latest_version.version == "1.10.0"

    assert await repo.deactivate_version("wf", "1.10.0") is True
    assert await repo.deactivate_version("wf", "9.9.9") is False
    await session.commit()
    after = await repo.get_latest_version("wf")
    assert after is not None
    assert after.version == "1.9.0"
    assert await repo.get_by_name("wf", "1.10.0") is None  # active_only by default
    inactive = await repo.get_by_name("wf", "1.10.0", active_only=False)
    assert inactive is not None
    assert inactive.is_active is False
    any_latest = await repo.get_by_name("wf", active_only=False)
    assert any_latest is not None
    assert any_latest.version == "1.10.0"
    assert sorted((d.name, d.version) for d in await repo.list_active()) == [
        ("other", "2.0.0"),
        ("wf", "1.2.0"),
        ("wf", "1.9.0"),
    ]
    # The advanced-alchemy base methods work too.
    assert await repo.count() == 4


# -- instances -------------------------------------------------------------------------------


@pytest.fixture
async def instances(session: AsyncSession) -> dict[str, list[WorkflowInstanceModel]]:
    """Tenant a: 5 of "wf" (3 completed, 2 running), 1 of "other" waiting; tenant b: 3 of "wf"."""
    a = [
        _instance("wf", WorkflowStatus.COMPLETED if i < 3 else WorkflowStatus.RUNNING, i, tenant_id="a")
        for i in range(5)
    ]
    a[0].created_by = a[1].created_by = "alice"
    a.append(_instance("other", WorkflowStatus.WAITING, 5, tenant_id="a", created_by="alice"))
    b = [_instance("wf", WorkflowStatus.RUNNING, 10 + i, tenant_id="b", created_by="bob") for i in range(3)]
    b[0].created_by = "alice"  # same user name in another tenant
    session.add_all(a + b)
    await session.commit()
    return {"a": a, "b": b}


async def test_find_by_workflow_with_status_and_pagination(
    session: AsyncSession, instances: dict[str, list[WorkflowInstanceModel]]
) -> None:
    repo = WorkflowInstanceRepository(session=session)
    items, total = await repo.find_by_workflow("wf")
    assert total == 8
    assert [i.started_at for i in items] == sorted((i.started_at for i in items), reverse=True)  # newest first

    page, total = await repo.find_by_workflow("wf", limit=3, offset=3)
    assert total == 8
    assert [i.id for i in page] == [i.id for i in items[3:6]]

    done, total = await repo.find_by_workflow("wf", status=WorkflowStatus.COMPLETED)
    assert total == 3
    assert {i.status for i in done} == {"completed"}
    running, total = await repo.find_by_workflow("wf", status="running", limit=1)
    assert total == 5
    assert len(running) == 1

    mine, total = await repo.find_by_workflow("wf", tenant_id="b")
    assert total == 3
    assert _ids(mine) == _ids(instances["b"])


async def test_find_by_user_tenant_and_running(
    session: AsyncSession, instances: dict[str, list[WorkflowInstanceModel]]
) -> None:
    repo = WorkflowInstanceRepository(session=session)
    a, b = instances["a"], instances["b"]

    assert _ids(await repo.find_by_user("alice")) == {a[0].id, a[1].id, a[5].id, b[0].id}
    assert _ids(await repo.find_by_user("alice", status=WorkflowStatus.WAITING)) == {a[5].id}
    assert _ids(await repo.find_by_user("alice", tenant_id="b")) == {b[0].id}

    page, total = await repo.find_by_tenant("a", limit=2)
    assert total == 6
    assert [i.id for i in page] == [a[5].id, a[4].id]
    page2, _ = await repo.find_by_tenant("a", limit=2, offset=2)
    assert [i.id for i in page2] == [a[3].id, a[2].id]
    completed, total = await repo.find_by_tenant("a", status=WorkflowStatus.COMPLETED)
    assert total == 3
    assert _ids(completed) == {a[0].id, a[1].id, a[2].id}
    assert await repo.find_by_tenant("nobody") == ([], 0)

    assert _ids(await repo.find_running()) == {a[3].id, a[4].id, a[5].id, *_ids(b)}
    assert _ids(await repo.find_running(tenant_id="a")) == {a[3].id, a[4].id, a[5].id}


# -- step executions -------------------------------------------------------------------------


async def test_step_execution_repository(
    session: AsyncSession, instances: dict[str, list[WorkflowInstanceModel]]
) -> None:
    repo = StepExecutionRepository(session=session)
    first, second = instances["a"][3], instances["b"][0]
    records = [
        _record(first, "load", "succeeded", 3),
        _record(first, "charge", "failed", 1, attempt=1, error="card declined"),  # started first
        _record(first, "charge", "succeeded", 2, attempt=2),
        _record(second, "charge", "failed", 0, error="timeout"),
    ]
    session.add_all(records)
    await session.commit()

    ordered = await repo.find_by_instance(first.id)
    assert [(r.step_name, r.attempt) for r in ordered] == [("charge", 1), ("charge", 2), ("load", 1)]
    assert await repo.find_by_instance(uuid4()) == []

    latest = await repo.find_by_step_name(str(first.id), "charge")
    assert latest is not None
    assert (latest.attempt, latest.status) == (2, "succeeded")
    assert await repo.find_by_step_name(first.id, "nope") is None

    assert [r.error for r in await repo.find_failed()] == ["timeout", "card declined"]
    assert [r.error for r in await repo.find_failed(first.id)] == ["card declined"]
    assert [r.error for r in await repo.find_failed(tenant_id="b")] == ["timeout"]
    assert [r.error for r in await repo.find_failed(first.id, tenant_id="b")] == []


# -- human tasks -----------------------------------------------------------------------------


async def test_human_task_queries(session: AsyncSession, instances: dict[str, list[WorkflowInstanceModel]]) -> None:
    repo = HumanTaskRepository(session=session)
    inst, other = instances["a"][3], instances["b"][1]
    now = datetime.now(UTC)
    alice = _task(inst, "review", 0, assignee_id="alice", due_at=now - timedelta(hours=1))
    bob = _task(inst, "sign", 1, assignee_id="bob")
    managers = _task(inst, "approve", 2, assignee_group="managers", due_at=now + timedelta(days=1))
    anyone = _task(inst, "triage", 3)
    done = _task(inst, "old", 4, assignee_id="alice", status="completed", due_at=now - timedelta(days=2))
    foreign = _task(other, "review", 5, assignee_id="alice", due_at=now - timedelta(hours=2))
    session.add_all([alice, bob, managers, anyone, done, foreign])
    await session.commit()

    assert _ids(await repo.find_pending()) == {alice.id, bob.id, managers.id, anyone.id, foreign.id}
    assert _ids(await repo.find_pending("alice")) == {alice.id, anyone.id, foreign.id}
    assert _ids(await repo.find_pending(assignee_group="managers")) == {managers.id, anyone.id}
    assert _ids(await repo.find_pending("bob", "managers")) == {bob.id, managers.id, anyone.id}
    assert _ids(await repo.find_pending("alice", tenant_id="a")) == {alice.id, anyone.id}
    assert _ids(await repo.find_pending("alice", tenant_id="b")) == {foreign.id}
    # Ordered by due date, undated last.
    assert [t.id for t in await repo.find_pending("alice")] == [foreign.id, alice.id, anyone.id]

    assert [t.id for t in await repo.find_by_instance(inst.id)] == [alice.id, bob.id, managers.id, anyone.id, done.id]
    assert [t.id for t in await repo.find_by_instance(str(other.id))] == [foreign.id]

    assert [t.id for t in await repo.find_overdue()] == [foreign.id, alice.id]
    assert [t.id for t in await repo.find_overdue(tenant_id="a")] == [alice.id]
    assert [t.id for t in await repo.find_overdue(now + timedelta(days=2))] == [foreign.id, alice.id, managers.id]


def test_repositories_do_not_change_engine_state() -> None:
    """Task and instance state changes only through the engine's transitions (with their
    events): the repositories offer no status, completion or cancellation writes."""
    for method in ("update_status", "complete_task", "cancel_task"):
        assert not hasattr(WorkflowInstanceRepository, method)
        assert not hasattr(HumanTaskRepository, method)


# -- tenants ---------------------------------------------------------------------------------


async def test_tenants_never_see_each_others_rows(
    session: AsyncSession, instances: dict[str, list[WorkflowInstanceModel]]
) -> None:
    """Every list query given a tenant returns only that tenant's rows."""
    a_ids, b_ids = _ids(instances["a"]), _ids(instances["b"])
    session.add_all(
        [
            *[_record(i, "s", "failed", 0) for i in instances["a"] + instances["b"]],
            *[_task(i, "t", 0, assignee_id="u", due_at=T0) for i in instances["a"] + instances["b"]],
        ]
    )
    await session.commit()
    inst_repo = WorkflowInstanceRepository(session=session)
    steps = StepExecutionRepository(session=session)
    tasks = HumanTaskRepository(session=session)

    for tenant, own in (("a", a_ids), ("b", b_ids)):
        queries: list[set[UUID]] = [
            _ids((await inst_repo.find_by_workflow("wf", tenant_id=tenant))[0]),
            _ids(await inst_repo.find_by_user("alice", tenant_id=tenant)),
            _ids((await inst_repo.find_by_tenant(tenant))[0]),
            _ids(await inst_repo.find_running(tenant_id=tenant)),
            {r.instance_id for r in await steps.find_failed(tenant_id=tenant)},
            {t.instance_id for t in await tasks.find_pending("u", tenant_id=tenant)},
            {t.instance_id for t in await tasks.find_pending(tenant_id=tenant)},
            {t.instance_id for t in await tasks.find_overdue(tenant_id=tenant)},
            {r.instance_id for i in a_ids | b_ids for r in await steps.find_by_instance(i, tenant_id=tenant)},
            {t.instance_id for i in a_ids | b_ids for t in await tasks.find_by_instance(i, tenant_id=tenant)},
        ]
        for query, found in enumerate(queries):
            assert found, f"query {query} found nothing for tenant {tenant}"
            assert found <= own, f"query {query} leaked another tenant's rows to tenant {tenant}"
        assert len(await steps.find_failed(tenant_id=tenant)) == len(own)


async def test_an_instance_an_admin_cancels_is_not_resumed(session: AsyncSession, db_engine: AsyncEngine) -> None:
    """An admin stops an instance through the engine (``cancel_workflow``): its pending
    activations go, ``recover()`` leaves it alone, and the repositories show it canceled."""
    from flowstar import BaseMachineStep, WorkflowContext, WorkflowDefinition, WorkflowRegistry
    from flowstar.db import PersistentExecutionEngine, SQLAlchemyStore

    class Slow(BaseMachineStep):
        name = "slow"

        async def execute(self, context: WorkflowContext) -> None:
            context.set("ran", True)

    registry = WorkflowRegistry()
    registry.register_definition(
        WorkflowDefinition(
            name="slow", version="1.0.0", steps={"slow": Slow()}, edges=[], initial_step="slow", terminal_steps={"slow"}
        )
    )
    store = SQLAlchemyStore(db_engine, cache_states=False)
    engine = PersistentExecutionEngine(registry, engine=db_engine)
    engine.dispatcher._closed = True  # commit the start, run nothing: as if the process died
    stuck = [await engine.start_workflow("slow") for _ in range(2)]
    await engine.close()
    assert len(await store.pending_tokens()) == 2

    admin = PersistentExecutionEngine(registry, engine=db_engine)
    try:
        await admin.cancel_workflow(stuck[0].id, "stopped by an admin")
    finally:
        await admin.close()
    assert [i for i, _t in await store.pending_tokens()] == [str(stuck[1].id)]
    repo = WorkflowInstanceRepository(session=session)
    assert _ids(await repo.find_running()) == {UUID(str(stuck[1].id))}
    canceled, total = await repo.find_by_workflow("slow", status=WorkflowStatus.CANCELED)
    assert (total, canceled[0].id, canceled[0].dispatch_at) == (1, UUID(str(stuck[0].id)), None)
    await session.rollback()  # end the read: SQLite's pool has one connection

    again = PersistentExecutionEngine(registry, engine=db_engine)
    try:
        assert await again.recover() == 1
        done = await again.wait_for_status(stuck[1].id, timeout=10)
        assert done.data == {"ran": True}
        untouched = await again.get_instance(stuck[0].id)
        assert (untouched.status, untouched.data) == (WorkflowStatus.CANCELED, {})
    finally:
        await again.close()
