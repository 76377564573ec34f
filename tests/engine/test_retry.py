"""Retries in a workflow, step timeouts, retrying failed instances, and cancellation.

The policy's own arithmetic is tested in ``tests/unit/test_retry_policy.py``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from flowstar import (
    BaseHumanStep,
    InstanceNotFoundError,
    InvalidTransitionError,
    ManualClock,
    RetryPolicy,
    StepStatus,
    TaskStatus,
    WorkflowContext,
    WorkflowStatus,
)
from flowstar.events import StepFailed, WorkflowCanceled, WorkflowRetried
from tests.unit.helpers import Fn, RecordingBus, Set, drain, eventually, linear, next_due_at

# -- retries in a workflow --------------------------------------------------------------


def _flaky(name: str, failures: int, error: type[Exception] = ConnectionError) -> Fn:
    def body(context: WorkflowContext) -> str:
        context.set(f"{name}_partial", True)
        if step.runs <= failures:
            raise error(f"attempt {step.runs} failed")
        return "ok"

    step = Fn(name, body)
    return step


async def test_retry_waits_for_the_back_off_on_the_manual_clock(make_engine: Any, clock: ManualClock) -> None:
    step = _flaky("call_api", failures=2)
    step.retry_policy = RetryPolicy(max_attempts=3, initial_delay=10, backoff=2, jitter=0)
    bus = RecordingBus()
    engine = make_engine(linear("flaky", Set("start"), step, Set("end", end=True)), clock=clock, event_bus=bus)
    t0 = clock.now()
    instance = await engine.start_workflow("flaky")
    assert instance.status is WorkflowStatus.RUNNING  # attempt 2 is scheduled, not waiting for a person
    assert step.runs == 1
    assert engine.dispatcher.scheduled == 1
    assert await next_due_at(engine, instance.id) == t0 + timedelta(seconds=10)

    clock.advance(9.999)
    await drain()
    assert step.runs == 1
    clock.advance(0.001)
    await eventually(lambda: step.runs == 2 and engine.dispatcher.scheduled == 1)
    await engine.dispatcher.settled(str(instance.id))
    assert await next_due_at(engine, instance.id) == t0 + timedelta(seconds=30)

    clock.advance(19)
    await drain()
    assert step.runs == 2
    clock.advance(1)
    done = await engine.wait_for_status(instance.id, WorkflowStatus.COMPLETED, timeout=5)
    assert step.runs == 3
    assert done.data == {"call_api_partial": True, "end": True}

    records = [r for r in await engine.get_history(instance.id) if r.step_name == "call_api"]
    assert [(r.attempt, r.status, r.error) for r in records] == [
        (1, StepStatus.FAILED, "ConnectionError: attempt 1 failed"),
        (2, StepStatus.FAILED, "ConnectionError: attempt 2 failed"),
        (3, StepStatus.SUCCEEDED, None),
    ]
    assert [r.started_at - t0 for r in records] == [timedelta(0), timedelta(seconds=10), timedelta(seconds=30)]
    failures = [e for e in bus.events if isinstance(e, StepFailed)]
    assert [(e.attempt, e.retry_at, e.will_retry) for e in failures] == [
        (1, t0 + timedelta(seconds=10), True),
        (2, t0 + timedelta(seconds=30), True),
    ]
    assert [h.attempt for h in done.context.step_history if h.step_name == "call_api"] == [1, 2, 3]


async def test_workflow_retry_policy_applies_to_every_step(make_engine: Any) -> None:
    first, second = _flaky("first", failures=1), _flaky("second", failures=2)
    definition = linear("wf_policy", first, second, retry_policy=RetryPolicy(max_attempts=3, initial_delay=0, jitter=0))
    engine = make_engine(definition)
    instance = await engine.start_workflow("wf_policy")
    assert instance.status is WorkflowStatus.COMPLETED
    assert (first.runs, second.runs) == (2, 3)


async def test_step_policy_overrides_the_workflow_policy(make_engine: Any) -> None:
    step = _flaky("strict", failures=1)
    step.retry_policy = RetryPolicy(max_attempts=1)
    definition = linear("override", step, Set("end"), retry_policy=RetryPolicy(max_attempts=5, initial_delay=0))
    engine = make_engine(definition)
    instance = await engine.start_workflow("override")
    assert instance.status is WorkflowStatus.FAILED
    assert step.runs == 1


async def test_retry_on_filters_which_errors_retry(make_engine: Any) -> None:
    policy = RetryPolicy(max_attempts=3, initial_delay=0, retry_on=(ConnectionError,))
    retried = _flaky("retried", failures=1, error=ConnectionResetError)
    not_retried = _flaky("not_retried", failures=1, error=ValueError)
    engine = make_engine(linear("filter", retried, not_retried, retry_policy=policy))
    instance = await engine.start_workflow("filter")
    assert (retried.runs, not_retried.runs) == (2, 1)
    assert instance.status is WorkflowStatus.FAILED
    assert instance.error == "step 'not_retried' failed after 1 attempt(s): ValueError: attempt 1 failed"


async def test_attempts_run_out(make_engine: Any) -> None:
    step = _flaky("doomed", failures=99)
    step.retry_policy = RetryPolicy(max_attempts=3, initial_delay=0)
    bus = RecordingBus()
    engine = make_engine(linear("doomed", Set("start", s=1), step, Set("end")), event_bus=bus)
    instance = await engine.start_workflow("doomed")
    assert instance.status is WorkflowStatus.FAILED
    assert step.runs == 3
    assert instance.error == "step 'doomed' failed after 3 attempt(s): ConnectionError: attempt 3 failed"
    assert instance.data == {"s": 1, "doomed_partial": True}  # the last attempt's write stays
    last = [e for e in bus.events if isinstance(e, StepFailed)][-1]
    assert (last.attempt, last.will_retry) == (3, False)


async def test_step_timeout_fails_with_step_timeout_error(make_engine: Any) -> None:
    never = asyncio.Event()

    async def hang(context: WorkflowContext) -> None:
        context.set("hung", True)
        await never.wait()

    engine = make_engine(linear("slow", Fn("slow", hang, timeout=0.05), Set("end")))
    instance = await engine.start_workflow("slow")
    assert instance.status is WorkflowStatus.FAILED
    record = next(r for r in await engine.get_history(instance.id) if r.step_name == "slow")
    assert record.status is StepStatus.FAILED
    assert record.error == "StepTimeoutError: step 'slow' exceeded its 0.05s timeout"
    assert instance.data["hung"] is True  # a step that fails for good keeps its writes


async def test_timeouts_can_be_retried(make_engine: Any) -> None:
    async def slow_once(context: WorkflowContext) -> None:
        if step.runs == 1:
            await asyncio.Event().wait()

    step = Fn(
        "slow",
        slow_once,
        timeout=0.05,
        retry_policy=RetryPolicy(max_attempts=2, initial_delay=0, retry_on=(TimeoutError,)),
    )
    engine = make_engine(linear("slow_retry", step, Set("end")))
    instance = await engine.start_workflow("slow_retry")
    assert instance.status is WorkflowStatus.COMPLETED
    assert step.runs == 2


# -- retrying a failed instance ---------------------------------------------------------


async def test_retry_resumes_a_failed_instance(make_engine: Any) -> None:
    broken = {"yes": True}

    def pay(context: WorkflowContext) -> None:
        context.set("attempted", True)
        if broken["yes"]:
            raise RuntimeError("gateway down")
        context.set("paid", True)

    start, payment, end = Set("start", s=1), Fn("process_payment", pay), Set("end", e=1)
    bus = RecordingBus()
    engine = make_engine(linear("payment", start, payment, end), event_bus=bus)
    instance = await engine.start_workflow("payment", {"amount": 5})
    assert instance.status is WorkflowStatus.FAILED
    assert instance.data == {"amount": 5, "s": 1, "attempted": True}  # with the failed step's writes
    assert instance.failed_step == "process_payment"

    broken["yes"] = False
    resumed = await engine.retry(instance.id)
    assert resumed.status is WorkflowStatus.COMPLETED
    assert resumed.error is None
    assert resumed.failed_step is None
    assert resumed.data == {"amount": 5, "s": 1, "attempted": True, "paid": True, "e": 1}
    assert (start.runs, payment.runs, end.runs) == (1, 2, 1)
    retried = [e for e in bus.events if isinstance(e, WorkflowRetried)]
    assert [e.from_step for e in retried] == ["process_payment"]
    assert [t for t, _ in bus.summary()].count("WorkflowFailed") == 1


async def test_retry_from_an_earlier_step(make_engine: Any) -> None:
    flaky = _flaky("flaky", failures=1)
    start = Set("start", s=1)
    engine = make_engine(linear("from", start, flaky, Set("end")))
    instance = await engine.start_workflow("from")
    assert instance.status is WorkflowStatus.FAILED
    resumed = await engine.retry(instance.id, from_step="start")
    assert resumed.status is WorkflowStatus.COMPLETED
    assert (start.runs, flaky.runs) == (2, 2)


async def test_retry_refuses_instances_that_did_not_fail(make_engine: Any) -> None:
    engine = make_engine(
        linear("ok", Set("a")), linear("waits", BaseHumanStep("h")), linear("bad", _flaky("x", 9), Set("y"))
    )
    done = await engine.start_workflow("ok")
    with pytest.raises(InvalidTransitionError, match="is completed; only failed instances can be retried"):
        await engine.retry(done.id)
    waiting = await engine.start_workflow("waits")
    with pytest.raises(InvalidTransitionError, match="is waiting"):
        await engine.retry(waiting.id)
    failed = await engine.start_workflow("bad")
    with pytest.raises(InvalidTransitionError, match="has no step 'ghost'"):
        await engine.retry(failed.id, from_step="ghost")
    assert (await engine.get_instance(failed.id)).status is WorkflowStatus.FAILED
    with pytest.raises(InstanceNotFoundError):
        await engine.retry(uuid4())


# -- cancellation -----------------------------------------------------------------------


async def test_cancel_cancels_the_instance_and_its_open_tasks(make_engine: Any) -> None:
    definition = linear("tasks", Set("start"), BaseHumanStep("review"), Set("end"))
    bus = RecordingBus()
    engine = make_engine(definition, event_bus=bus)
    instance = await engine.start_workflow("tasks")
    task = (await engine.get_tasks(instance_id=instance.id))[0]
    await engine.cancel_workflow(instance.id, "customer asked", canceled_by="support")
    canceled = await engine.get_instance(instance.id)
    assert canceled.status is WorkflowStatus.CANCELED
    assert canceled.error == "customer asked"
    assert canceled.completed_at is not None
    stored = await engine.get_task(task.id)
    assert stored.status is TaskStatus.CANCELED
    assert await engine.get_tasks(instance_id=instance.id) == []  # no pending task left
    record = next(r for r in await engine.get_history(instance.id) if r.step_name == "review")
    assert record.status is StepStatus.CANCELED
    event = bus.events[-1]
    assert isinstance(event, WorkflowCanceled)
    assert (event.reason, event.canceled_by) == ("customer asked", "support")
    state = await engine.store.load_instance(str(instance.id))
    assert state is not None
    assert state.tokens == {}  # nothing left to run or to wait for
    assert await engine.store.pending_tokens() == []
    with pytest.raises(InvalidTransitionError, match="is canceled and cannot be canceled"):
        await engine.cancel_workflow(instance.id, "again")
    assert [t for t, _ in bus.summary()].count("WorkflowCanceled") == 1


async def test_cancel_cancels_every_open_task_of_parallel_branches(make_engine: Any) -> None:
    from flowstar import Edge, WorkflowDefinition

    definition = WorkflowDefinition(
        name="two_tasks",
        steps={
            "start": Set("start"),
            "legal": BaseHumanStep("legal"),
            "finance": BaseHumanStep("finance"),
            "end": Set("end"),
        },
        edges=[Edge("start", "legal"), Edge("start", "finance"), Edge("legal", "end"), Edge("finance", "end")],
        initial_step="start",
        terminal_steps={"end"},
    )
    engine = make_engine(definition)
    instance = await engine.start_workflow("two_tasks")
    assert len(await engine.get_tasks(instance_id=instance.id)) == 2
    await engine.cancel_workflow(instance.id, "stop")
    statuses = [t.status for t in await engine.get_tasks(instance_id=instance.id, status=None)]
    assert statuses == [TaskStatus.CANCELED, TaskStatus.CANCELED]


async def test_cancel_refuses_finished_and_unknown_instances(make_engine: Any) -> None:
    engine = make_engine(linear("fin", Set("a")))
    done = await engine.start_workflow("fin")
    with pytest.raises(InvalidTransitionError, match="is completed"):
        await engine.cancel_workflow(done.id, "late")
    with pytest.raises(InstanceNotFoundError):
        await engine.cancel_workflow(uuid4(), "who")


async def test_cancel_while_a_step_runs_discards_its_outcome(make_engine: Any) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    running: list[UUID] = []

    async def long_running(context: WorkflowContext) -> None:
        running.append(context.instance_id)
        started.set()
        await release.wait()
        context.set("finished", True)

    after = Set("after")
    engine = make_engine(linear("long", Fn("work", long_running), after))
    start = asyncio.create_task(engine.start_workflow("long"))
    await asyncio.wait_for(started.wait(), 5)
    [instance_id] = running
    await engine.cancel_workflow(instance_id, "abort")
    release.set()
    returned = await start
    assert returned.status is WorkflowStatus.CANCELED
    assert "finished" not in returned.data
    assert after.runs == 0
    assert [r.step_name for r in await engine.get_history(instance_id)] == []


async def test_cancel_during_a_retry_back_off(make_engine: Any, clock: ManualClock) -> None:
    step = _flaky("flaky", failures=1)
    step.retry_policy = RetryPolicy(max_attempts=3, initial_delay=60, jitter=0)
    engine = make_engine(linear("backoff", step, Set("end")), clock=clock)
    instance = await engine.start_workflow("backoff")
    assert instance.status is WorkflowStatus.RUNNING
    await engine.cancel_workflow(instance.id, "enough")
    clock.advance(120)
    await drain()
    assert step.runs == 1
    assert (await engine.get_instance(instance.id)).status is WorkflowStatus.CANCELED
