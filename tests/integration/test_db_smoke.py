"""The quick start on both databases, with state read back from the tables."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from tests.examples.conftest import import_example

from flowstar import WorkflowRegistry, WorkflowStatus
from flowstar.db import PersistentExecutionEngine, SQLAlchemyStore


async def test_quick_start_persists_every_step(db_engine: AsyncEngine) -> None:
    registry: WorkflowRegistry = import_example("quickstart").registry
    engine = PersistentExecutionEngine(registry, engine=db_engine)
    started = await engine.start_workflow("approval_workflow", initial_data={"amount": 500})
    assert started.status is WorkflowStatus.WAITING
    await engine.complete_human_task(started.id, "manager_approval", "boss", {"approved": True})

    fresh = SQLAlchemyStore(db_engine, cache_states=False)
    state = await fresh.load_instance(str(started.id))
    assert state is not None
    assert state.status is WorkflowStatus.COMPLETED
    assert state.data["status"] == "processed"
    assert state.data["approved"] is True
    records = await fresh.step_records(str(started.id))
    assert [(r.step_name, r.status.value) for r in records] == [
        ("submit", "succeeded"),
        ("manager_approval", "succeeded"),
        ("process", "succeeded"),
    ]
    assert records[1].completed_by == "boss"
    assert records[1].output_data == {"approved": True}
