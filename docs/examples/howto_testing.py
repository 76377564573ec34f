"""How-to: test your workflows with the test clock; a test module pytest can collect as it is.

Put functions like these in your ``tests/`` (with pytest-asyncio's ``asyncio_mode = "auto"``);
``main()`` runs them here so that the docs' test checks them.
"""

from __future__ import annotations

import asyncio
import inspect

# --8<-- [start:tests]
from datetime import timedelta

from flowstar import LocalExecutionEngine, ManualClock, TaskStatus, WorkflowStatus
from flowstar.flow import FlowEngine
from flowstar.testing import advance, next_due

from code_first_testing import registry as reminder_registry
from howto_retries import provider
from howto_retries import registry as payment_registry
from tutorial_human_task import registry as expense_registry


async def test_small_reports_are_paid_at_once() -> None:
    engine = LocalExecutionEngine(expense_registry)
    report = await engine.start_workflow("expense_report", {"amount": "12.5"})
    assert report.status is WorkflowStatus.COMPLETED
    assert report.context.get("paid") == 12.5
    await engine.close()


async def test_a_review_left_for_three_days_is_overdue() -> None:
    clock = ManualClock()  # starts at the real time, then moves only when told
    engine = LocalExecutionEngine(expense_registry, clock=clock)
    report = await engine.start_workflow("expense_report", {"amount": "500"})
    assert (await engine.find_tasks(overdue=True)).items == []
    clock.advance(timedelta(days=3))
    (late,) = (await engine.find_tasks(overdue=True)).items
    assert (str(late.instance_id), late.status) == (str(report.id), TaskStatus.PENDING)
    await engine.close()


async def test_the_reminder_sleeps_a_day_between_reminders() -> None:
    clock = ManualClock()
    flow = FlowEngine(LocalExecutionEngine(reminder_registry, clock=clock))
    run = await flow.start("reminders", user_id=7)
    assert await next_due(flow) == clock.now() + timedelta(days=1)  # the first sleep's end
    await advance(flow, clock, timedelta(days=3))  # every timer on the way fires at its time
    run = await run.refresh()
    assert (run.status, run.context.reminders_sent) == (WorkflowStatus.COMPLETED, 3)
    await flow.close()


async def test_a_payment_fails_after_four_attempts() -> None:
    provider.down, provider.calls = True, 0
    clock = ManualClock()
    engine = LocalExecutionEngine(payment_registry, clock=clock)
    invoice = await engine.start_workflow("invoice_payment", {"invoice": "T-1", "amount": 1.0})
    await advance(engine, clock, timedelta(hours=1))  # the back-offs, without waiting for them
    failed = await engine.get_instance(invoice.id)
    assert (failed.status, provider.calls) == (WorkflowStatus.FAILED, 4)
    await engine.close()


# --8<-- [end:tests]


async def main() -> None:
    tests = [f for name, f in sorted(globals().items()) if name.startswith("test_") and inspect.iscoroutinefunction(f)]
    assert len(tests) == 4
    for test in tests:
        await test()


if __name__ == "__main__":
    asyncio.run(main())
