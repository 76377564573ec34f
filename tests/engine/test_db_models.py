"""The documented SQLAlchemy models: relationships that load, UUIDv7 default ids (SQL stores)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from flowstar.db.models import HumanTaskModel, StepExecutionModel, WorkflowDefinitionModel, WorkflowInstanceModel

pytestmark = pytest.mark.parametrize(
    "store_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)], indirect=True
)


@pytest.fixture
async def session(database: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with async_sessionmaker(database, expire_on_commit=False)() as session:
        yield session


async def _seed(session: AsyncSession) -> tuple[WorkflowDefinitionModel, list[WorkflowInstanceModel]]:
    definition = WorkflowDefinitionModel(name="orders", version="1.0.0")
    other = WorkflowDefinitionModel(name="other", version="1.0.0")
    session.add_all([definition, other])
    await session.flush()
    mine = [
        WorkflowInstanceModel(definition_id=definition.id, workflow_name="orders", workflow_version="1.0.0", status=s)
        for s in ("running", "completed")
    ]
    session.add_all(
        [
            *mine,
            WorkflowInstanceModel(
                definition_id=other.id, workflow_name="other", workflow_version="1.0.0", status="running"
            ),
        ]
    )
    await session.commit()
    return definition, mine


def _ids(rows: list[WorkflowInstanceModel]) -> set[str]:
    return {str(row.id) for row in rows}


async def test_instances_load_on_request(session: AsyncSession) -> None:
    definition, mine = await _seed(session)
    session.expunge_all()
    loaded = (
        await session.execute(select(WorkflowDefinitionModel).where(WorkflowDefinitionModel.name == "orders"))
    ).scalar_one()
    assert _ids(await loaded.awaitable_attrs.instances) == _ids(mine)
    session.expunge_all()
    eager = (
        await session.execute(
            select(WorkflowDefinitionModel)
            .where(WorkflowDefinitionModel.id == definition.id)
            .options(selectinload(WorkflowDefinitionModel.instances))
        )
    ).scalar_one()
    assert _ids(eager.instances) == _ids(mine)
    instance = (
        await session.execute(select(WorkflowInstanceModel).where(WorkflowInstanceModel.id == mine[0].id))
    ).scalar_one()
    parent = await instance.awaitable_attrs.definition
    assert parent is not None
    assert parent.name == "orders"


async def test_reading_unloaded_instances_raises_instead_of_an_empty_list(session: AsyncSession) -> None:
    await _seed(session)
    session.expunge_all()
    loaded = (
        await session.execute(select(WorkflowDefinitionModel).where(WorkflowDefinitionModel.name == "orders"))
    ).scalar_one()
    with pytest.raises(MissingGreenlet, match="greenlet_spawn has not been called"):
        _ = loaded.instances
    await session.refresh(loaded, ["instances"])
    assert len(loaded.instances) == 2


async def test_rows_get_uuid7_ids_by_default(session: AsyncSession) -> None:
    definition, mine = await _seed(session)
    record = StepExecutionModel(instance_id=mine[0].id, step_name="s", step_type="machine", status="succeeded")
    session.add(record)
    await session.flush()
    task = HumanTaskModel(
        instance_id=mine[0].id, step_execution_id=record.id, workflow_name="orders", step_name="s", title="T"
    )
    session.add(task)
    await session.commit()
    ids = [definition.id, *(row.id for row in mine), record.id, task.id]
    assert [row_id.version for row_id in ids] == [7] * len(ids)
    assert mine[0].id < mine[1].id  # time-ordered
