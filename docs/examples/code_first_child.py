"""docs/code-first.md: a parent starts a child workflow and goes on with its result."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from flowstar import LocalExecutionEngine, WorkflowRegistry, WorkflowStatus
from flowstar.flow import FlowEngine, child_result, complete, fail, get_context, start_child, step, workflow

registry = WorkflowRegistry()


@workflow("shipping", registry=registry)
class Shipping:
    @dataclass
    class Context:
        order_id: int

    @step(start=True)
    def label(self):
        return complete(label=f"LBL-{get_context().order_id}")


@workflow("order", registry=registry)
class Order:
    @dataclass
    class Context:
        order_id: int

    # --8<-- [start:steps]
    @step()
    def ship(self):
        return start_child("shipping", order_id=get_context().order_id)  # or start_child(Shipping, ...)

    @step()
    def shipped(self):
        result = child_result()  # ChildResult: id, workflow, status, data, error
        if not result.completed:
            return fail(f"shipping {result.status}: {result.error}")
        return complete(label=result.data["label"])

    # --8<-- [end:steps]


async def main() -> None:
    engine = FlowEngine(LocalExecutionEngine(registry))
    run = await engine.start("order", order_id=7)
    run = await run.refresh()
    assert run.status is WorkflowStatus.COMPLETED, run.error
    assert run.data["label"] == "LBL-7"
    (child,) = await engine.find(workflow="shipping")
    assert child.status is WorkflowStatus.COMPLETED and child.data["order_id"] == 7
    await engine.close()


if __name__ == "__main__":
    asyncio.run(main())
