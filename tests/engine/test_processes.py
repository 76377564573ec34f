"""Several processes on one database: what one process remembers never decides for another's work.

Each process's store remembers the states it committed (``SQLAlchemyStore``'s cache); another
process may have committed since.  Two engines on one database stand for two processes (the
``other_process`` fixture); on the memory store they share the one store, which caches nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flowstar import ManualClock, WorkflowContext, WorkflowStatus
from flowstar.model.bulk import BulkFilter, BulkRequest
from flowstar.model.definition import EventTrigger
from flowstar.model.waits import SignalStep
from flowstar.testing import settle
from tests.unit.helpers import Fn, Set, linear

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


async def test_a_delayed_start_another_process_canceled_does_not_run(make_engine: Any, other_process: Any) -> None:
    definition = linear("later", Set("charge", charged=True), Set("done"))
    clock = ManualClock()
    api = make_engine(definition, clock=clock)
    admin = other_process(api, definition)
    instance = await api.start_workflow("later", start_at=clock.now() + HOUR)
    kept = await api.start_workflow("later", start_at=clock.now() + HOUR)  # fires beside it
    await admin.cancel_workflow(instance.id, "not needed")

    clock.advance(HOUR)  # the starts' timers fire in the process that scheduled them
    await settle(api)
    assert (await api.get_instance(kept.id)).status is WorkflowStatus.COMPLETED
    assert definition.steps["charge"].runs == 1  # the kept instance's, not the canceled one's
    assert (await api.get_instance(instance.id)).status is WorkflowStatus.CANCELED


async def test_a_broadcast_wakes_an_instance_another_process_moved_to_the_wait(
    make_engine: Any, other_process: Any
) -> None:
    # The sender committed the instance last while it waited for "go": what it remembers of
    # it is older than the wait for "approved" that the other process opened since.
    definition = linear("two_waits", SignalStep("go"), SignalStep("approved"), Set("done", finished=True))
    api = make_engine(definition)
    worker = other_process(api, definition)
    instance = await api.start_workflow("two_waits")
    assert await worker.signal("go", instance_id=instance.id) == 1
    assert (await worker.get_instance(instance.id)).current_step == "approved"

    assert await api.signal("approved", {"by": "carol"}) == 1
    done = await api.wait_for_status(instance.id, WorkflowStatus.COMPLETED, timeout=5)
    assert done.context.data == {"by": "carol", "finished": True}


async def test_moving_an_event_leaves_a_start_that_another_process_ran(make_engine: Any, other_process: Any) -> None:
    # The start the first report scheduled ran in another process and waits now; the
    # process that reports the new time remembers it only as not started yet.
    definition = linear(
        "reminder",
        Set("remind", reminded=True),
        SignalStep("confirmed"),
        Set("done"),
        trigger=EventTrigger("appointment_due", offset_seconds=-3600),
    )
    api_clock, worker_clock = ManualClock(), ManualClock()
    api = make_engine(definition, clock=api_clock)
    worker = other_process(api, definition, clock=worker_clock)
    due = api_clock.now() + 2 * HOUR
    await api.report_event("appointment_due", "appt-1", at=due)
    (first,) = (await api.find_instances(workflow_name="reminder")).items

    worker_clock.advance(61 * MINUTE)
    assert await worker.recover() == 1
    await worker.wait_for_status(first.id, WorkflowStatus.WAITING, timeout=5)

    await api.report_event("appointment_due", "appt-1", at=due + HOUR)
    assert (await api.get_instance(first.id)).status is WorkflowStatus.WAITING
    pending = [i for i in (await api.find_instances(workflow_name="reminder")).items if i.id != first.id]
    assert [i.status for i in pending] == [WorkflowStatus.RUNNING]  # the start for the new time


async def test_a_bulk_cancel_acts_on_an_instance_another_process_retried(make_engine: Any, other_process: Any) -> None:
    # This process saw the instance fail; another one retried it since, and it waits now.
    attempts: list[int] = []

    def flaky(context: WorkflowContext) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("the first run fails")

    definition = linear("flaky", Fn("call", flaky), SignalStep("hold"), Set("done"))
    api = make_engine(definition)
    worker = other_process(api, definition)
    instance = await api.start_workflow("flaky")
    assert instance.status is WorkflowStatus.FAILED
    assert (await worker.retry(instance.id)).status is WorkflowStatus.WAITING

    request = BulkRequest(kind="cancel", filter=BulkFilter(ids=(str(instance.id),)))
    done = await api.bulk.wait((await api.bulk.submit(request)).id)
    assert (done.acted, done.skipped, done.failed) == (1, 0, 0)
    assert (await api.get_instance(instance.id)).status is WorkflowStatus.CANCELED
