"""Data entering an engine is JSON data or refused, alike on every store; what a step sees.

These depend on the engine calling ``json_object`` for start, form and webhook data and
passing ``workflow_name`` and ``history`` to ``step_context``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from flowstar import (
    BaseHumanStep,
    ContextSerializationError,
    LocalExecutionEngine,
    TaskStatus,
    ValidationError,
    WebhookStep,
    WorkflowContext,
    WorkflowRegistry,
    WorkflowStatus,
)
from flowstar.model.context import MAX_DEPTH
from flowstar.model.registry import default_registry
from tests.unit.helpers import Fn, Set, linear


def _deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


REFUSED = [
    pytest.param(math.nan, "nan is not a JSON number", id="nan"),
    pytest.param(math.inf, "inf is not a JSON number", id="inf"),
    pytest.param(b"\x00\x01", "bytes have no JSON form", id="bytes"),
    pytest.param({"a", "b"}, "a set has no JSON form", id="set"),
    pytest.param({1: "x"}, "object keys must be strings", id="int key"),
]


@pytest.mark.parametrize(("value", "detail"), REFUSED)
async def test_start_data_that_is_no_json_is_refused(make_engine: Any, value: Any, detail: str) -> None:
    engine = make_engine(linear("flow", Set("only")))
    with pytest.raises(ContextSerializationError, match="initial_data 'v' is not JSON-serializable") as info:
        await engine.start_workflow("flow", {"v": value})
    assert detail in str(info.value)
    assert (await engine.list_instances())[1] == 0


async def test_a_100000_level_start_payload_is_a_validation_error(make_engine: Any) -> None:
    engine = make_engine(linear("flow", Set("only")))
    with pytest.raises(ValidationError, match=f"nests deeper than {MAX_DEPTH} levels"):
        await engine.start_workflow("flow", {"deep": _deep(100_000)})
    assert (await engine.list_instances())[1] == 0


async def test_tuples_are_lists_inside_the_step_on_every_store(make_engine: Any) -> None:
    seen: dict[str, Any] = {}
    engine = make_engine(linear("flow", Fn("look", lambda c: seen.update(c.data))))
    instance = await engine.start_workflow("flow", {"pair": (1, (2, 3))})
    assert seen == {"pair": [1, [2, 3]]}
    assert (await engine.get_instance(instance.id)).data == {"pair": [1, [2, 3]]}


@pytest.mark.parametrize(("value", "detail"), REFUSED)
async def test_form_data_that_is_no_json_is_refused(make_engine: Any, value: Any, detail: str) -> None:
    engine = make_engine(linear("flow", BaseHumanStep("review"), Set("done")))
    instance = await engine.start_workflow("flow")
    with pytest.raises(ContextSerializationError, match="form data 'v' is not JSON-serializable") as info:
        await engine.complete_human_task(instance.id, "review", "ann", {"v": value})
    assert detail in str(info.value)
    [task] = await engine.get_tasks(instance_id=instance.id)
    assert task.status is TaskStatus.PENDING


@pytest.mark.parametrize(("value", "detail"), REFUSED)
async def test_webhook_payloads_that_are_no_json_are_refused(make_engine: Any, value: Any, detail: str) -> None:
    engine = make_engine(linear("flow", WebhookStep("callback"), Set("done")))
    instance = await engine.start_workflow("flow")
    with pytest.raises(ContextSerializationError, match="webhook payload 'v' is not JSON-serializable") as info:
        await engine.resume_webhook(instance.id, "callback", {"v": value})
    assert detail in str(info.value)
    assert (await engine.get_instance(instance.id)).status is WorkflowStatus.WAITING


async def test_a_step_sees_its_workflow_instance_history_and_the_user_of_the_last_task(make_engine: Any) -> None:
    seen: dict[str, Any] = {}

    def notify(context: WorkflowContext) -> None:
        seen["workflow"] = context.get("_workflow_name")
        seen["instance"] = context.get("_instance_id")
        seen["history"] = [(h.step_name, h.status.value) for h in context.step_history]
        seen["user"] = context.user_id

    engine = make_engine(linear("notify_flow", Set("submit"), BaseHumanStep("approve"), Fn("notify", notify)))
    instance = await engine.start_workflow("notify_flow")
    await engine.complete_human_task(instance.id, "approve", "manager@example.com", {})
    assert seen == {
        "workflow": "notify_flow",
        "instance": str(instance.id),
        "history": [("submit", "succeeded"), ("approve", "succeeded")],
        "user": "manager@example.com",
    }


async def test_an_engine_without_a_registry_uses_the_default_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWSTAR_REGISTRY", raising=False)
    default_registry().register_definition(linear("default_registry_flow", Set("only", ran=True)))
    engine = LocalExecutionEngine()  # type: ignore[call-arg]
    try:
        assert engine.registry is default_registry()
        instance = await engine.start_workflow("default_registry_flow")
        assert instance.data == {"ran": True}
    finally:
        await engine.close()


NAMED = WorkflowRegistry()
NAMED.register_definition(linear("named_registry_flow", Set("only", named=True)))


async def test_flowstar_registry_names_the_registry_of_an_engine_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWSTAR_REGISTRY", f"{__name__}:NAMED")
    engine = LocalExecutionEngine()  # type: ignore[call-arg]
    try:
        assert engine.registry is NAMED
        assert (await engine.start_workflow("named_registry_flow")).data == {"named": True}
    finally:
        await engine.close()
