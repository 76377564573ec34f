"""docs/code-first.md: an order that waits for an approval signal above 1000, then ships."""

from __future__ import annotations

import asyncio

# --8<-- [start:example]
from pydantic import BaseModel  # or a msgspec Struct, or a dataclass

from flowstar import LocalExecutionEngine, WorkflowRegistry
from flowstar.flow import complete, engine, get_context, goto, step, wait, workflow

registry = WorkflowRegistry()  # without registry=, @workflow registers on the default one


@workflow("order_fulfillment", registry=registry)
class OrderFulfillment:
    class Context(BaseModel):
        order_id: int
        order_total: float = 0.0
        approved_by: str = ""
        shipped: bool = False

    @step(start=True)
    def check(self):
        if get_context().order_total > 1000:
            return goto(self.require_approval)
        return goto(self.ship)

    @step()
    def require_approval(self):
        return wait.for_signal("order_approved")  # then the next step declared: ship

    @step()
    async def ship(self):
        get_context().shipped = True
        return complete()


async def main() -> None:
    engine.use(LocalExecutionEngine(registry))
    run = await engine.start("order_fulfillment", order_id=1, order_total=5000)
    await engine.signal("order_approved", {"approved_by": "dana"}, instance_id=run.id)
    run = await run.refresh()
    assert run.context.shipped and run.context.approved_by == "dana"
    await engine.close()


# --8<-- [end:example]


if __name__ == "__main__":
    asyncio.run(main())
