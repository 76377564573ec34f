"""Event workflows: started by report_event at the event's time plus their offset."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
import pytest

from flowstar import ManualClock, ValidationError, WorkflowRegistry, WorkflowStatus
from flowstar.flow import EventInfo, FlowEngine, complete, event_workflow, get_context, step
from flowstar.testing import advance

seen_events: list[EventInfo] = []


def appointments(registry: WorkflowRegistry) -> None:
    @event_workflow("appointment_due", offset_minutes=-60, registry=registry)
    class PreAppointmentReminder:
        class Context(msgspec.Struct):
            appointment_id: str
            patient: str = ""
            reminded: bool = False

        @classmethod
        def create_context(cls, event: EventInfo | None = None) -> Any:
            assert event is not None
            seen_events.append(event)
            return cls.Context(appointment_id=event.entity, patient=event.payload.get("patient", ""))

        @step(start=True)
        def send_reminder(self):
            get_context().reminded = True
            return complete()

    @event_workflow("appointment_due", offset_minutes=30, name="post_appointment_followup", registry=registry)
    class PostAppointmentFollowup:
        class Context(msgspec.Struct):
            entity_id: str
            patient: str = ""

        @step(start=True)
        def send_followup(self):
            return complete(followed_up=get_context().patient)


async def test_an_event_starts_its_workflows_at_their_offsets(
    flow_engine: FlowEngine, registry: WorkflowRegistry, clock: ManualClock
) -> None:
    seen_events.clear()
    appointments(registry)
    at = clock.now() + timedelta(hours=3)
    event_id = await flow_engine.report_event("appointment_due", "appt-1", at=at, payload={"patient": "Ann"})
    assert await flow_engine.find(status="completed") == []
    await advance(flow_engine, clock, timedelta(hours=2) - timedelta(seconds=1))
    assert await flow_engine.find(status="completed") == []
    await advance(flow_engine, clock, timedelta(seconds=1))
    (before,) = await flow_engine.find(status="completed", workflow="pre_appointment_reminder")
    assert before.context.appointment_id == "appt-1"
    assert (before.context.patient, before.context.reminded) == ("Ann", True)
    assert before.instance.started_at <= clock.now()
    (event,) = seen_events
    assert (event.id, event.name, event.entity_id, event.at) == (event_id, "appointment_due", "appt-1", at)
    await advance(flow_engine, clock, timedelta(minutes=90))
    (after,) = await flow_engine.find(status="completed", workflow="post_appointment_followup")
    assert after.data["followed_up"] == "Ann"
    assert after.context.entity_id == "appt-1"


async def test_reporting_twice_starts_once_and_a_new_time_moves_the_start(
    flow_engine: FlowEngine, registry: WorkflowRegistry, clock: ManualClock
) -> None:
    appointments(registry)
    at = clock.now() + timedelta(days=1)
    await flow_engine.report_event("appointment_due", "appt-2", at=at)
    await flow_engine.report_event("appointment_due", "appt-2", at=at)
    moved = at + timedelta(days=1)
    await flow_engine.report_event("appointment_due", "appt-2", at=moved)
    await advance(flow_engine, clock, timedelta(days=1))
    assert await flow_engine.find(status="completed", workflow="pre_appointment_reminder") == []
    await advance(flow_engine, clock, timedelta(days=1))
    done = await flow_engine.find(status="completed", workflow="pre_appointment_reminder")
    assert len(done) == 1


async def test_a_time_already_past_starts_at_once(
    flow_engine: FlowEngine, registry: WorkflowRegistry, clock: ManualClock
) -> None:
    appointments(registry)
    await flow_engine.report_event("appointment_due", "appt-3", at=clock.now() + timedelta(minutes=10))
    await flow_engine.process_scheduled()
    (run,) = await flow_engine.find(workflow="pre_appointment_reminder")
    assert run.status is WorkflowStatus.COMPLETED


async def test_find_names_the_statuses_when_one_is_unknown(flow_engine: FlowEngine) -> None:
    with pytest.raises(ValidationError, match="unknown status 'done'; one of pending, running, waiting, completed"):
        await flow_engine.find(status="done")
    with pytest.raises(ValidationError, match="unknown status 'bogus'"):
        await flow_engine.find(status=["completed", "bogus"])
