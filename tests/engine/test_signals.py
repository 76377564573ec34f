"""Signals and external events: waiting steps, lookback, broadcast, filters, timeouts, on every store."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from flowstar import (
    Edge,
    InstanceNotFoundError,
    ManualClock,
    PermissionDeniedError,
    TimerStep,
    User,
    ValidationError,
    WorkflowDefinition,
    WorkflowStatus,
)
from flowstar.model.waits import EventStep, SignalStep
from tests.unit.helpers import Set, linear

DAY = timedelta(days=1)


def _approval(**signal: Any) -> WorkflowDefinition:
    return linear("approval", Set("ask", asked=True), SignalStep("approved", **signal), Set("done", finished=True))


async def _settle(engine: Any, instance: Any, status: WorkflowStatus) -> Any:
    return await engine.wait_for_status(instance.id, status, timeout=5)


async def test_a_signal_resumes_the_waiting_instance_with_its_payload(make_engine: Any) -> None:
    engine = make_engine(_approval())
    instance = await engine.start_workflow("approval")
    assert instance.status is WorkflowStatus.WAITING
    assert instance.waiting_for == ["signal:approved"]
    assert instance.waiting_signal == "approved"
    assert await engine.signal("approved", {"by": "carol"}) == 1
    done = await _settle(engine, instance, WorkflowStatus.COMPLETED)
    assert done.context.data["by"] == "carol"
    assert done.context.data["finished"] is True
    assert done.waiting_for == []
    assert [r.step_name for r in await engine.get_history(instance.id)] == ["ask", "approved", "done"]


async def test_a_signal_sent_before_the_wait_is_not_lost(make_engine: Any, clock: ManualClock) -> None:
    # The signal comes while the instance is still on its first step (a one-day timer here).
    flow = WorkflowDefinition(
        name="late",
        steps={
            "ask": Set("ask"),
            "pause": TimerStep("pause", duration=DAY),
            "approved": SignalStep("approved"),
            "done": Set("done"),
        },
        edges=[Edge("ask", "pause"), Edge("pause", "approved"), Edge("approved", "done")],
        initial_step="ask",
        terminal_steps={"done"},
    )
    engine = make_engine(flow, clock=clock)
    instance = await engine.start_workflow("late")
    assert await engine.signal("approved", {"ok": 1}) == 0  # nobody waits yet
    clock.advance(DAY)
    done = await _settle(engine, instance, WorkflowStatus.COMPLETED)
    assert done.context.data["ok"] == 1


async def test_a_consumed_signal_is_not_delivered_again(make_engine: Any) -> None:
    twice = linear("twice", SignalStep("first", signal="go"), SignalStep("second", signal="go"), Set("done"))
    engine = make_engine(twice)
    instance = await engine.start_workflow("twice")
    assert await engine.signal("go", {"n": 1}) == 1
    waiting = await engine.get_instance(instance.id)
    # The second wait does not take the first signal again through the lookback.
    assert waiting.status is WorkflowStatus.WAITING
    assert waiting.current_step == "second"
    assert await engine.signal("go", {"n": 2}) == 1
    done = await _settle(engine, instance, WorkflowStatus.COMPLETED)
    assert done.context.data["n"] == 2


async def test_a_broadcast_wakes_every_waiting_instance_of_the_tenant(make_engine: Any) -> None:
    engine = make_engine(_approval())
    acme = [await engine.start_workflow("approval", tenant_id="acme") for _ in range(3)]
    other = await engine.start_workflow("approval", tenant_id="globex")
    assert await engine.signal("approved", tenant_id="acme") == 3
    for instance in acme:
        assert (await _settle(engine, instance, WorkflowStatus.COMPLETED)).status is WorkflowStatus.COMPLETED
    assert (await engine.get_instance(other.id)).status is WorkflowStatus.WAITING


async def test_a_signal_for_one_instance_wakes_only_it(make_engine: Any) -> None:
    engine = make_engine(_approval())
    one = await engine.start_workflow("approval")
    two = await engine.start_workflow("approval")
    assert await engine.signal("approved", {"x": 1}, instance_id=one.id) == 1
    assert (await _settle(engine, one, WorkflowStatus.COMPLETED)).context.data["x"] == 1
    assert (await engine.get_instance(two.id)).status is WorkflowStatus.WAITING


async def test_a_wait_times_out_to_its_on_timeout_step(make_engine: Any, clock: ManualClock) -> None:
    flow = WorkflowDefinition(
        name="reply",
        steps={
            "reply": SignalStep("reply", timeout=timedelta(days=7), on_timeout="expire"),
            "thank": Set("thank", thanked=True),
            "expire": Set("expire", expired=True),
        },
        edges=[Edge("reply", "thank"), Edge("reply", "expire")],
        initial_step="reply",
        terminal_steps={"thank", "expire"},
    )
    engine = make_engine(flow, clock=clock)
    late = await engine.start_workflow("reply")
    assert late.wake_at == clock.now() + timedelta(days=7)
    clock.advance(timedelta(days=7))
    expired = await _settle(engine, late, WorkflowStatus.COMPLETED)
    assert expired.context.data.get("expired") is True
    assert "thanked" not in expired.context.data
    assert expired.waiting_for == []

    on_time = await engine.start_workflow("reply")
    assert await engine.signal("reply") == 1
    thanked = await _settle(engine, on_time, WorkflowStatus.COMPLETED)
    assert thanked.context.data.get("thanked") is True
    assert "expired" not in thanked.context.data
    clock.advance(timedelta(days=8))  # the voided timeout never fires
    assert (await engine.get_instance(on_time.id)).context.data.get("expired") is None


async def test_an_event_with_a_filter_waits_for_a_matching_payload(make_engine: Any) -> None:
    flow = linear(
        "payment", EventStep("paid", event="payment_received", filter="context.get('amount', 0) >= 100"), Set("ship")
    )
    engine = make_engine(flow)
    instance = await engine.start_workflow("payment")
    await engine.report_event("payment_received", "order-1", payload={"amount": 20})
    assert (await engine.get_instance(instance.id)).status is WorkflowStatus.WAITING
    event_id = await engine.report_event("payment_received", "order-1", payload={"amount": 150})
    done = await _settle(engine, instance, WorkflowStatus.COMPLETED)
    assert done.context.data["amount"] == 150
    assert done.context.data["event_id"] == event_id
    assert done.context.data["event_name"] == "payment_received"
    assert done.context.data["entity_id"] == "order-1"


def test_bad_wait_steps_are_refused() -> None:
    with pytest.raises(ValidationError, match="on_timeout needs a timeout"):
        linear("bad", SignalStep("s", on_timeout="x"), Set("x"))
    with pytest.raises(ValidationError, match="has no edge to it"):
        linear("bad", SignalStep("s", timeout=5, on_timeout="nowhere"), Set("x"))
    with pytest.raises(ValidationError, match="filter"):
        linear("bad", EventStep("e", filter="__import__('os')"), Set("x"))


async def test_bad_signals_are_refused(make_engine: Any) -> None:
    engine = make_engine(_approval())
    instance = await engine.start_workflow("approval", tenant_id="acme", created_by="alice")
    with pytest.raises(ValidationError):
        await engine.signal("")
    with pytest.raises(InstanceNotFoundError):
        await engine.signal("approved", instance_id="00000000-0000-7000-8000-000000000000")
    dave = User(id="dave", tenant_id="globex")
    with pytest.raises(InstanceNotFoundError):
        await engine.signal("approved", instance_id=instance.id, user=dave)
    with pytest.raises(PermissionDeniedError):
        await engine.signal("approved", user=User(id="bob", tenant_id="acme"))
    with pytest.raises(ValidationError, match="time zone"):
        await engine.report_event("x", "1", at=datetime(2030, 1, 1))  # noqa: DTZ001 - the naive time is the point
    assert (await engine.get_instance(instance.id)).status is WorkflowStatus.WAITING
