"""A stopped worker exits as soon as its running steps are done, not after SAQ's upkeep sleeps.

SAQ's stop waits for its upkeep loops too, each of which ends only after its current sleep;
``build_settings`` keeps every loop at one second (``UPKEEP_TIMERS``).  With SAQ's own timers
(sweep 60 s, worker info 10 s) these stops take many seconds longer.
"""

from __future__ import annotations

import time

from tests.integration.saq_support import SaqEnv, inprocess_worker, side_effects, wait_for

from flowstar import WorkflowStatus

STEP_SECONDS = 2.0
# One upkeep interval (1 s), plus room for a busy machine.
SLACK_SECONDS = 2.5


async def test_an_idle_worker_stops_within_an_upkeep_interval(saq_env: SaqEnv) -> None:
    async with inprocess_worker(saq_env) as worker:
        began = time.monotonic()
        await worker.stop()
        assert time.monotonic() - began < SLACK_SECONDS


async def test_a_worker_stopped_mid_step_finishes_it_then_exits_promptly(saq_env: SaqEnv) -> None:
    async with inprocess_worker(saq_env) as worker, saq_env.client() as client:
        started = await client.start_workflow("single", {"sleep": STEP_SECONDS})

        async def running() -> bool:
            return bool(await side_effects(saq_env, [str(started.id)]))

        await wait_for(running, within=20, what="the step to start")
        began = time.monotonic()
        await worker.stop()
        took = time.monotonic() - began
        done = await client.wait_for_status(started.id, timeout=20)
    assert done.status is WorkflowStatus.COMPLETED, done.error  # the step ran to its end
    assert len(await side_effects(saq_env, [str(started.id)])) == 1  # once, by this worker
    assert took < STEP_SECONDS + SLACK_SECONDS
