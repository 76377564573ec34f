"""Event types: JSON round trips, the tagged union's decoder, aliases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

import flowstar.events as events
from flowstar.events import (
    EVENT_TYPES,
    HumanTaskCompleted,
    HumanTaskCreated,
    HumanTaskReassigned,
    StepCompleted,
    StepFailed,
    StepSkipped,
    StepStarted,
    WorkflowCanceled,
    WorkflowCompleted,
    WorkflowEvent,
    WorkflowFailed,
    WorkflowRetried,
    WorkflowStarted,
    decode_event,
    encode_event,
)

_NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
_BASE: dict[str, Any] = {"instance_id": "i-1", "workflow_name": "w", "workflow_version": "1.0.0", "timestamp": _NOW}


@pytest.mark.parametrize(
    "event",
    [
        WorkflowStarted(**_BASE, initial_step="a", created_by="ann"),
        WorkflowCompleted(**_BASE, final_step="z"),
        WorkflowFailed(**_BASE, error="boom", step_name="b"),
        WorkflowCanceled(**_BASE, reason="r", canceled_by="admin"),
        WorkflowRetried(**_BASE, from_step="b"),
        StepStarted(**_BASE, step_name="a", step_type="machine", attempt=2),
        StepCompleted(**_BASE, step_name="a", step_type="machine", output={"k": [1, 2]}, duration_ms=1.5),
        StepFailed(**_BASE, step_name="a", step_type="machine", error="E", retry_at=_NOW + timedelta(seconds=5)),
        StepSkipped(**_BASE, step_name="a", step_type="machine"),
        HumanTaskCreated(**_BASE, task_id="t", step_name="h", task_title="T", assignee="u", due_at=_NOW),
        HumanTaskCompleted(**_BASE, task_id="t", step_name="h", completed_by="u", data={"ok": True}),
        HumanTaskReassigned(**_BASE, task_id="t", step_name="h", old_assignee="u", new_assignee="v"),
    ],
)
def test_events_round_trip_through_json(event: WorkflowEvent) -> None:
    raw = encode_event(event)
    assert msgspec.json.decode(raw)["type"] == type(event).__name__
    decoded = decode_event(raw)
    assert type(decoded) is type(event)
    assert decoded == event
    assert decode_event(raw.decode()) == event
    assert EVENT_TYPES[event.type] is type(event)


def test_decode_rejects_unknown_types() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_event(b'{"type": "Nope", "instance_id": "i"}')


def test_event_helpers_and_aliases() -> None:
    failed = StepFailed(**_BASE, step_name="a", step_type="machine", error="E")
    assert not failed.will_retry
    assert failed.type == "StepFailed"
    assert events.WorkflowStartedEvent is WorkflowStarted
    assert events.WorkflowFailedEvent is WorkflowFailed
    assert events.HumanTaskCreatedEvent is HumanTaskCreated
    assert set(EVENT_TYPES) == {
        "WorkflowStarted",
        "WorkflowCompleted",
        "WorkflowFailed",
        "WorkflowCanceled",
        "WorkflowRetried",
        "StepStarted",
        "StepCompleted",
        "StepExecuted",
        "StepFailed",
        "StepSkipped",
        "HumanTaskCreated",
        "HumanTaskCompleted",
        "HumanTaskReassigned",
        "HumanTaskClaimed",
        "HumanTaskUnclaimed",
        "HumanTaskCommented",
        "HumanTaskEscalated",
    }
    with pytest.raises(AttributeError):
        failed.error = "changed"  # type: ignore[misc]
