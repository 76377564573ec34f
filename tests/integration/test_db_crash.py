"""Crash recovery for real: a worker process is SIGKILLed mid-run and another engine resumes.

``crash_worker.py`` runs ``N`` instances of a five-step workflow.  When every odd instance has
finished and every even one is inside step ``s4`` (its side effect written, its outcome not
committed), the test kills the worker with SIGKILL, snapshots what was committed, and recovers
the instances with a new ``PersistentExecutionEngine`` in this process.

Committed outcomes must be exactly once and never lost; step bodies may run again
(at-least-once): the re-run ``s4`` bodies show up as a second side effect.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Executable, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.integration.crash_worker import SIDE_EFFECTS_DDL, STEPS, build_registry

from flowstar import WorkflowStatus
from flowstar.db import PersistentExecutionEngine, SQLAlchemyStore, StepExecutionModel, WorkflowInstanceModel

N = 30
WORKER = Path(__file__).with_name("crash_worker.py")
ROOT = Path(__file__).parents[2]


async def _scalar(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def _rows(engine: AsyncEngine, sql: str | Executable) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql) if isinstance(sql, str) else sql)).all())


# Typed selects: ids are BINARY(16) on SQLite, so they go through the model's GUID type.
_RECORDS = StepExecutionModel.__table__
RECORD_COLUMNS = select(
    _RECORDS.c.id, _RECORDS.c.instance_id, _RECORDS.c.step_name, _RECORDS.c.status, _RECORDS.c.attempt
)


async def _wait_until_mid_run(engine: AsyncEngine, proc: asyncio.subprocess.Process, seconds: float) -> None:
    """Every odd instance completed (5 records), every even one committed s1..s3 and entered s4."""
    want_records = (N // 2) * 5 + (N // 2) * 3
    async with asyncio.timeout(seconds):
        while True:
            if proc.returncode is not None:
                _out, err = await proc.communicate()
                raise AssertionError(f"worker exited early ({proc.returncode}): {err.decode()[-2000:]}")
            records = await _scalar(engine, "SELECT count(*) FROM workflow_step_executions WHERE status = 'succeeded'")
            in_s4 = await _scalar(engine, "SELECT count(*) FROM side_effects WHERE step = 's4'")
            if records == want_records and in_s4 == N:
                return
            assert records <= want_records, f"{records} records: the worker ran past the blocking step"
            await asyncio.sleep(0.02)


@pytest.mark.timeout(120)
async def test_sigkilled_worker_resumes_with_every_outcome_committed_exactly_once(
    db_engine: AsyncEngine, database_url: str
) -> None:
    async with db_engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS side_effects"))
        await conn.execute(text(SIDE_EFFECTS_DDL))

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        database_url,
        str(N),
        cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await _wait_until_mid_run(db_engine, proc, seconds=60)
    finally:
        if proc.returncode is None:
            proc.kill()  # SIGKILL: no cleanup, no graceful shutdown
        await proc.communicate()
    assert proc.returncode == -9

    # What the dead process had committed.
    before_records = {
        str(r.id): (str(r.instance_id), r.step_name, r.status, r.attempt)
        for r in await _rows(db_engine, RECORD_COLUMNS)
    }
    reader = SQLAlchemyStore(db_engine, cache_states=False)
    ids = [str(r.id) for r in await _rows(db_engine, select(WorkflowInstanceModel.__table__.c.id))]
    assert len(ids) == N
    before_states = {iid: await reader.load_instance(iid) for iid in ids}
    assert Counter(s.status for s in before_states.values() if s) == {
        WorkflowStatus.COMPLETED: N // 2,
        WorkflowStatus.RUNNING: N // 2,
    }

    engine = PersistentExecutionEngine(build_registry(db_engine, slow=False), engine=db_engine)
    try:
        assert await engine.recover() == N // 2  # one pending s4 activation per unfinished instance
        finished = await asyncio.gather(*(engine.wait_for_status(iid, timeout=30) for iid in ids))
    finally:
        await engine.close()

    assert {f.status for f in finished} == {WorkflowStatus.COMPLETED}
    records = await _rows(db_engine, RECORD_COLUMNS.add_columns(_RECORDS.c.output_data))
    # Exactly one committed outcome per step per instance, and nothing else.
    per_step = Counter((str(r.instance_id), r.step_name, r.status) for r in records)
    assert per_step == {(iid, step, "succeeded"): 1 for iid in ids for step in STEPS}
    # Nothing committed before the crash was lost or changed.
    after = {str(r.id): (str(r.instance_id), r.step_name, r.status, r.attempt) for r in records}
    assert {k: after.get(k) for k in before_records} == before_records

    side_effects = Counter(
        (r.instance_id, r.step) for r in await _rows(db_engine, "SELECT instance_id, step FROM side_effects")
    )
    tokens = {r.token for r in await _rows(db_engine, "SELECT token FROM side_effects")}
    for iid in ids:
        state = await reader.load_instance(iid)
        assert state is not None
        before = before_states[iid]
        assert before is not None
        assert state.data["trail"] == list(STEPS)  # every write once, in order
        # Every write committed before the crash is still there (the trail only grew).
        kept = {k: v for k, v in before.data.items() if k != "trail"}
        assert {k: state.data[k] for k in kept} == kept
        assert state.data["trail"][: len(before.data["trail"])] == before.data["trail"]
        for record in (r for r in records if str(r.instance_id) == iid):
            output = record.output_data if isinstance(record.output_data, dict) else {}
            # The committed outcome is the one whose token the context holds, from a real run.
            assert state.data[record.step_name] == output.get("token")
            assert output.get("token") in tokens
        # At-least-once bodies: the s4 interrupted by the kill ran again after recovery.
        rerun = 2 if state.data["i"] % 2 == 0 else 1
        assert [side_effects[(iid, step)] for step in STEPS] == [1, 1, 1, rerun, 1]
