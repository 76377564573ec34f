"""The exceptions can be caught as the reference API documents, on every store."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from flowstar import (
    BaseHumanStep,
    InstanceNotFoundError,
    InvalidTransitionError,
    TaskAlreadyCompletedError,
    TaskNotFoundError,
    ValidationError,
    WorkflowNotFoundError,
    WorkflowsError,
)
from tests.unit.helpers import Set, linear


def _approval() -> Any:
    return linear("approve", Set("submit"), BaseHumanStep("review"), Set("done"))


async def test_get_instance_of_an_unknown_id_is_a_key_error(make_engine: Any) -> None:
    engine = make_engine(_approval())
    with pytest.raises(KeyError) as info:
        await engine.get_instance(uuid4())
    assert isinstance(info.value, InstanceNotFoundError)
    assert "no workflow instance with id" in str(info.value)


async def test_completing_a_task_of_an_unknown_instance_is_a_value_error(make_engine: Any) -> None:
    engine = make_engine(_approval())
    with pytest.raises(ValueError, match="no workflow instance with id") as info:
        await engine.complete_human_task(uuid4(), "review", "ann", {})
    assert isinstance(info.value, InstanceNotFoundError)


async def test_completing_a_finished_task_is_a_value_error(make_engine: Any) -> None:
    engine = make_engine(_approval())
    instance = await engine.start_workflow("approve")
    await engine.complete_human_task(instance.id, "review", "ann", {})
    with pytest.raises(ValueError, match="completed") as info:
        await engine.complete_human_task(instance.id, "review", "bob", {})
    assert isinstance(info.value, TaskAlreadyCompletedError)
    assert isinstance(info.value, InvalidTransitionError)


async def test_completing_a_step_that_is_not_waiting_is_a_value_error(make_engine: Any) -> None:
    engine = make_engine(_approval())
    instance = await engine.start_workflow("approve")
    with pytest.raises(ValueError, match="has no step 'no_such_step'") as info:
        await engine.complete_human_task(instance.id, "no_such_step", "ann", {})
    assert isinstance(info.value, TaskNotFoundError)


def test_the_hierarchy_keeps_its_roots() -> None:
    for error in (InstanceNotFoundError, TaskNotFoundError, InvalidTransitionError, WorkflowNotFoundError):
        assert issubclass(error, WorkflowsError)
    assert issubclass(InstanceNotFoundError, KeyError)
    assert issubclass(InstanceNotFoundError, ValueError)
    assert issubclass(TaskNotFoundError, KeyError)
    assert issubclass(TaskNotFoundError, ValueError)
    assert issubclass(WorkflowNotFoundError, LookupError)
    # str() is the message itself, not KeyError's quoted repr of it.
    assert str(InstanceNotFoundError("no workflow instance with id 'x'")) == "no workflow instance with id 'x'"


@pytest.mark.parametrize("unknown", [uuid4, lambda: "not-a-uuid"])
async def test_the_history_of_an_unknown_instance_is_not_found_on_every_store(make_engine: Any, unknown: Any) -> None:
    engine = make_engine(_approval())
    with pytest.raises(InstanceNotFoundError, match="no workflow instance with id"):
        await engine.get_history(unknown())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e: e.start_workflow("approve", tenant_id=""), "tenant_id must be a non-empty string, got ''"),
        (lambda e: e.start_workflow("approve", created_by=5), "created_by must be a non-empty string, got 5"),
        (lambda e: e.start_workflow("approve", created_by="u" * 256), "created_by has at most 255 characters"),
        (lambda e: e.start_workflow("approve", tenant_id="a\x00b"), "tenant_id must not contain a NUL character"),
        (lambda e: e.start_workflow("approve", metadata={"v": float("nan")}), "metadata"),
        (lambda e: e.start_workflow("approve", metadata=["x"]), "metadata"),
        (lambda e: e.report_event("due", "e-1", tenant_id=7), "tenant_id must be a non-empty string, got 7"),
    ],
)
async def test_ids_and_metadata_are_checked_alike_on_every_store(make_engine: Any, call: Any, message: str) -> None:
    engine = make_engine(_approval())
    with pytest.raises(ValidationError) as info:
        await call(engine)
    assert message in str(info.value)
    assert (await engine.find_instances()).items == []


async def test_a_task_is_completed_and_an_instance_canceled_by_an_id_only(make_engine: Any) -> None:
    engine = make_engine(_approval())
    instance = await engine.start_workflow("approve")
    with pytest.raises(ValidationError, match="user_id must be a non-empty string, got ''"):
        await engine.complete_human_task(instance.id, "review", "", {})
    with pytest.raises(ValidationError, match="a cancel reason is a string, got int"):
        await engine.cancel_workflow(instance.id, 5)
    with pytest.raises(ValidationError, match="canceled_by must be a non-empty string"):
        await engine.cancel_workflow(instance.id, "stop", canceled_by=["ann"])
    assert (await engine.get_instance(instance.id)).status.value == "waiting"
    done = await engine.complete_human_task(instance.id, "review", "ann", {})
    assert done.status.value == "completed"
