"""A webhook step's payload mapping, without an engine."""

from __future__ import annotations

from flowstar import WebhookStep, WorkflowContext


def test_payload_to_changes() -> None:
    assert WebhookStep("h").payload_to_changes({"a": 1}) == {"a": 1}
    assert WebhookStep("h", result_key="r").payload_to_changes({"a": 1}) == {"r": {"a": 1}}
    context = WorkflowContext()
    context.update(WebhookStep("h", result_key="r").payload_to_changes({"a": 1}))
    assert context.data == {"r": {"a": 1}}
