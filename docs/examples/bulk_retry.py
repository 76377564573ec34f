"""docs/bulk.md and the bulk how-to: retry every failed payment at once, as an admin."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from flowstar import LocalExecutionEngine, ManualClock, User, WorkflowStatus
from flowstar.testing import advance

from howto_retries import provider, registry


async def main() -> None:
    clock = ManualClock()
    engine = LocalExecutionEngine(registry, clock=clock)
    provider.down = True
    for n in range(5):
        await engine.start_workflow("invoice_payment", {"invoice": f"INV-{n}", "amount": 10.0}, tenant_id="acme")
    await advance(engine, clock, timedelta(minutes=5))  # every attempt fails: 5 failed instances
    provider.down = False
    admin = User(id="root", tenant_id="acme", is_admin=True)

    # --8<-- [start:bulk]
    from flowstar import BulkFilter, BulkRequest

    request = BulkRequest(
        kind="retry",  # "retry", "cancel" or "reassign"
        filter=BulkFilter(workflow="invoice_payment"),  # retry: failed instances by default
        from_step="charge",
    )
    print(await engine.bulk.count(request, user=admin))  # the dry run: how many match now
    operation = await engine.bulk.submit(request, user=admin)  # stored, then run in the background
    operation = await engine.bulk.wait(operation.id)  # or: await engine.bulk.get(operation.id)
    print(operation.status, operation.acted, operation.skipped, operation.failed, operation.errors)
    # --8<-- [end:bulk]

    assert (operation.acted, operation.skipped, operation.failed) == (5, 0, 0)
    page = await engine.find_instances(workflow_name="invoice_payment")
    assert {i.status for i in page.items} == {WorkflowStatus.COMPLETED}
    assert await engine.bulk.count(request, user=admin) == 0  # nothing failed is left
    await engine.close()


if __name__ == "__main__":
    asyncio.run(main())
