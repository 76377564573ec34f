"""docs/code-first.md and the testing how-to: three days of reminders in no time."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

# --8<-- [start:workflow]
from datetime import timedelta

from flowstar import WorkflowRegistry
from flowstar.flow import complete, get_context, sleep, step, workflow

registry = WorkflowRegistry()


@workflow("reminders", registry=registry)
class Reminders:
    @dataclass
    class Context:
        user_id: int
        reminders_sent: int = 0

    @step(start=True)
    def remind(self):
        ctx = get_context()
        ctx.reminders_sent += 1
        if ctx.reminders_sent < 3:
            return sleep(timedelta(days=1))  # then remind runs again
        return complete()


# --8<-- [end:workflow]


async def main() -> None:
    # --8<-- [start:test]
    from flowstar import LocalExecutionEngine, ManualClock
    from flowstar.flow import FlowEngine
    from flowstar.testing import advance

    clock = ManualClock()
    flow = FlowEngine(LocalExecutionEngine(registry, clock=clock))
    run = await flow.start("reminders", user_id=1)
    await advance(flow, clock, timedelta(days=3))  # no real waiting
    assert (await run.refresh()).context.reminders_sent == 3
    # --8<-- [end:test]
    assert run.status.value == "waiting"
    await flow.close()


if __name__ == "__main__":
    asyncio.run(main())
