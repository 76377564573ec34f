"""Code-first signals and events with payloads.

The guide's context-in-signal-payloads example (``user_submitted_form``: its payload
joins the context) and its wait-for-events example (``payment_received``: the event's
payload and ``event_id``, ``event_name``, ``entity_id`` join it; 48 hours without one
cancel the order).  A signal sent without an instance id goes to every waiting instance.

Run it: ``python examples/code_first_signals.py``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from flowstar import LocalExecutionEngine, ManualClock, WorkflowRegistry
from flowstar.flow import FlowRun, complete, engine, fail, get_context, goto, step, wait, wait_for_event, workflow
from flowstar.logs import configure_logging
from flowstar.testing import advance

__all__ = ["OrderPaymentWorkflow", "ProfileFormWorkflow", "main", "registry"]

registry = WorkflowRegistry()


@workflow("profile_form", registry=registry)
class ProfileFormWorkflow:
    class Context(BaseModel):
        user_id: int
        form_data: dict[str, Any] = {}
        submission_time: str = ""
        user_name: str = ""

    @step(start=True)
    def wait_for_user_input(self):
        return wait.for_signal("user_submitted_form")

    @step()
    def process_user_input(self):
        ctx = get_context()
        # ctx.form_data and ctx.submission_time are now available
        ctx.user_name = ctx.form_data["name"]
        return complete()


@workflow("order_payment", registry=registry)
class OrderPaymentWorkflow:
    class Context(BaseModel):
        order_id: int
        event_id: str = ""
        event_name: str = ""
        entity_id: str = ""
        amount: float = 0.0
        fulfilled: bool = False

    @step(start=True)
    def wait_for_payment(self):
        # Wait for the payment_received event of this order: its payload names the order
        # (a bare field name in the filter is a payload field)
        order_id = get_context().order_id
        return wait_for_event(
            "payment_received",
            timeout=timedelta(hours=48),
            on_timeout="cancel_order",
            filter=f"order_id == {order_id}",
        )

    @step()
    def process_payment(self):
        # Payment was received, context automatically updated with event data:
        # ctx.event_id, ctx.event_name, ctx.entity_id are available
        return goto(self.fulfill_order)

    @step()
    def fulfill_order(self):
        get_context().fulfilled = True
        return complete()

    @step()
    def cancel_order(self):
        return fail("no payment within 48 hours")


async def main() -> tuple[list[FlowRun], FlowRun, FlowRun]:
    """One broadcast form signal reaches two users' forms; one order is paid, one is not.

    Returns the two forms, the paid order and the unpaid one.
    """
    clock = ManualClock()
    engine.use(LocalExecutionEngine(registry, clock=clock))
    try:
        forms = [await engine.start("profile_form", user_id=i) for i in (1, 2)]
        woken = await engine.signal(
            "user_submitted_form",
            {
                "form_data": {"name": "John", "phone": "555-1234"},
                "submission_time": datetime(2030, 1, 1, tzinfo=UTC).isoformat(),
            },
        )
        print(f"the form signal woke {woken} instances")
        forms = [await form.refresh() for form in forms]
        for form in forms:
            print(f"profile form of user {form.context.user_id}: {form.status}, user name {form.context.user_name}")

        paid = await engine.start("order_payment", order_id=7)
        unpaid = await engine.start("order_payment", order_id=8)
        await engine.report_event("payment_received", "payment-55", payload={"order_id": 7, "amount": 19.9})
        paid = await paid.refresh()
        ctx = paid.context
        print(f"order 7: {paid.status}, {ctx.event_name} {ctx.entity_id} of {ctx.amount}, fulfilled={ctx.fulfilled}")
        await advance(engine, clock, timedelta(hours=48))
        unpaid = await unpaid.refresh()
        print(f"order 8: {unpaid.status}: {unpaid.error}")
        return forms, paid, unpaid
    finally:
        await engine.close()


if __name__ == "__main__":
    configure_logging()
    asyncio.run(main())
