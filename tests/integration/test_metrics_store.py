"""The SQL store's scrape-time gauges on SQLite and PostgreSQL: open and overdue human tasks,
the outbox backlog and its age, each checked against the rows themselves."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.unit.helpers import Set, linear
from tests.unit.metrics_helpers import closed_port, sample, samples

from flowstar import BaseHumanStep, ManualClock, WorkflowRegistry
from flowstar.db import PersistentExecutionEngine
from flowstar.metrics import FlowstarMetrics
from flowstar.metrics.health import readiness


def _registry() -> WorkflowRegistry:
    registry = WorkflowRegistry()
    review = BaseHumanStep("review", assignee="bob", due_in=timedelta(minutes=30))
    registry.register_definition(linear("approval", Set("submit"), review, Set("done")))
    registry.register_definition(linear("quiet", Set("only")))
    return registry


async def _count(db: AsyncEngine, sql: str) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def test_task_gauges_follow_the_rows(db_engine: AsyncEngine, clock: ManualClock) -> None:
    engine = PersistentExecutionEngine(_registry(), engine=db_engine, clock=clock)
    metrics = FlowstarMetrics()
    metrics.install(engine)
    first = await engine.start_workflow("approval")
    clock.advance(timedelta(minutes=20))
    await engine.start_workflow("approval")

    found = samples(await metrics.render())
    assert sample(found, "flowstar_human_tasks_open", workflow="approval") == 2
    assert sample(found, "flowstar_human_tasks_overdue", workflow="approval") == 0
    assert sample(found, "flowstar_human_tasks_open", workflow="quiet") == 0
    assert sample(found, "flowstar_probe_up", probe="store") == 1

    clock.advance(timedelta(minutes=15))  # the first task is 35 minutes old, the second 15
    found = samples(await metrics.render())
    assert sample(found, "flowstar_human_tasks_overdue", workflow="approval") == 1

    await engine.complete_human_task(first.id, "review", "bob", {})
    found = samples(await metrics.render())
    assert sample(found, "flowstar_human_tasks_open", workflow="approval") == 1
    assert sample(found, "flowstar_human_tasks_overdue", workflow="approval") == 0
    pending = await _count(db_engine, "SELECT count(*) FROM workflow_human_tasks WHERE status = 'pending'")
    assert pending == 1
    # Without an outbox no events are kept: the backlog is an empty table, not absent.
    assert sample(found, "flowstar_outbox_backlog") == 0
    assert sample(found, "flowstar_outbox_oldest_age_seconds") == 0
    await engine.close()


async def test_the_outbox_backlog_and_its_age_are_the_unpublished_rows(
    db_engine: AsyncEngine, clock: ManualClock
) -> None:
    # An outbox with no relay draining it: every committed event stays.
    engine = PersistentExecutionEngine(_registry(), engine=db_engine, clock=clock, outbox=True)
    metrics = FlowstarMetrics()
    metrics.install(engine)
    await engine.start_workflow("quiet")
    clock.advance(timedelta(seconds=90))
    await engine.start_workflow("quiet")

    found = samples(await metrics.render())
    rows = await _count(db_engine, "SELECT count(*) FROM workflow_outbox")
    assert rows > 0
    assert sample(found, "flowstar_outbox_backlog") == rows
    assert sample(found, "flowstar_outbox_oldest_age_seconds") == 90.0
    await engine.close()


async def test_readiness_checks_the_database(db_engine: AsyncEngine) -> None:
    engine = PersistentExecutionEngine(_registry(), engine=db_engine)
    report = await readiness(engine)
    assert report.body() == {"status": "ready", "checks": {"database": {"ok": True}}}
    assert report.status_code == 200
    await engine.close()


async def test_a_database_that_refuses_connections_is_unready_and_its_probe_down() -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/test"
    engine = PersistentExecutionEngine(_registry(), url=url)
    metrics = FlowstarMetrics()
    metrics.install(engine)
    report = await readiness(engine, within=5)
    body: Any = report.body()
    assert report.status_code == 503
    assert body["status"] == "unavailable"
    assert list(body["checks"]) == ["database"]
    assert body["checks"]["database"]["ok"] is False
    assert "refused" in body["checks"]["database"]["error"].lower()
    found = samples(await metrics.render())
    assert sample(found, "flowstar_probe_up", probe="store") == 0
    await engine.close()
