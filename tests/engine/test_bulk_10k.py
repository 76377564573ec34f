"""A bulk cancel of 10,000 instances on PostgreSQL, interrupted and resumed: each acted on once."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text

from flowstar import ManualClock, WorkflowStatus
from flowstar.engine.bulk import STALE_AFTER
from flowstar.model.bulk import BulkFilter, BulkOperation, BulkRequest
from flowstar.model.waits import SignalStep
from tests.unit.helpers import Set, linear

pytestmark = pytest.mark.integration

COUNT = 10_000


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
async def test_ten_thousand_instances_are_each_canceled_once(make_engine: Any, clock: ManualClock) -> None:
    engine = make_engine(linear("parked", SignalStep("hold"), Set("done")), clock=clock)
    for _ in range(COUNT // 100):
        await asyncio.gather(*(engine.start_workflow("parked") for _ in range(100)))
    request = BulkRequest(kind="cancel", filter=BulkFilter(workflow="parked"), reason="bulk cleanup")
    assert await engine.bulk.count(request) == COUNT
    operation = await engine.bulk.submit(request, run=False)
    pages: list[int] = []

    def stop_after_three_pages(progress: BulkOperation) -> None:
        pages.append(progress.done)
        if len(pages) == 3:
            raise asyncio.CancelledError  # the process stops after saving its third page

    with pytest.raises(asyncio.CancelledError):
        await engine.bulk.run(operation.id, stop_after_three_pages)
    assert pages == [500, 1000, 1500]
    clock.advance(STALE_AFTER * 2)
    assert await engine.bulk.resume() == 1
    done = await engine.bulk.wait(operation.id)

    assert (done.status, done.total, done.acted, done.skipped, done.failed) == ("completed", COUNT, COUNT, 0, 0)
    database = engine.store.engine
    async with database.connect() as conn:
        statuses = dict(
            (await conn.execute(text("SELECT status, count(*) FROM workflow_instances GROUP BY status"))).all()
        )
        # One cancellation step record per instance: none was canceled twice.
        cancels = (
            await conn.execute(text("SELECT count(*) FROM workflow_instances WHERE error = 'bulk cleanup'"))
        ).one()
    assert statuses == {WorkflowStatus.CANCELED.value: COUNT}
    assert tuple(cancels) == (COUNT,)
    assert Counter(pages) == Counter({500: 1, 1000: 1, 1500: 1})
