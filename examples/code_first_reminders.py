"""Code-first reminder loop: ``sleep`` runs the same step again.

The guide's ``send_reminder`` sends a reminder, sleeps 24 hours and runs again, three
times, then escalates.  ``advance`` moves the manual clock through the three days.

Run it: ``python examples/code_first_reminders.py``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel

from flowstar import LocalExecutionEngine, ManualClock, WorkflowRegistry
from flowstar.flow import FlowRun, complete, engine, get_context, goto, sleep, step, workflow
from flowstar.logs import configure_logging
from flowstar.testing import advance

__all__ = ["InvoiceReminders", "main", "registry"]

registry = WorkflowRegistry()


@workflow("invoice_reminders", registry=registry)
class InvoiceReminders:
    class Context(BaseModel):
        invoice_id: int
        reminders_sent: int = 0
        reminder_times: list[str] = []
        escalated: bool = False

    @step(start=True)
    def send_reminder(self):
        ctx = get_context()
        ctx.reminders_sent += 1
        ctx.reminder_times.append(engine.engine.clock.now().isoformat())
        if ctx.reminders_sent < 3:
            return sleep(timedelta(hours=24))  # then send_reminder runs again
        return goto(self.escalate)

    @step()
    def escalate(self):
        get_context().escalated = True
        return complete()


async def main() -> FlowRun:
    """Remind three times, a day apart, then escalate."""
    clock = ManualClock()
    engine.use(LocalExecutionEngine(registry, clock=clock))
    try:
        run = await engine.start("invoice_reminders", invoice_id=42)
        print(f"sent {run.context.reminders_sent}, next at {run.wake_at}")
        await advance(engine, clock, timedelta(days=3))
        run = await run.refresh()
        print(f"{run.status}: sent {run.context.reminders_sent} at {', '.join(run.context.reminder_times)}")
        return run
    finally:
        await engine.close()


if __name__ == "__main__":
    configure_logging()
    asyncio.run(main())
