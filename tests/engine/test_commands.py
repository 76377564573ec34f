"""Steps that return commands (routing="commands"), human steps with a body, delayed and event-triggered starts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from flowstar import BaseHumanStep, BaseMachineStep, ManualClock, WorkflowContext, WorkflowDefinition, WorkflowStatus
from flowstar.model.commands import WAKEUP_KEY, Command, Complete, Fail, Goto, Sleep, Wait, WaitFor
from flowstar.model.definition import EventTrigger

HOUR = timedelta(hours=1)


class Do(BaseMachineStep):
    """A step whose body is a function of the context returning a command."""

    def __init__(self, name: str, body: Callable[[WorkflowContext], Command | None]) -> None:
        super().__init__(name)
        self.body = body

    async def execute(self, context: WorkflowContext) -> Any:
        return self.body(context)


def _flow(name: str, *steps: Any, **kwargs: Any) -> WorkflowDefinition:
    return WorkflowDefinition(
        name=name, steps={s.name: s for s in steps}, initial_step=steps[0].name, routing="commands", **kwargs
    )


async def _until(engine: Any, instance_id: Any, check: Callable[[Any], bool]) -> None:
    """Wait until the instance's committed state passes ``check`` (a due timer fires in a task of its own)."""
    async with asyncio.timeout(5):
        while not check(await engine.get_instance(instance_id)):  # noqa: ASYNC110 - no event tells of it
            await asyncio.sleep(0.001)


def _count(context: WorkflowContext) -> Command:
    context.set("n", context.get("n", 0) + 1)
    return Goto("check")


async def test_goto_and_complete(make_engine: Any) -> None:
    flow = _flow(
        "loop",
        Do("count", _count),
        Do("check", lambda c: Goto("count") if c.get("n") < 3 else Complete({"total": c.get("n")})),
    )
    engine = make_engine(flow)
    done = await engine.start_workflow("loop")
    assert done.status is WorkflowStatus.COMPLETED
    assert done.context.data["total"] == 3
    assert [r.step_name for r in await engine.get_history(done.id)] == ["count", "check"] * 3


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (lambda c: Goto("nowhere"), "goto 'nowhere', which is not a step"),
        (lambda c: None, "returned no command"),
        (lambda c: Fail("missing documents"), "failed the workflow: missing documents"),
        (lambda c: Wait((WaitFor(kind="signal", name="x"),)), "no step to go on with"),
        (lambda c: Wait((WaitFor(kind="event", name="x", filter="__import__('os')"),), next="a"), "filter"),
    ],
)
async def test_bad_commands_fail_the_instance_clearly(make_engine: Any, body: Any, error: str) -> None:
    engine = make_engine(_flow("bad", Do("a", body)))
    failed = await engine.start_workflow("bad")
    assert failed.status is WorkflowStatus.FAILED
    assert error in (failed.error or "")


async def test_sleep_runs_the_step_again_until_it_moves_on(make_engine: Any, clock: ManualClock) -> None:
    def remind(context: WorkflowContext) -> Command:
        context.set("sent", context.get("sent", 0) + 1)
        return Sleep(HOUR.total_seconds()) if context.get("sent") < 3 else Goto("escalate")

    flow = _flow("remind", Do("remind", remind), Do("escalate", lambda c: Complete({"escalated": True})))
    engine = make_engine(flow, clock=clock)
    instance = await engine.start_workflow("remind")
    assert instance.wake_at == clock.now() + HOUR
    for sent in (1, 2):
        assert (await engine.get_instance(instance.id)).context.data["sent"] == sent
        clock.advance(HOUR)
        await _until(engine, instance.id, lambda i, sent=sent: i.context.data["sent"] == sent + 1)
    done = await engine.wait_for_status(instance.id, WorkflowStatus.COMPLETED, timeout=5)
    assert done.context.data == {"sent": 3, "escalated": True}


