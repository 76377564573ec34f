"""A signal or event logged by a process that died before delivering it is delivered by recovery.

``Store.record_signal`` without the delivery that follows it is exactly what such a crash
leaves behind; ``Engine.recover`` (and the SAQ reconciler's pass) finishes the delivery.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flowstar import BaseMachineStep, ManualClock, WorkflowContext, WorkflowDefinition, WorkflowStatus
from flowstar.engine.ids import new_id
from flowstar.engine.signals import event_entry
from flowstar.model.commands import Complete
from flowstar.model.definition import EventTrigger
from flowstar.model.state import SignalEntry
from flowstar.model.waits import SignalStep
from tests.unit.helpers import Set, linear


class _Remind(BaseMachineStep):
    async def execute(self, context: WorkflowContext) -> Any:
        return Complete({"reminded_for": context.get("_event")["entity_id"]})


def _reminder() -> WorkflowDefinition:
    return WorkflowDefinition(
        name="reminder",
        steps={"remind": _Remind("remind")},
        initial_step="remind",
        routing="commands",
        trigger=EventTrigger("appointment_due", offset_seconds=0),
    )


def _signal(name: str, clock: ManualClock, **payload: Any) -> SignalEntry:
    return SignalEntry(id=new_id(), kind="signal", name=name, payload=payload, recorded_at=clock.now())


async def test_recovery_delivers_a_signal_a_crash_left_undelivered(make_engine: Any, clock: ManualClock) -> None:
    engine = make_engine(linear("approval", SignalStep("approved"), Set("done", finished=True)), clock=clock)
    first = await engine.start_workflow("approval")
    second = await engine.start_workflow("approval")
    # The process logged a broadcast and died before it woke anybody.
    await engine.store.record_signal(_signal("approved", clock, by="carol"))
    assert (await engine.get_instance(first.id)).status is WorkflowStatus.WAITING

    clock.advance(timedelta(seconds=1))
    assert await engine.recover() == 0  # no pending activation; the delivery is the work
    for instance in (first, second):
        done = await engine.wait_for_status(instance.id, WorkflowStatus.COMPLETED, timeout=5)
        assert done.context.data == {"by": "carol", "finished": True}
    assert await engine.store.undelivered_signals(clock.now() + timedelta(days=1)) == []
    assert await engine.redeliver_signals() == 0  # nothing left, nothing delivered twice


async def test_a_delivered_signal_is_marked_and_never_redelivered(make_engine: Any, clock: ManualClock) -> None:
    engine = make_engine(linear("approval", SignalStep("approved"), Set("done")), clock=clock)
    instance = await engine.start_workflow("approval")
    assert await engine.signal("approved", {"n": 1}) == 1
    clock.advance(timedelta(seconds=1))
    assert await engine.store.undelivered_signals(clock.now()) == []
    assert await engine.redeliver_signals() == 0
    history = [r.step_name for r in await engine.get_history(instance.id)]
    assert history == ["approved", "done"]


async def test_recovery_starts_the_workflow_an_undelivered_event_triggers(make_engine: Any, clock: ManualClock) -> None:
    engine = make_engine(_reminder(), clock=clock)
    entry = event_entry("appointment_due", "appt-1", at=clock.now(), payload={}, tenant_id=None, now=clock.now())
    await engine.store.record_signal(entry)  # logged, then the process died
    assert (await engine.find_instances(workflow_name="reminder")).items == []

    clock.advance(timedelta(seconds=1))
    await engine.recover()
    (started,) = (await engine.find_instances(workflow_name="reminder")).items
    done = await engine.wait_for_status(started.id, WorkflowStatus.COMPLETED, timeout=5)
    assert done.context.data["reminded_for"] == "appt-1"
    await engine.recover()  # again: the event is delivered, and its start keyed
    assert len((await engine.find_instances(workflow_name="reminder")).items) == 1


async def test_an_undelivered_event_a_later_report_moved_starts_nothing(make_engine: Any, clock: ManualClock) -> None:
    engine = make_engine(_reminder(), clock=clock)
    at = clock.now() + timedelta(hours=5)
    lost = event_entry("appointment_due", "appt-2", at=at, payload={}, tenant_id=None, now=clock.now())
    await engine.store.record_signal(lost)  # its process died before starting anything
    clock.advance(timedelta(seconds=1))
    await engine.report_event("appointment_due", "appt-2", at=at + timedelta(hours=2))  # moved

    await engine.recover()
    (only,) = (await engine.find_instances(workflow_name="reminder")).items
    assert only.wake_at == at + timedelta(hours=2)


async def test_a_signal_for_a_waiting_instance_is_delivered_in_one_commit_unlogged(
    make_engine: Any, clock: ManualClock
) -> None:
    engine = make_engine(linear("approval", SignalStep("approved"), Set("done")), clock=clock)
    waiting = await engine.start_workflow("approval")
    started = clock.now()
    assert await engine.signal("approved", {"by": "carol"}, instance_id=waiting.id) == 1
    done = await engine.wait_for_status(waiting.id, WorkflowStatus.COMPLETED, timeout=5)
    assert done.context.data["by"] == "carol"
    assert await engine.store.find_signals("signal", "approved", tenant_id=None, since=started) == []
    # Broadcasts go through the log: waits that open later (within their lookback) find them.
    assert await engine.signal("approved", {"by": "dan"}) == 0
    (logged,) = await engine.store.find_signals("signal", "approved", tenant_id=None, since=started)
    assert logged.payload == {"by": "dan"}
