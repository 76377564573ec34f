"""docs/tasks.md: a daily reminder, then an escalation to another group."""

from __future__ import annotations

# --8<-- [start:example]
import asyncio
from datetime import timedelta

from flowstar import (
    BaseHumanStep,
    Escalation,
    EventBus,
    LocalExecutionEngine,
    ManualClock,
    WorkflowDefinition,
    WorkflowRegistry,
)
from flowstar.events import HumanTaskEscalated, WorkflowEvent


class ApproveInvoice(BaseHumanStep):
    name = "approve"
    assignee_key = "approver"
    escalations = [
        Escalation(after=timedelta(hours=24), every=timedelta(hours=24)),  # a daily reminder
        Escalation(after=timedelta(hours=60), to_group="finance-leads"),  # then it moves on
    ]


async def escalation_example() -> None:
    clock, bus = ManualClock(), EventBus()
    seen: list[str] = []
    fired = asyncio.Event()

    async def on_escalation(event: WorkflowEvent) -> None:
        assert isinstance(event, HumanTaskEscalated)
        seen.append(f"{event.action} {event.assignee or event.assignee_group}")
        fired.set()

    bus.add_handler(on_escalation, types=[HumanTaskEscalated])
    registry = WorkflowRegistry()
    registry.register_definition(
        WorkflowDefinition(
            name="invoice",
            version="1.0.0",
            steps={"approve": ApproveInvoice()},
            edges=[],
            initial_step="approve",
            terminal_steps={"approve"},
        )
    )
    engine = LocalExecutionEngine(registry, clock=clock, event_bus=bus)
    started = await engine.start_workflow("invoice", {"approver": "mia"})
    (task,) = await engine.get_tasks(instance_id=started.id)

    for hours in (24, 24, 12, 12):  # hour 24, 48, 60 and 72 of the open task
        fired.clear()
        clock.advance(timedelta(hours=hours))
        await asyncio.wait_for(fired.wait(), timeout=5)
    assert seen == ["reminded mia", "reminded mia", "escalated finance-leads", "reminded finance-leads"]
    moved = await engine.get_task(task.id)
    assert (moved.assignee_id, moved.assignee_group) == (None, "finance-leads")
    await engine.close()


# --8<-- [end:example]


async def main() -> None:
    await escalation_example()


if __name__ == "__main__":
    asyncio.run(main())
