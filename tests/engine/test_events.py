"""Every transition emits typed events, in order, to the bus."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from structlog.testing import capture_logs

from flowstar import BaseHumanStep, BaseMachineStep, EventBus, WorkflowContext, WorkflowStatus
from flowstar.events import (
    HumanTaskCompleted,
    HumanTaskCreated,
    StepCompleted,
    StepExecuted,
    StepFailed,
    StepSkipped,
    WorkflowCanceled,
    WorkflowCompleted,
    WorkflowEvent,
    WorkflowFailed,
    WorkflowStarted,
    decode_event,
    encode_event,
)
from tests.unit.helpers import Fn, RecordingBus, Set, linear


async def test_linear_run_sequence(make_engine: Any) -> None:
    bus = RecordingBus()
    engine = make_engine(linear("lin", Set("a", x=1), Fn("b", lambda c: {"out": 2})), event_bus=bus)
    instance = await engine.start_workflow("lin", created_by="ann", tenant_id="acme")
    assert bus.summary() == [
        ("WorkflowStarted", None),
        ("StepStarted", "a"),
        ("StepCompleted", "a"),
        ("StepExecuted", "a"),
        ("StepStarted", "b"),
        ("StepCompleted", "b"),
        ("StepExecuted", "b"),
        ("WorkflowCompleted", None),
    ]
    for event in bus.events:
        assert event.instance_id == str(instance.id)
        assert (event.workflow_name, event.workflow_version, event.tenant_id) == ("lin", "1.0.0", "acme")
    started, *_, completed = bus.events
    assert isinstance(started, WorkflowStarted)
    assert (started.initial_step, started.created_by) == ("a", "ann")
    assert isinstance(completed, WorkflowCompleted)
    assert completed.final_step == "b"
    step_b = bus.events[5]
    assert isinstance(step_b, StepCompleted)
    assert (step_b.output, step_b.step_type, step_b.attempt) == ({"out": 2}, "machine", 1)
    assert step_b.duration_ms is not None
    assert step_b.duration_ms >= 0
    assert [e.category for e in bus.events] == ["workflow", *["step"] * 6, "workflow"]
    executed = bus.events[6]
    assert isinstance(executed, StepExecuted)
    assert (executed.step_name, executed.status, executed.error, executed.attempt) == ("b", "succeeded", None, 1)
    assert executed.duration_ms == step_b.duration_ms


async def test_human_task_sequence(make_engine: Any) -> None:
    bus = RecordingBus()
    approval = BaseHumanStep(
        "approval", title="Approve", assignee_key="manager", assignee_group="leads", due_in=timedelta(days=1)
    )
    engine = make_engine(linear("human", Set("submit"), approval, Set("process")), event_bus=bus)
    instance = await engine.start_workflow("human", {"manager": "carol"})
    assert bus.summary() == [
        ("WorkflowStarted", None),
        ("StepStarted", "submit"),
        ("StepCompleted", "submit"),
        ("StepExecuted", "submit"),
        ("StepStarted", "approval"),
        ("HumanTaskCreated", "approval"),
    ]
    created = bus.events[-1]
    assert isinstance(created, HumanTaskCreated)
    task = (await engine.get_tasks(instance_id=instance.id))[0]
    assert (created.task_id, created.task_title, created.assignee, created.assignee_group, created.due_at) == (
        task.id,
        "Approve",
        "carol",
        "leads",
        task.due_at,
    )
    assert bus.events[4].step_type == "human"
    await engine.complete_human_task(instance.id, "approval", "carol", {"ok": True})
    assert bus.summary()[6:] == [
        ("HumanTaskCompleted", "approval"),
        ("StepCompleted", "approval"),
        ("StepExecuted", "approval"),
        ("StepStarted", "process"),
        ("StepCompleted", "process"),
        ("StepExecuted", "process"),
        ("WorkflowCompleted", None),
    ]
    done = bus.events[6]
    assert isinstance(done, HumanTaskCompleted)
    assert (done.task_id, done.completed_by, done.data) == (task.id, "carol", {"ok": True})


async def test_failure_sequence(make_engine: Any) -> None:
    def boom(_context: WorkflowContext) -> None:
        raise KeyError("missing")

    bus = RecordingBus()
    engine = make_engine(linear("fails", Set("a"), Fn("b", boom), Set("c")), event_bus=bus)
    instance = await engine.start_workflow("fails")
    assert bus.summary() == [
        ("WorkflowStarted", None),
        ("StepStarted", "a"),
        ("StepCompleted", "a"),
        ("StepExecuted", "a"),
        ("StepStarted", "b"),
        ("StepFailed", "b"),
        ("StepExecuted", "b"),
        ("WorkflowFailed", "b"),
    ]
    step_failed, executed, workflow_failed = bus.events[-3:]
    assert isinstance(executed, StepExecuted)
    assert (executed.status, executed.error) == ("failed", "KeyError: 'missing'")
    assert isinstance(step_failed, StepFailed)
    assert (step_failed.error, step_failed.attempt, step_failed.retry_at) == ("KeyError: 'missing'", 1, None)
    assert isinstance(workflow_failed, WorkflowFailed)
    assert workflow_failed.step_name == "b"
    assert workflow_failed.error == instance.error


async def test_cancel_sequence(make_engine: Any) -> None:
    bus = RecordingBus()
    engine = make_engine(linear("cancel", Set("a"), BaseHumanStep("wait")), event_bus=bus)
    instance = await engine.start_workflow("cancel")
    await engine.cancel_workflow(instance.id, "user left")
    assert bus.summary() == [
        ("WorkflowStarted", None),
        ("StepStarted", "a"),
        ("StepCompleted", "a"),
        ("StepExecuted", "a"),
        ("StepStarted", "wait"),
        ("HumanTaskCreated", "wait"),
        ("WorkflowCanceled", None),
    ]
    last = bus.events[-1]
    assert isinstance(last, WorkflowCanceled)
    assert last.reason == "user left"


async def test_skip_sequence_and_the_workflow_continues(make_engine: Any) -> None:
    class Never(BaseMachineStep):
        async def can_execute(self, context: WorkflowContext) -> bool:
            return False

        async def execute(self, context: WorkflowContext) -> None:
            raise AssertionError("must not run")

    bus = RecordingBus()
    engine = make_engine(linear("skip", Never("guarded"), Set("next", went_on=True)), event_bus=bus)
    instance = await engine.start_workflow("skip")
    assert instance.status is WorkflowStatus.COMPLETED
    assert instance.data == {"went_on": True}
    assert bus.summary() == [
        ("WorkflowStarted", None),
        ("StepStarted", "guarded"),
        ("StepSkipped", "guarded"),
        ("StepExecuted", "guarded"),
        ("StepStarted", "next"),
        ("StepCompleted", "next"),
        ("StepExecuted", "next"),
        ("WorkflowCompleted", None),
    ]
    skipped = bus.events[2]
    assert isinstance(skipped, StepSkipped)
    assert skipped.reason == "can_execute returned False"


async def test_seed_style_bus_overriding_emit_only(make_engine: Any) -> None:
    received: list[str] = []

    class MyEventBus(EventBus):
        async def emit(self, event: WorkflowEvent) -> None:
            received.append(event.type)

    engine = make_engine(linear("seed", Set("a")), event_bus=MyEventBus())
    await engine.start_workflow("seed")
    assert received == ["WorkflowStarted", "StepStarted", "StepCompleted", "StepExecuted", "WorkflowCompleted"]


async def test_add_handler_with_type_filter_and_unsubscribe(make_engine: Any) -> None:
    bus = EventBus()
    everything: list[str] = []
    finished: list[WorkflowEvent] = []

    async def on_any(event: WorkflowEvent) -> None:
        everything.append(event.type)

    async def on_finished(event: WorkflowEvent) -> None:
        finished.append(event)

    bus.add_handler(on_any)
    unsubscribe = bus.add_handler(on_finished, types=[WorkflowCompleted, "WorkflowFailed"])
    engine = make_engine(linear("handled", Set("a")), event_bus=bus)
    first = await engine.start_workflow("handled")
    assert everything == ["WorkflowStarted", "StepStarted", "StepCompleted", "StepExecuted", "WorkflowCompleted"]
    assert [(e.type, e.instance_id) for e in finished] == [("WorkflowCompleted", str(first.id))]
    unsubscribe()
    await engine.start_workflow("handled")
    assert len(finished) == 1
    assert len(everything) == 10


async def test_a_raising_handler_does_not_break_the_workflow(make_engine: Any) -> None:
    bus = EventBus()
    later: list[str] = []

    async def broken(event: WorkflowEvent) -> None:
        raise RuntimeError("handler bug")

    async def fine(event: WorkflowEvent) -> None:
        later.append(event.type)

    bus.add_handler(broken)
    bus.add_handler(fine)
    engine = make_engine(linear("robust", Set("a", a=1), Set("b", b=2)), event_bus=bus)
    with capture_logs() as logs:
        instance = await engine.start_workflow("robust")
    assert instance.status is WorkflowStatus.COMPLETED
    assert instance.data == {"a": 1, "b": 2}
    assert later[-1] == "WorkflowCompleted"
    assert len(later) == 8
    failures = [entry for entry in logs if entry["event"] == "event handler failed"]
    assert [entry["event_type"] for entry in failures] == later
    assert all(entry["log_level"] == "error" for entry in failures)


async def test_a_raising_emit_override_does_not_break_the_workflow(make_engine: Any) -> None:
    class ExplodingBus(EventBus):
        async def emit(self, event: WorkflowEvent) -> None:
            raise ConnectionError("event store down")

    engine = make_engine(linear("robust2", Set("a", a=1), BaseHumanStep("h"), Set("b")), event_bus=ExplodingBus())
    with capture_logs() as logs:
        instance = await engine.start_workflow("robust2")
        assert instance.status is WorkflowStatus.WAITING
        done = await engine.complete_human_task(instance.id, "h", "u", {"x": 1})
    assert done.status is WorkflowStatus.COMPLETED
    assert done.data == {"a": 1, "x": 1}
    failed = [entry["event_type"] for entry in logs if entry["event"] == "event bus failed"]
    assert failed[0] == "WorkflowStarted"
    assert failed[-1] == "WorkflowCompleted"


async def test_subscribe_yields_events(make_engine: Any) -> None:
    bus = EventBus()
    received: list[str] = []
    ready = asyncio.Event()

    async def consume() -> None:
        stream = bus.subscribe(types=[WorkflowStarted, WorkflowCompleted])
        ready.set()
        async for event in stream:
            received.append(event.type)
            if event.type == "WorkflowCompleted":
                break

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0)
    # The generator only registers once iterated; give it a turn before emitting.
    engine = make_engine(linear("sub", Set("a")), event_bus=bus)
    await ready.wait()
    await asyncio.sleep(0)
    await engine.start_workflow("sub")
    await asyncio.wait_for(consumer, 5)
    assert received == ["WorkflowStarted", "WorkflowCompleted"]


async def test_engine_events_round_trip(make_engine: Any) -> None:
    bus = RecordingBus()
    engine = make_engine(linear("rt", Set("a", a=1), BaseHumanStep("h")), event_bus=bus)
    await engine.start_workflow("rt")
    assert [decode_event(encode_event(e)) for e in bus.events] == bus.events
