"""Timer steps fire when the (manual) clock passes their deadline, holding no task while waiting."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flowstar import ManualClock, StepStatus, TimerStep, WorkflowStatus
from flowstar.testing import advance, next_due, settle
from tests.unit.helpers import RecordingBus, Set, drain, linear, next_due_at


def _timer_flow(timer: TimerStep, name: str = "timed") -> tuple[Any, Set]:
    after = Set("after", woke=True)
    return linear(name, Set("start", started=True), timer, after), after


async def test_duration_timer_fires_only_when_the_deadline_passes(make_engine: Any, clock: ManualClock) -> None:
    definition, after = _timer_flow(TimerStep("wait", duration=timedelta(hours=1)))
    engine = make_engine(definition, clock=clock)
    start = clock.now()
    instance = await engine.start_workflow("timed")
    assert instance.status is WorkflowStatus.WAITING
    assert instance.current_step == "wait"
    assert await next_due_at(engine, instance.id) == start + timedelta(hours=1)
    assert engine.dispatcher.scheduled == 1

    clock.advance(timedelta(minutes=59, seconds=59))
    await drain()
    assert (await engine.get_instance(instance.id)).status is WorkflowStatus.WAITING
    assert after.runs == 0

    clock.advance(timedelta(seconds=1))  # exactly at the deadline
    done = await engine.wait_for_status(instance.id, WorkflowStatus.COMPLETED, timeout=5)
    assert done.data == {"started": True, "woke": True}
    assert after.runs == 1
    assert engine.dispatcher.scheduled == 0
    record = next(r for r in await engine.get_history(instance.id) if r.step_name == "wait")
    assert (record.step_type, record.status) == ("timer", StepStatus.SUCCEEDED)
    assert record.started_at == start
    assert record.completed_at == start + timedelta(hours=1)


@pytest.mark.parametrize(
    "duration",
    [90, 90.0, timedelta(seconds=90), lambda data: timedelta(seconds=data["delay"]), lambda data: data["delay"]],
)
async def test_duration_forms(make_engine: Any, clock: ManualClock, duration: Any) -> None:
    definition, _after = _timer_flow(TimerStep("wait", duration=duration))
    engine = make_engine(definition, clock=clock)
    instance = await engine.start_workflow("timed", {"delay": 90})
    assert await next_due_at(engine, instance.id) == clock.now() + timedelta(seconds=90)
    clock.advance(89)
    await drain()
    assert (await engine.get_instance(instance.id)).status is WorkflowStatus.WAITING
    clock.advance(1)
    await engine.wait_for_status(instance.id, WorkflowStatus.COMPLETED, timeout=5)


async def test_until_a_context_key_with_an_iso_time(make_engine: Any, clock: ManualClock) -> None:
    definition, after = _timer_flow(TimerStep("wait", until="wake_at"))
    engine = make_engine(definition, clock=clock)
    wake = clock.now() + timedelta(days=2)
    instance = await engine.start_workflow("timed", {"wake_at": wake.isoformat()})
    assert instance.status is WorkflowStatus.WAITING
    assert await next_due_at(engine, instance.id) == wake
    clock.advance(timedelta(days=1))
    await drain()
    assert after.runs == 0
    clock.set(wake + timedelta(minutes=5))
    done = await engine.wait_for_status(instance.id, WorkflowStatus.COMPLETED, timeout=5)
    assert done.data["woke"] is True


async def test_until_in_another_time_zone(make_engine: Any, clock: ManualClock) -> None:
    definition, _ = _timer_flow(TimerStep("wait", until="wake_at"))
    engine = make_engine(definition, clock=clock)
    # 2030-01-01T03:00+02:00 is 01:00 UTC: one hour after the manual clock's start.
    instance = await engine.start_workflow("timed", {"wake_at": "2030-01-01T03:00:00+02:00"})
    assert await next_due_at(engine, instance.id) == datetime(2030, 1, 1, 1, tzinfo=UTC)


async def test_until_a_callable(make_engine: Any, clock: ManualClock) -> None:
    def deadline(data: Any) -> datetime:
        return datetime.fromisoformat(data["submitted"]) + timedelta(hours=data["sla_hours"])

    definition, _ = _timer_flow(TimerStep("wait", until=deadline))
    engine = make_engine(definition, clock=clock)
    instance = await engine.start_workflow("timed", {"submitted": clock.now().isoformat(), "sla_hours": 4})
    assert await next_due_at(engine, instance.id) == clock.now() + timedelta(hours=4)
    clock.advance(timedelta(hours=4))
    await engine.wait_for_status(instance.id, WorkflowStatus.COMPLETED, timeout=5)


async def test_until_in_the_past_fires_at_once(make_engine: Any, clock: ManualClock) -> None:
    definition, after = _timer_flow(TimerStep("wait", until="wake_at"))
    engine = make_engine(definition, clock=clock)
    instance = await engine.start_workflow("timed", {"wake_at": (clock.now() - timedelta(hours=1)).isoformat()})
    assert instance.status is WorkflowStatus.COMPLETED
    assert after.runs == 1


@pytest.mark.parametrize(
    ("until", "data", "message"),
    [
        ("wake_at", {"wake_at": "2030-01-01T05:00:00"}, "timer 'wait': wake time 2030-01-01 05:00:00 has no time zone"),
        (lambda _d: datetime(2030, 1, 2), {}, "has no time zone"),
        ("wake_at", {}, "timer 'wait': context key 'wake_at' holds None, not an ISO time"),
        ("wake_at", {"wake_at": "tomorrow"}, "timer 'wait': Invalid isoformat string"),
        (lambda data: data["missing"], {}, "timer 'wait': KeyError: 'missing'"),
        (
            lambda _d: "2030-01-02T00:00:00+00:00",
            {},
            "timer 'wait': until gave '2030-01-02T00:00:00+00:00', not a datetime",
        ),
    ],
)
async def test_bad_wake_times_fail_the_workflow_clearly(
    make_engine: Any, clock: ManualClock, until: Any, data: dict[str, Any], message: str
) -> None:
    definition, after = _timer_flow(TimerStep("wait", until=until))
    engine = make_engine(definition, clock=clock)
    instance = await engine.start_workflow("timed", data)
    assert instance.status is WorkflowStatus.FAILED
    assert instance.failed_step == "wait"
    assert instance.error is not None
    assert message in instance.error
    assert after.runs == 0
    assert engine.dispatcher.scheduled == 0


async def test_bad_duration_fails_the_workflow(make_engine: Any, clock: ManualClock) -> None:
    definition, _ = _timer_flow(TimerStep("wait", duration=lambda _d: "soon"))
    engine = make_engine(definition, clock=clock)
    instance = await engine.start_workflow("timed")
    assert instance.status is WorkflowStatus.FAILED
    assert "timer 'wait': duration gave 'soon', not a timedelta" in (instance.error or "")


async def test_waiting_timers_hold_no_asyncio_task(make_engine: Any, clock: ManualClock) -> None:
    definition, after = _timer_flow(TimerStep("wait", duration=timedelta(minutes=30)))
    engine = make_engine(definition, clock=clock)
    first = await engine.start_workflow("timed")
    await drain()
    baseline = len(asyncio.all_tasks())
    instances = [first] + [await engine.start_workflow("timed") for _ in range(199)]
    await drain()
    assert all(i.status is WorkflowStatus.WAITING for i in instances)
    assert engine.dispatcher.scheduled == 200
    tasks = len(asyncio.all_tasks())
    assert tasks == baseline
    assert tasks <= 5  # this test, the one scheduler and its clock waiter
    clock.advance(timedelta(minutes=30))
    for instance in instances:
        await engine.wait_for_status(instance.id, WorkflowStatus.COMPLETED, timeout=10)
    assert after.runs == 200
    assert engine.dispatcher.scheduled == 0


async def test_timers_fire_in_deadline_order(make_engine: Any, clock: ManualClock) -> None:
    definition, _ = _timer_flow(TimerStep("wait", duration=lambda data: timedelta(minutes=data["minutes"])))
    engine = make_engine(definition, clock=clock)
    late = await engine.start_workflow("timed", {"minutes": 10})
    early = await engine.start_workflow("timed", {"minutes": 5})
    clock.advance(timedelta(minutes=6))
    await engine.wait_for_status(early.id, WorkflowStatus.COMPLETED, timeout=5)
    assert (await engine.get_instance(late.id)).status is WorkflowStatus.WAITING
    clock.advance(timedelta(minutes=4))
    await engine.wait_for_status(late.id, WorkflowStatus.COMPLETED, timeout=5)


async def test_canceled_timer_never_fires(make_engine: Any, clock: ManualClock) -> None:
    definition, after = _timer_flow(TimerStep("wait", duration=60))
    engine = make_engine(definition, clock=clock)
    instance = await engine.start_workflow("timed")
    await engine.cancel_workflow(instance.id, "stop")
    clock.advance(120)
    await drain()
    final = await engine.get_instance(instance.id)
    assert final.status is WorkflowStatus.CANCELED
    assert after.runs == 0
    record = next(r for r in await engine.get_history(instance.id) if r.step_name == "wait")
    assert record.status is StepStatus.CANCELED


async def test_timer_events(make_engine: Any, clock: ManualClock) -> None:
    bus = RecordingBus()
    definition, _ = _timer_flow(TimerStep("wait", duration=5))
    engine = make_engine(definition, clock=clock, event_bus=bus)
    instance = await engine.start_workflow("timed")
    clock.advance(5)
    await engine.wait_for_status(instance.id, WorkflowStatus.COMPLETED, timeout=5)
    assert bus.summary() == [
        ("WorkflowStarted", None),
        ("StepStarted", "start"),
        ("StepCompleted", "start"),
        ("StepExecuted", "start"),
        ("StepStarted", "wait"),
        ("StepCompleted", "wait"),
        ("StepExecuted", "wait"),
        ("StepStarted", "after"),
        ("StepCompleted", "after"),
        ("StepExecuted", "after"),
        ("WorkflowCompleted", None),
    ]
    fired = bus.events[5]
    assert fired.timestamp == clock.now()
    assert fired.duration_ms == 5000


async def test_the_test_kit_fast_forwards_a_graph_workflow(make_engine: Any) -> None:
    """``flowstar.testing.advance`` fires a day-long timer at its own time, in no real time."""
    kit_clock = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
    definition, after = _timer_flow(TimerStep("wait", duration=timedelta(days=1)))
    engine = make_engine(definition, clock=kit_clock)
    instance = await engine.start_workflow("timed")
    assert await next_due(engine) == datetime(2030, 1, 2, tzinfo=UTC)

    assert await advance(engine, kit_clock, timedelta(hours=23)) == datetime(2030, 1, 1, 23, tzinfo=UTC)
    assert (await engine.get_instance(instance.id)).status is WorkflowStatus.WAITING
    await advance(engine, kit_clock, timedelta(hours=2))
    done = await engine.get_instance(instance.id)
    assert done.status is WorkflowStatus.COMPLETED
    record = next(r for r in await engine.get_history(instance.id) if r.step_name == "wait")
    assert record.completed_at == datetime(2030, 1, 2, tzinfo=UTC)
    assert after.runs == 1

    # settle counts the instances that changed while it waited.
    second = await engine.start_workflow("timed")
    kit_clock.advance(timedelta(days=1))  # no await in between: the timer fires within settle
    assert await settle(engine) == 1
    assert (await engine.get_instance(second.id)).status is WorkflowStatus.COMPLETED
