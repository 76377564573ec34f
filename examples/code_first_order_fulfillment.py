"""Code-first order fulfillment: steps that say where to go next.

The guide's multi-step flow (confirm payment, reserve inventory, ship) and its navigation
example (orders above 1000 need an approval first), as one ``@workflow`` class.

Run it: ``python examples/code_first_order_fulfillment.py``.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from flowstar import LocalExecutionEngine, WorkflowRegistry
from flowstar.flow import FlowRun, complete, engine, get_context, goto, step, wait, workflow
from flowstar.logs import configure_logging

__all__ = ["OrderFulfillmentWorkflow", "main", "registry"]

registry = WorkflowRegistry()


@workflow("order_fulfillment", registry=registry)
class OrderFulfillmentWorkflow:
    """Take a paid order to the customer's door."""

    class Context(BaseModel):
        order_id: int
        order_total: float = 0.0
        payment_confirmed: bool = False
        approved_by: str = ""
        items_reserved: bool = False
        shipped: bool = False

    @step(start=True)
    def confirm_payment(self):
        ctx = get_context()
        ctx.payment_confirmed = True  # payment processing logic
        return goto(self.process_order)

    @step()
    def process_order(self):
        ctx = get_context()
        if ctx.order_total > 1000:
            return goto(self.require_approval)
        return goto(self.reserve_inventory)

    @step()
    def require_approval(self):
        # The approval's payload ({"approved_by": ...}) joins the context; then the next
        # step declared below runs.
        return wait.for_signal("order_approved")

    @step()
    def reserve_inventory(self):
        get_context().items_reserved = True  # inventory logic
        return goto(self.ship_order)

    @step()
    async def ship_order(self):
        get_context().shipped = True  # shipping logic
        return complete()


async def main() -> list[FlowRun]:
    """Ship a small order at once, and a large one after its approval."""
    engine.use(LocalExecutionEngine(registry))
    try:
        small = await engine.start("order_fulfillment", order_id=1, order_total=250.0)
        print(f"order 1: {small.status}, shipped={small.context.shipped}")
        large = await engine.start("order_fulfillment", order_id=2, order_total=5000.0)
        print(f"order 2: {large.status} at {large.current_step}, waiting for {large.waiting_signal}")
        await engine.signal("order_approved", {"approved_by": "dana"}, instance_id=large.id)
        large = await large.refresh()
        print(f"order 2: {large.status}, approved by {large.context.approved_by}, shipped={large.context.shipped}")
        return [small, large]
    finally:
        await engine.close()


if __name__ == "__main__":
    configure_logging()
    asyncio.run(main())
