"""How-to: the same retries in a code-first workflow: a default policy and a step's own."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

# --8<-- [start:workflow]
from datetime import timedelta

from flowstar import LocalExecutionEngine, ManualClock, WorkflowRegistry, WorkflowStatus
from flowstar.flow import FlowEngine, Retry, complete, get_context, step, workflow

from howto_retries import provider

registry = WorkflowRegistry()


@workflow(
    "invoice_payment_code_first",
    default_retry=Retry(max_attempts=3, base_delay=timedelta(seconds=5)),  # every step
    registry=registry,
)
class InvoicePayment:
    @dataclass
    class Context:
        invoice: str
        amount: float
        charge_id: str = ""

    @step(start=True, retry=Retry(max_attempts=6, base_delay=timedelta(seconds=10), max_delay=timedelta(minutes=5)))
    async def charge(self):  # this step's own policy wins
        ctx = get_context()
        ctx.charge_id = await provider.charge(ctx.invoice, ctx.amount)
        return complete()


# --8<-- [end:workflow]


async def main() -> None:
    from flowstar.testing import advance

    provider.down, provider.calls = True, 0
    clock = ManualClock()
    flow = FlowEngine(LocalExecutionEngine(registry, clock=clock))
    run = await flow.start("invoice_payment_code_first", invoice="INV-8", amount=10.0)
    await advance(flow, clock, timedelta(seconds=35))  # attempts 2 and 3 (after ~10 s and ~20 s)
    assert provider.calls == 3 and (await run.refresh()).status is WorkflowStatus.RUNNING
    provider.down = False
    await advance(flow, clock, timedelta(minutes=10))
    run = await run.refresh()
    assert run.status is WorkflowStatus.COMPLETED and run.context.charge_id == "ch_INV-8"
    assert provider.calls == 4
    await flow.close()


if __name__ == "__main__":
    asyncio.run(main())