async def test_a_wait_for_any_tells_the_next_step_what_came(make_engine: Any, clock: ManualClock) -> None:
    wait = Wait(
        (WaitFor(kind="signal", name="approve"), WaitFor(kind="event", name="withdrawn")),
        next="decide",
        timeout=HOUR.total_seconds(),
        on_timeout="decide",
    )
    flow = _flow(
        "any",
        Do("ask", lambda c: wait),
        Do("decide", lambda c: Complete({"came": c.get(WAKEUP_KEY)})),
    )
    engine = make_engine(flow, clock=clock)
    by_signal = await engine.start_workflow("any")
    by_event = await engine.start_workflow("any")
    by_timeout = await engine.start_workflow("any")
    assert await engine.signal("approve", instance_id=by_signal.id) == 1
    await engine.report_event("withdrawn", "doc-1")  # reaches the two that still wait
    clock.advance(HOUR)
    outcomes = [
        (await engine.wait_for_status(i.id, WorkflowStatus.COMPLETED, timeout=5)).context.data
        for i in (by_signal, by_event, by_timeout)
    ]
    assert outcomes[0]["came"] == {"kind": "signal", "name": "approve"}
    assert outcomes[1]["came"] == {"kind": "event", "name": "withdrawn"}
    assert outcomes[1]["entity_id"] == "doc-1"
    # The third was still waiting when the event came: it took the event, not the timeout.
    assert outcomes[2]["came"] == {"kind": "event", "name": "withdrawn"}
    # The event came before this instance started: outside its lookback, so it times out.
    late = await engine.start_workflow("any")
    clock.advance(HOUR)
    done = await engine.wait_for_status(late.id, WorkflowStatus.COMPLETED, timeout=5)
    assert done.context.data["came"] == {"kind": "timeout", "name": None}


class Review(BaseHumanStep):
    """A human step with a body: the form's fields reach ``execute`` through the data."""

    name = "review"
    assignee = "bob"
    runs_on_completion = True
    form_schema = {"type": "object", "properties": {"notes": {"type": "string"}}, "required": ["notes"]}

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("reviewed", True)
        return Complete({"summary": f"reviewed: {context.get('notes')}"})


async def test_a_human_step_with_a_body_runs_it_after_the_task(make_engine: Any) -> None:
    engine = make_engine(_flow("review", Do("start", lambda c: Goto("review")), Review()))
    waiting = await engine.start_workflow("review")
    (task,) = await engine.get_tasks(instance_id=waiting.id)
    done = await engine.complete_task(task.id, "bob", {"notes": "fine"})
    done = await engine.wait_for_status(waiting.id, WorkflowStatus.COMPLETED, timeout=5)
    assert done.context.data == {"notes": "fine", "reviewed": True, "summary": "reviewed: fine"}
    steps = [(r.step_name, r.step_type) for r in await engine.get_history(waiting.id)]
    assert steps == [("start", "machine"), ("review", "human"), ("review", "human")]


async def test_a_start_at_a_later_time_runs_then(make_engine: Any, clock: ManualClock) -> None:
    engine = make_engine(_flow("later", Do("go", lambda c: Complete({"ran": True}))), clock=clock)
    instance = await engine.start_workflow("later", start_at=clock.now() + HOUR)
    assert instance.status is WorkflowStatus.RUNNING
    assert instance.wake_at == clock.now() + HOUR
    clock.advance(HOUR)
    assert (await engine.wait_for_status(instance.id, WorkflowStatus.COMPLETED, timeout=5)).context.data["ran"]


async def test_a_reported_event_starts_its_workflow_at_its_offset(make_engine: Any, clock: ManualClock) -> None:
    def remind(context: WorkflowContext) -> Command:
        return Complete({"reminded_for": context.get("_event")["entity_id"]})

    flow = _flow("reminder", Do("remind", remind), trigger=EventTrigger("appointment_due", offset_seconds=-3600))
    engine = make_engine(flow, clock=clock)
    at = clock.now() + timedelta(hours=5)
    await engine.report_event("appointment_due", "appt-7", at=at)
    await engine.report_event("appointment_due", "appt-7", at=at)  # the same event again: no second start
    (pending,) = (await engine.find_instances(workflow_name="reminder")).items
    assert pending.wake_at == at - HOUR
    # Moved two hours later: the pending start moves with it.
    await engine.report_event("appointment_due", "appt-7", at=at + 2 * HOUR)
    clock.advance(timedelta(hours=4))
    assert (await engine.get_instance(pending.id)).status is WorkflowStatus.CANCELED
    starts = (await engine.find_instances(workflow_name="reminder", status=WorkflowStatus.RUNNING)).items
    (moved,) = starts
    assert moved.wake_at == at + HOUR
    clock.advance(2 * HOUR)
    done = await engine.wait_for_status(moved.id, WorkflowStatus.COMPLETED, timeout=5)
    assert done.context.data["reminded_for"] == "appt-7"
    # An event whose start time is past starts at once.
    await engine.report_event("appointment_due", "appt-8", at=clock.now())
    finished = (await engine.find_instances(workflow_name="reminder", status=WorkflowStatus.COMPLETED)).items
    assert {i.context.data["reminded_for"] for i in finished} == {"appt-7", "appt-8"}
