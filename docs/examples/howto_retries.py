"""How-to: retry a failing step with back-off, let it fail for good, then retry the instance."""

from __future__ import annotations

import asyncio

# --8<-- [start:step]
from datetime import timedelta

from flowstar import (
    BaseMachineStep,
    LocalExecutionEngine,
    ManualClock,
    RetryPolicy,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowRegistry,
    WorkflowStatus,
)


class PaymentProvider:
    """Stands in for a payment API that is down for a while."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    async def charge(self, invoice: str, amount: float) -> str:
        self.calls += 1
        if self.down:
            raise ConnectionError("payment provider unreachable")
        return f"ch_{invoice}"


provider = PaymentProvider()


class Charge(BaseMachineStep):
    name = "charge"
    # 4 attempts: after 10 s, 20 s and 40 s (+/-10% jitter); only connection errors are
    # retried, any other error fails the workflow at once.
    retry_policy = RetryPolicy(max_attempts=4, initial_delay=10, backoff=2, jitter=0.1, retry_on=(ConnectionError,))
    timeout = 30  # seconds one attempt may take (StepTimeoutError, retried like any error)

    async def execute(self, context: WorkflowContext) -> None:
        context.set("charge_id", await provider.charge(context.get("invoice"), context.get("amount")))


registry = WorkflowRegistry()
registry.register_definition(
    WorkflowDefinition(
        name="invoice_payment",
        version="1.0.0",
        steps={"charge": Charge()},
        edges=[],
        initial_step="charge",
        terminal_steps={"charge"},
    )
)
# --8<-- [end:step]


async def main() -> None:
    provider.down, provider.calls = True, 0
    # --8<-- [start:run]
    from flowstar.testing import advance

    clock = ManualClock()  # tests move time; production uses the real clock
    engine = LocalExecutionEngine(registry, clock=clock)
    invoice = await engine.start_workflow("invoice_payment", {"invoice": "INV-7", "amount": 99.0})
    assert invoice.status is WorkflowStatus.RUNNING  # attempt 1 failed; attempt 2 is due in ~10 s

    await advance(engine, clock, timedelta(minutes=5))  # the three back-offs go by, in order
    failed = await engine.get_instance(invoice.id)
    assert failed.status is WorkflowStatus.FAILED and provider.calls == 4
    assert "payment provider unreachable" in failed.error

    provider.down = False  # the provider is back: retry from the failed step
    done = await engine.retry(invoice.id)
    assert done.status is WorkflowStatus.COMPLETED and done.context.get("charge_id") == "ch_INV-7"
    # --8<-- [end:run]
    await engine.close()


if __name__ == "__main__":
    asyncio.run(main())
