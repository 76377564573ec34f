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
