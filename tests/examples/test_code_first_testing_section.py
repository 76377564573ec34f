"""Testing workflows: how a project tests its own code-first workflow (the guide's section).

A fixture gives the ``flowstar.flow.engine`` facade an in-process engine on a
``ManualClock`` (the guide's ``setUp``) and closes it after the test.  A test starts the
workflow, sends the signals it waits for, and skips time with
``flowstar.testing.advance``: each sleep, wait timeout and retry due on the way fires
at its own time, without real waiting.  (``clock`` is the suite's ``ManualClock`` fixture;
in a project of its own, ``return ManualClock()``.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pydantic import BaseModel

from flowstar import LocalExecutionEngine, ManualClock, WorkflowRegistry, WorkflowStatus
from flowstar.flow import complete, engine, get_context, sleep, step, wait, workflow
from flowstar.testing import advance

registry = WorkflowRegistry()


@workflow("order_fulfillment", registry=registry)
class OrderFulfillmentWorkflow:
    """The workflow under test: paid within a week, shipped, asked for feedback three days later."""

    class Context(BaseModel):
        order_id: int
        payment_confirmed: bool = False
        shipped: bool = False
        feedback_requested: bool = False

    @step(start=True)
    def confirm_payment(self):
        return wait.for_signal("payment_confirmed", timeout=timedelta(days=7), on_timeout="expire_order")

    @step()
    def ship_order(self):
        ctx = get_context()
        ctx.payment_confirmed = ctx.shipped = True
        return sleep(timedelta(days=3), next=self.request_feedback)

    @step()
    def request_feedback(self):
        get_context().feedback_requested = True
        return complete(outcome="delivered")

    @step()
    def expire_order(self):
        return complete(outcome="expired")


@pytest.fixture(autouse=True)
async def in_process_engine(clock: ManualClock) -> AsyncIterator[None]:
    """Run the workflows in this process, on the manual clock."""
    engine.use(LocalExecutionEngine(registry, clock=clock))
    yield
    await engine.close()


async def test_order_workflow(clock: ManualClock) -> None:
    # Start workflow: an in-process engine returns once it has settled, here at the wait
    run = await engine.start("order_fulfillment", order_id=123)

    # Check it's waiting for the payment
    assert run.status is WorkflowStatus.WAITING
    assert run.current_step == "confirm_payment"
    assert run.waiting_signal == "payment_confirmed"

    # Send signal to advance
    await engine.signal("payment_confirmed")
    run = await run.refresh()
    assert (run.current_step, run.context.shipped) == ("ship_order", True)
    assert run.wake_at == clock.now() + timedelta(days=3)

    # Skip the three days of the sleep
    await advance(engine, clock, timedelta(days=3))

    # Check final state
    run = await run.refresh()
    assert run.status is WorkflowStatus.COMPLETED
    assert (run.current_step, run.data["outcome"], run.context.feedback_requested) == (
        "request_feedback",
        "delivered",
        True,
    )


async def test_an_unpaid_order_expires_after_a_week_to_the_second(clock: ManualClock) -> None:
    run = await engine.start("order_fulfillment", order_id=124)
    assert run.wake_at == clock.now() + timedelta(days=7)

    await advance(engine, clock, timedelta(days=7) - timedelta(seconds=1))
    run = await run.refresh()
    assert (run.status, run.current_step) == (WorkflowStatus.WAITING, "confirm_payment")

    await advance(engine, clock, timedelta(seconds=1))
    run = await run.refresh()
    assert (run.status, run.current_step, run.data["outcome"]) == (WorkflowStatus.COMPLETED, "expire_order", "expired")
    assert run.context.payment_confirmed is False
    assert await engine.signal("payment_confirmed", instance_id=run.id) == 0  # too late: nobody waits for it


async def test_process_scheduled_runs_what_a_moved_clock_made_due(clock: ManualClock) -> None:
    paid = await engine.start("order_fulfillment", order_id=125)
    unpaid = await engine.start("order_fulfillment", order_id=126)
    await engine.signal("payment_confirmed", instance_id=paid.id)

    clock.advance(timedelta(days=7))  # one jump past both timers: the sleep and the wait's timeout
    await engine.process_scheduled()  # returns once what is due has run

    paid, unpaid = await paid.refresh(), await unpaid.refresh()
    assert (paid.status, paid.data["outcome"]) == (WorkflowStatus.COMPLETED, "delivered")
    assert (unpaid.status, unpaid.data["outcome"]) == (WorkflowStatus.COMPLETED, "expired")
