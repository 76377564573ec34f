"""Code-first event workflows: started by a reported event, at its time plus an offset.

The guide's three event workflows: ``order_placed`` processes a new order at once,
``appointment_due`` sends a reminder an hour before the appointment, ``meeting_ended``
a follow-up 30 minutes after the meeting.  ``engine.report_event`` reports each; the
manual clock moves through the afternoon.

Run it: ``python examples/code_first_event_workflows.py``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel

from flowstar import LocalExecutionEngine, ManualClock, WorkflowRegistry
from flowstar.flow import EventInfo, FlowRun, complete, engine, event_workflow, get_context, step
from flowstar.logs import configure_logging
from flowstar.testing import advance

__all__ = ["OrderProcessingWorkflow", "PostMeetingFollowup", "PreAppointmentReminder", "main", "registry", "sent"]

registry = WorkflowRegistry()
sent: list[str] = []  # stands in for the notification service


@event_workflow("order_placed", registry=registry)
class OrderProcessingWorkflow:
    class Context(BaseModel):
        order_id: int
        processed: bool = False

    @classmethod
    def create_context(cls, event: EventInfo | None = None) -> OrderProcessingWorkflow.Context:
        # event.entity is the id of the thing the event is about (load the model from it)
        assert event is not None
        return cls.Context(order_id=int(event.entity))

    @step(start=True)
    def process_new_order(self):
        get_context().processed = True
        return complete()


# Run 1 hour before the event time
@event_workflow("appointment_due", offset_minutes=-60, registry=registry)
class PreAppointmentReminder:
    class Context(BaseModel):
        entity_id: str
        patient: str = ""

    @step(start=True)
    def send_reminder(self):
        # Runs 1 hour before appointment_due event time
        ctx = get_context()
        sent.append(f"{engine.engine.clock.now():%H:%M} reminder to {ctx.patient} ({ctx.entity_id})")
        return complete()


# Run 30 minutes after the event time
@event_workflow("meeting_ended", offset_minutes=30, registry=registry)
class PostMeetingFollowup:
    @step(start=True)
    def send_followup(self):
        # Runs 30 minutes after meeting_ended event time (no Context: a dict of the payload)
        ctx = get_context()
        sent.append(f"{engine.engine.clock.now():%H:%M} follow-up on {ctx.entity_id} to {', '.join(ctx.attendees)}")
        return complete()


async def main() -> list[FlowRun]:
    """An order at noon, an appointment at 15:00, a meeting that ends at 13:00."""
    sent.clear()
    clock = ManualClock()
    clock.set(clock.now().replace(hour=12))
    engine.use(LocalExecutionEngine(registry, clock=clock))
    try:
        await engine.report_event("order_placed", 1001)
        await engine.report_event(
            "appointment_due", "appt-7", at=clock.now() + timedelta(hours=3), payload={"patient": "Ann"}
        )
        await engine.report_event(
            "meeting_ended", "meeting-3", at=clock.now() + timedelta(hours=1), payload={"attendees": ["bo", "cy"]}
        )
        (order,) = await engine.find(workflow="order_processing_workflow")
        print(f"order {order.context.order_id}: {order.status}")
        await advance(engine, clock, timedelta(hours=4))
        for line in sent:
            print(line)
        return await engine.find(status="completed")
    finally:
        await engine.close()


if __name__ == "__main__":
    configure_logging()
    asyncio.run(main())
