"""docs/code-first.md: a workflow an external event starts, an hour before the event's time."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel

from flowstar import LocalExecutionEngine, ManualClock, WorkflowRegistry, WorkflowStatus
from flowstar.flow import FlowEngine, complete, event_workflow, get_context, step
from flowstar.testing import advance

registry = WorkflowRegistry()
reminded: list[str] = []  # stands in for the notification service


# --8<-- [start:workflow]
@event_workflow("appointment_due", offset_minutes=-60, registry=registry)
class AppointmentReminder:
    class Context(BaseModel):
        entity_id: str
        patient: str = ""

    @step(start=True)
    def remind(self):
        reminded.append(get_context().patient)
        return complete()


# --8<-- [end:workflow]


async def main() -> None:
    clock = ManualClock()
    engine = FlowEngine(LocalExecutionEngine(registry, clock=clock))
    tomorrow_at_3 = clock.now().replace(hour=15, minute=0, second=0, microsecond=0) + timedelta(days=1)
    # --8<-- [start:report]
    await engine.report_event("appointment_due", "appt-7", at=tomorrow_at_3, payload={"patient": "Ann"})
    # --8<-- [end:report]
    await engine.report_event("appointment_due", "appt-7", at=tomorrow_at_3, payload={"patient": "Ann"})

    await advance(engine, clock, tomorrow_at_3 - timedelta(minutes=61) - clock.now())
    assert reminded == []  # not yet: an hour before the appointment
    await advance(engine, clock, timedelta(minutes=2))
    assert reminded == ["Ann"]  # once, though the event was reported twice
    (run,) = await engine.find(workflow="appointment_reminder")  # the class name, snake_case
    assert run.status is WorkflowStatus.COMPLETED and run.context.entity_id == "appt-7"
    await engine.close()


if __name__ == "__main__":
    asyncio.run(main())
