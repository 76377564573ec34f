"""Code-first workflows end to end, on every store, with the manual clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
import pytest

from flowstar import ManualClock, TaskStatus, ValidationError, WorkflowRegistry, WorkflowStatus
from flowstar.flow import (
    FlowEngine,
    Retry,
    complete,
    fail,
    get_context,
    goto,
    sleep,
    step,
    wait,
    wait_for_event,
    wakeup,
    workflow,
)
from flowstar.testing import advance


class Order(msgspec.Struct):
    order_id: int
    payment_confirmed: bool = False
    amount: float = 0.0
    shipped: bool = False
    notes: list[str] = []


def orders(registry: WorkflowRegistry) -> type:
    @workflow("orders", registry=registry)
    class Orders:
        Context = Order

        @step(start=True)
        def await_payment(self):
            return wait.for_signal("payment", timeout=timedelta(hours=48), on_timeout=self.cancel_order)

        @step()
        def confirm(self):
            ctx = get_context()
            ctx.payment_confirmed = True
            ctx.notes.append(f"paid {ctx.amount}")
            return goto(self.ship)

        @step()
        async def ship(self):
            get_context().shipped = True
            return complete(result="shipped")

        @step()
        def cancel_order(self):
            return fail("payment never came")

    return Orders


async def test_a_signal_payload_reaches_the_typed_context(flow_engine: FlowEngine, registry: WorkflowRegistry) -> None:
    orders(registry)
    run = await flow_engine.start("orders", order_id=5)
    assert (run.status, run.current_step) == (WorkflowStatus.WAITING, "await_payment")
    assert run.waiting_signal == "payment"
    assert run.waiting_for == ["signal:payment"]
    assert run.context == Order(order_id=5)
    assert await flow_engine.signal("payment", {"amount": 99.5, "reference": "R-1"}, instance_id=run.id) == 1
    done = await run.refresh()
    assert done.status is WorkflowStatus.COMPLETED
    assert done.context == Order(order_id=5, payment_confirmed=True, amount=99.5, shipped=True, notes=["paid 99.5"])
    assert done.data["reference"] == "R-1"  # not a Context field: kept in the raw data
    assert done.data["result"] == "shipped"


async def test_a_wait_times_out_to_on_timeout(
    flow_engine: FlowEngine, registry: WorkflowRegistry, clock: ManualClock
) -> None:
    orders(registry)
    run = await flow_engine.start("orders", order_id=6)
    assert run.wake_at == clock.now() + timedelta(hours=48)
    await advance(flow_engine, clock, timedelta(hours=47))
    assert (await run.refresh()).status is WorkflowStatus.WAITING
    await advance(flow_engine, clock, timedelta(hours=1))
    failed = await run.refresh()
    assert failed.status is WorkflowStatus.FAILED
    assert failed.error is not None
    assert "payment never came" in failed.error
    assert failed.current_step == "cancel_order"


def reminders(registry: WorkflowRegistry) -> type:
    @workflow("reminders", registry=registry)
    class Reminders:
        class Context(msgspec.Struct):
            user_id: int
            reminders_sent: int = 0
            escalated: bool = False

        @step(start=True)
        def send_reminder(self):
            ctx = get_context()
            ctx.reminders_sent += 1
            if ctx.reminders_sent < 3:
                return sleep(timedelta(hours=24))
            return goto(self.escalate)

        @step()
        def escalate(self):
            get_context().escalated = True
            return complete()

    return Reminders


async def test_sleep_runs_the_step_again(
    flow_engine: FlowEngine, registry: WorkflowRegistry, clock: ManualClock
) -> None:
    reminders(registry)
    run = await flow_engine.start("reminders", user_id=1)
    assert run.context.reminders_sent == 1
    assert run.wake_at == clock.now() + timedelta(hours=24)
    await advance(flow_engine, clock, timedelta(hours=23))
    assert (await run.refresh()).context.reminders_sent == 1
    await advance(flow_engine, clock, timedelta(hours=1))
    assert (await run.refresh()).context.reminders_sent == 2
    await advance(flow_engine, clock, timedelta(hours=24))
    done = await run.refresh()
    assert done.status is WorkflowStatus.COMPLETED
    assert (done.context.reminders_sent, done.context.escalated) == (3, True)


async def test_advance_fires_each_timer_at_its_own_time(
    local_flow: FlowEngine, registry: WorkflowRegistry, clock: ManualClock
) -> None:
    reminders(registry)
    run = await local_flow.start("reminders", user_id=2)
    await advance(local_flow, clock, timedelta(days=10))
    done = await run.refresh()
    assert done.status is WorkflowStatus.COMPLETED
    assert done.context.reminders_sent == 3


async def test_a_broadcast_signal_resumes_every_waiting_instance(
    flow_engine: FlowEngine, registry: WorkflowRegistry
) -> None:
    orders(registry)
    runs = [await flow_engine.start("orders", order_id=i) for i in range(3)]
    assert await flow_engine.signal("payment", {"amount": 1.0}) == 3
    for run in runs:
        assert (await run.refresh()).status is WorkflowStatus.COMPLETED
    assert await flow_engine.signal("payment", {"amount": 1.0}) == 0
    assert {r.id for r in await flow_engine.find(status="completed", workflow="orders")} == {r.id for r in runs}


async def test_a_signal_sent_just_before_the_wait_is_not_lost(
    flow_engine: FlowEngine, registry: WorkflowRegistry, clock: ManualClock
) -> None:
    @workflow("early", registry=registry)
    class Early:
        @step(start=True)
        def prepare(self):
            return sleep(60, next=self.listen)

        @step()
        def listen(self):
            return wait.for_signal("go")

        @step()
        def done(self):
            return complete(go=get_context().get("token"))

    run = await flow_engine.start("early")
    assert await flow_engine.signal("go", {"token": "t"}) == 0  # nobody waits yet
    await advance(flow_engine, clock, 60)
    finished = await run.refresh()
    assert finished.status is WorkflowStatus.COMPLETED
    assert finished.data["go"] == "t"


async def test_wait_any_tells_the_next_step_what_came(
    flow_engine: FlowEngine, registry: WorkflowRegistry, clock: ManualClock
) -> None:
    @workflow("any_of", registry=registry)
    class AnyOf:
        @step(start=True)
        def ask(self):
            return wait.any(wait.for_signal("approve"), wait_for_event("paid", filter="amount >= 10"), timeout=3600)

        @step()
        def decide(self):
            seen = wakeup()
            assert seen is not None
            return complete(came=seen.kind, name=seen.name, timed_out=seen.timed_out)

    by_signal = await flow_engine.start("any_of")
    by_event = await flow_engine.start("any_of")
    assert set(by_signal.waiting_for) == {"signal:approve", "event:paid"}
    await flow_engine.signal("approve", instance_id=by_signal.id)
    await flow_engine.report_event("paid", "order-1", payload={"amount": 5})  # filtered out
    assert (await by_event.refresh()).status is WorkflowStatus.WAITING
    await flow_engine.report_event("paid", "order-1", payload={"amount": 50})
    # Started after the event: outside its default lookback (since the instance started).
    await advance(flow_engine, clock, 1)
    by_timeout = await flow_engine.start("any_of")
    await advance(flow_engine, clock, timedelta(hours=1))
    signal_done = (await by_signal.refresh()).data
    event_done = (await by_event.refresh()).data
    timeout_done = (await by_timeout.refresh()).data
    assert (signal_done["came"], signal_done["name"]) == ("signal", "approve")
    assert (event_done["came"], event_done["name"], event_done["amount"]) == ("event", "paid", 50)
    assert event_done["entity_id"] == "order-1"
    assert event_done["event_name"] == "paid"
    assert (timeout_done["came"], timeout_done["timed_out"]) == ("timeout", True)
    assert "_wakeup" not in signal_done  # seen by the step after the wait only


async def test_goto_an_unknown_step_fails_the_instance(flow_engine: FlowEngine, registry: WorkflowRegistry) -> None:
    @workflow("lost", registry=registry)
    class Lost:
        @step(start=True)
        def route(self):
            return goto(get_context()["where"])

        @step()
        def somewhere(self):
            return complete()

    run = await flow_engine.start("lost", where="nowhere")
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert "nowhere" in run.error
    ok = await flow_engine.start("lost", where="somewhere")
    assert ok.status is WorkflowStatus.COMPLETED


async def test_exceptions_are_retried_by_the_step_policy_then_fail(
    flow_engine: FlowEngine, registry: WorkflowRegistry, clock: ManualClock
) -> None:
    attempts: list[int] = []

    @workflow("flaky", default_retry=Retry(max_attempts=2, base_delay=1), registry=registry)
    class Flaky:
        @step(start=True, retry=Retry(max_attempts=3, base_delay=timedelta(seconds=10), jitter=0))
        def call_api(self):
            attempts.append(1)
            if get_context()["fail_until"] > len(attempts):
                raise ConnectionError("api down")
            return goto(self.process)

        @step()
        def process(self):
            raise RuntimeError("always broken")

    run = await flow_engine.start("flaky", fail_until=3)
    assert len(attempts) == 1
    await advance(flow_engine, clock, 10)
    assert len(attempts) == 2
    await advance(flow_engine, clock, 20)
    assert len(attempts) == 3
    await advance(flow_engine, clock, 60)  # process: two attempts (the workflow's policy), then fail
    failed = await run.refresh()
    assert failed.status is WorkflowStatus.FAILED
    assert failed.current_step == "process"
    assert failed.error is not None
    assert "always broken" in failed.error


async def test_a_step_with_inputs_opens_a_task_and_runs_when_it_is_completed(
    flow_engine: FlowEngine, registry: WorkflowRegistry
) -> None:
    @workflow("expense_approval", registry=registry)
    class ExpenseApproval:
        class Context(msgspec.Struct):
            expense_id: int = 123
            reviewer_notes: str = ""
            priority: str = "medium"
            status: str = "pending"

        @step(start=True)
        def start_review(self):
            return goto(self.await_review)

        @step(action="expense_submit_review", assignee_group="managers")
        def await_review(self, reviewer_notes: str, priority: str):
            ctx = get_context()
            ctx.reviewer_notes = reviewer_notes
            ctx.priority = priority
            ctx.status = "reviewed"
            return complete()

    by_action = await flow_engine.start("expense_approval")
    assert (by_action.status, by_action.current_step) == (WorkflowStatus.WAITING, "await_review")
    engine = flow_engine.engine
    (task,) = (await engine.find_tasks(instance_id=by_action.id)).items
    assert (task.status, task.assignee_group) == (TaskStatus.PENDING, "managers")
    assert task.form_schema is not None
    assert task.form_schema["required"] == ["reviewer_notes", "priority"]
    done = await flow_engine.act(
        "expense_submit_review", by_action.id, user_id="mgr", reviewer_notes="ok", priority="high"
    )
    assert done.status is WorkflowStatus.COMPLETED
    assert done.context.status == "reviewed"
    assert (done.context.reviewer_notes, done.context.priority) == ("ok", "high")

    by_task = await flow_engine.start("expense_approval", expense_id=7)
    (task,) = (await engine.find_tasks(instance_id=by_task.id)).items
    await engine.complete_task(task.id, "mgr", {"reviewer_notes": "meh", "priority": "low"})
    assert (await by_task.refresh()).context.priority == "low"
    with pytest.raises(ValidationError, match="no action 'nope'"):
        await flow_engine.act("nope", by_task.id)


async def test_cancel_and_find(flow_engine: FlowEngine, registry: WorkflowRegistry) -> None:
    orders(registry)
    run = await flow_engine.start("orders", order_id=1)
    canceled = await flow_engine.cancel(run.id, "customer left")
    assert canceled.status is WorkflowStatus.CANCELED
    assert canceled.finished
    assert [r.id for r in await flow_engine.find(status=WorkflowStatus.CANCELED)] == [run.id]
    assert await flow_engine.signal("payment", instance_id=run.id) == 0


async def test_start_validates_through_the_context_and_is_idempotent(
    flow_engine: FlowEngine, registry: WorkflowRegistry
) -> None:
    orders(registry)
    with pytest.raises(ValidationError, match="invalid context|cannot create its context|does not fit"):
        await flow_engine.start("orders", order_id="x")
    first = await flow_engine.start("orders", idempotency_key="order-9", order_id=9)
    again = await flow_engine.start("orders", idempotency_key="order-9", order_id=9)
    assert again.id == first.id


async def test_create_context_builds_the_start_data(local_flow: FlowEngine, registry: WorkflowRegistry) -> None:
    @workflow("onboarding", registry=registry)
    class Onboarding:
        class Context(msgspec.Struct):
            user_id: int
            email: str
            email_sent: bool = False

        @classmethod
        def create_context(cls, user_id: int) -> Any:
            return cls.Context(user_id=user_id, email=f"user{user_id}@example.com")

        @step(start=True)
        def send_welcome_email(self):
            get_context().email_sent = True
            return complete()

    run = await local_flow.start(Onboarding, user_id=123)
    assert run.status is WorkflowStatus.COMPLETED
    assert run.data == {"user_id": 123, "email": "user123@example.com", "email_sent": True}
    with pytest.raises(ValidationError, match="cannot create its context"):
        await local_flow.start("onboarding", user=1)
