"""Webhook steps wait for one external callback whose payload joins the context."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from flowstar import (
    BaseHumanStep,
    InstanceNotFoundError,
    InvalidTransitionError,
    StepStatus,
    TaskAlreadyCompletedError,
    TaskNotFoundError,
    ValidationError,
    WebhookStep,
    WorkflowStatus,
)
from tests.unit.helpers import Fn, RecordingBus, Set, linear


def _flow(hook: WebhookStep) -> tuple[Any, dict[str, Any]]:
    seen: dict[str, Any] = {}
    return linear("pay", Set("charge", charged=True), hook, Fn("finish", lambda c: seen.update(c.data))), seen


async def test_webhook_waits_then_merges_its_payload(make_engine: Any) -> None:
    definition, seen = _flow(WebhookStep("payment_callback"))
    bus = RecordingBus()
    engine = make_engine(definition, event_bus=bus)
    instance = await engine.start_workflow("pay", {"order": 7})
    assert instance.status is WorkflowStatus.WAITING
    assert instance.current_step == "payment_callback"
    assert seen == {}
    done = await engine.resume_webhook(instance.id, "payment_callback", {"payment_id": "p-1", "paid": True})
    assert done.status is WorkflowStatus.COMPLETED
    assert seen == {"order": 7, "charged": True, "payment_id": "p-1", "paid": True}
    assert done.data == seen
    record = next(r for r in await engine.get_history(instance.id) if r.step_name == "payment_callback")
    assert (record.step_type, record.status, record.output_data) == (
        "webhook",
        StepStatus.SUCCEEDED,
        {"payment_id": "p-1", "paid": True},
    )
    assert ("StepStarted", "payment_callback") in bus.summary()
    assert ("StepCompleted", "payment_callback") in bus.summary()


async def test_webhook_with_result_key(make_engine: Any) -> None:
    definition, seen = _flow(WebhookStep("payment_callback", result_key="payment"))
    engine = make_engine(definition)
    instance = await engine.start_workflow("pay")
    done = await engine.resume_webhook(instance.id, "payment_callback", {"id": "p-2", "status": "ok"})
    assert done.data == {"charged": True, "payment": {"id": "p-2", "status": "ok"}}
    assert seen["payment"] == {"id": "p-2", "status": "ok"}


async def test_second_delivery_raises_task_already_completed(make_engine: Any) -> None:
    definition, _ = _flow(WebhookStep("payment_callback"))
    engine = make_engine(definition)
    instance = await engine.start_workflow("pay")
    first = await engine.resume_webhook(instance.id, "payment_callback", {"n": 1})
    with pytest.raises(TaskAlreadyCompletedError, match="received its callback already"):
        await engine.resume_webhook(instance.id, "payment_callback", {"n": 2})
    after = await engine.get_instance(instance.id)
    assert after.data["n"] == 1
    assert after.version == first.version


async def test_oversized_payload_is_rejected_and_changes_nothing(make_engine: Any) -> None:
    definition, seen = _flow(WebhookStep("payment_callback"))
    engine = make_engine(definition, max_payload_bytes=200)
    instance = await engine.start_workflow("pay")
    with pytest.raises(ValidationError, match=r"webhook payload is \d+ bytes; the limit is 200"):
        await engine.resume_webhook(instance.id, "payment_callback", {"blob": "x" * 500})
    after = await engine.get_instance(instance.id)
    assert (after.status, after.version, after.data) == (WorkflowStatus.WAITING, instance.version, instance.data)
    assert seen == {}
    done = await engine.resume_webhook(instance.id, "payment_callback", {"blob": "small"})
    assert done.status is WorkflowStatus.COMPLETED


async def test_oversized_initial_data_and_form_data_are_rejected(make_engine: Any) -> None:
    engine = make_engine(linear("form", BaseHumanStep("ask"), Set("end")), max_payload_bytes=100)
    with pytest.raises(ValidationError, match="initial_data is"):
        await engine.start_workflow("form", {"blob": "x" * 200})
    assert (await engine.list_instances())[1] == 0
    instance = await engine.start_workflow("form")
    with pytest.raises(ValidationError, match="form data is"):
        await engine.complete_human_task(instance.id, "ask", "u", {"blob": "x" * 200})
    assert (await engine.get_instance(instance.id)).status is WorkflowStatus.WAITING


async def test_payload_must_be_a_json_object(make_engine: Any) -> None:
    definition, _ = _flow(WebhookStep("payment_callback"))
    engine = make_engine(definition)
    instance = await engine.start_workflow("pay")
    with pytest.raises(ValidationError, match="webhook payload must be a JSON object, got list"):
        await engine.resume_webhook(instance.id, "payment_callback", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not JSON-serializable"):
        await engine.resume_webhook(instance.id, "payment_callback", {"x": object()})
    assert (await engine.get_instance(instance.id)).status is WorkflowStatus.WAITING


async def test_wrong_step_or_instance(make_engine: Any) -> None:
    definition, _ = _flow(WebhookStep("payment_callback"))
    engine = make_engine(definition)
    instance = await engine.start_workflow("pay")
    with pytest.raises(TaskNotFoundError, match="has no step 'nope'"):
        await engine.resume_webhook(instance.id, "nope", {})
    with pytest.raises(InvalidTransitionError, match="'charge' is a machine step, not a webhook step"):
        await engine.resume_webhook(instance.id, "charge", {})
    with pytest.raises(InstanceNotFoundError):
        await engine.resume_webhook(uuid4(), "payment_callback", {})


async def test_webhook_of_a_canceled_instance(make_engine: Any) -> None:
    definition, seen = _flow(WebhookStep("payment_callback"))
    engine = make_engine(definition)
    instance = await engine.start_workflow("pay")
    await engine.cancel_workflow(instance.id, "timeout")
    with pytest.raises(InvalidTransitionError, match="canceled"):
        await engine.resume_webhook(instance.id, "payment_callback", {"late": True})
    assert seen == {}
