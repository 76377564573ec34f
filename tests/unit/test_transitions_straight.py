"""The short path for steps on a straight route builds exactly the plan the general path builds."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from flowstar import BaseHumanStep, Edge, WorkflowDefinition
from flowstar.model.enums import WorkflowStatus
from flowstar.model.state import HISTORY_LIMIT, CommitPlan, HistoryEntry, InstanceState
from flowstar.model.transitions import (
    StepResult,
    _apply_step_result,
    _start,
    apply_step_result,
    apply_success,
    start_instance,
)
from flowstar.model.waits import TimerStep
from tests.unit.helpers import Set, linear

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def ids(prefix: str) -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"{prefix}-{next(counter)}"


def succeeded(changes: dict[str, Any] | None = None, output: Any = None) -> StepResult:
    return StepResult(
        status="succeeded",
        started_at=T0,
        finished_at=T0 + timedelta(milliseconds=7),
        changes=changes or {},
        output=output,
    )


def both(
    definition: WorkflowDefinition, state: InstanceState, token_id: str, result: StepResult, events: bool
) -> CommitPlan:
    """The plan of ``apply_step_result`` after checking the general path builds the same one."""
    now = T0 + timedelta(seconds=1)
    fast = apply_step_result(definition, state, token_id, result, now=now, new_id=ids("x"), events=events)
    general = _apply_step_result(definition, state, token_id, result, now=now, new_id=ids("x"), events=events)
    assert same(fast) == same(general)
    direct = success(definition, state, token_id, result, now, events)
    # The engine's call for a plain step's success: the same plan, or None for the general path.
    assert direct is None or same(direct) == same(general)
    return fast


SEQUENCES = ("new_records", "record_updates", "new_tasks", "task_updates", "events", "dispatch", "voided")


def same(plan: CommitPlan) -> CommitPlan:
    """``plan`` with lists where it may hold empty tuples, for comparing plans."""
    return msgspec.structs.replace(plan, **{name: list(getattr(plan, name)) for name in SEQUENCES})


def success(
    definition: WorkflowDefinition, state: InstanceState, token_id: str, result: StepResult, now: datetime, events: bool
) -> CommitPlan | None:
    outcome = {name: getattr(result, name) for name in ("changes", "output", "started_at", "finished_at")}
    return apply_success(definition, state, token_id, now=now, new_id=ids("x"), events=events, **outcome)


def started(definition: WorkflowDefinition, events: bool, **kwargs: Any) -> CommitPlan:
    return start_instance(
        definition, instance_id="i-1", data={"n": 1}, now=T0, new_id=ids("s"), events=events, **kwargs
    )


def fan_out() -> WorkflowDefinition:
    return WorkflowDefinition(
        name="fan",
        steps={"a": Set("a", a=1), "b": Set("b", b=1), "c": Set("c", c=1)},
        edges=[Edge("a", "b"), Edge("a", "c")],
        initial_step="a",
        terminal_steps={"b", "c"},
    )


def test_straight_routes_name_only_plain_edges_into_running_steps() -> None:
    human = BaseHumanStep("approve", title="Approve", form_schema={"type": "object"})
    definition = WorkflowDefinition(
        name="mixed",
        steps={
            "a": Set("a"),
            "b": Set("b"),
            "approve": human,
            "wait": TimerStep("wait", duration=timedelta(seconds=5)),
            "c": Set("c"),
            "d": Set("d"),
        },
        edges=[
            Edge("a", "b"),
            Edge("b", "approve"),
            Edge("approve", "wait"),
            Edge("wait", "c", condition="context.get('n') > 0"),
            Edge("wait", "d", condition="context.get('n') <= 0"),
        ],
        initial_step="a",
        terminal_steps={"c", "d"},
    )
    assert definition.straight_routes == {"a": "b", "c": None, "d": None}
    assert fan_out().straight_routes == {"b": None, "c": None}


@pytest.mark.parametrize("events", [False, True])
def test_a_linear_run_matches_the_general_path_step_by_step(events: bool) -> None:
    definition = linear("line", Set("s1"), Set("s2"), Set("s3"))
    plan = started(definition, events, tenant_id="acme")
    for n, step in enumerate(("s1", "s2", "s3"), 1):
        (token,) = plan.dispatch
        assert token.step == step
        plan = both(definition, plan.instance, token.id, succeeded({f"k{n}": n}, output={"n": n}), events)
    assert plan.instance.status.value == "completed"
    assert plan.instance.data == {"n": 1, "k1": 1, "k2": 2, "k3": 3}
    assert [h.step for h in plan.instance.history] == ["s1", "s2", "s3"]
    assert plan.new_records[0].tenant_id == "acme"
    if events:
        assert [e.type for e in plan.events] == ["StepStarted", "StepCompleted", "WorkflowCompleted"]


@pytest.mark.parametrize("events", [False, True])
def test_a_terminal_branch_with_another_branch_open_keeps_the_instance_running(events: bool) -> None:
    definition = fan_out()
    plan = started(definition, events)
    plan = both(definition, plan.instance, plan.dispatch[0].id, succeeded(), events)  # a, general: fans out
    first, second = plan.dispatch
    plan = both(definition, plan.instance, first.id, succeeded({"b": 2}), events)
    assert plan.instance.status.value == "running"
    assert list(plan.instance.tokens) == [second.id]
    plan = both(definition, plan.instance, second.id, succeeded(), events)
    assert plan.instance.status.value == "completed"


def test_history_is_trimmed_and_a_later_attempt_is_recorded_as_such() -> None:
    definition = linear("line", Set("s1"), Set("s2"))
    plan = started(definition, False)
    (token,) = plan.dispatch
    long_history = [HistoryEntry("old", "succeeded", 1, T0)] * HISTORY_LIMIT
    retried = msgspec.structs.replace(plan.instance.tokens[token.id], attempt=3)
    state = msgspec.structs.replace(plan.instance, history=long_history, tokens={token.id: retried})
    plan = both(definition, state, token.id, succeeded(), False)
    assert len(plan.instance.history) == HISTORY_LIMIT
    assert plan.instance.history[-1].step == "s1"
    assert plan.new_records[0].attempt == 3


@pytest.mark.parametrize("events", [False, True])
def test_starting_at_a_running_step_matches_the_general_path(events: bool) -> None:
    definition = linear("line", Set("s1"), Set("s2"))
    fields: dict[str, Any] = {"tenant_id": "acme", "created_by": "ann", "metadata": {"source": "api"}}
    fast = start_instance(
        definition, instance_id="i-1", data={"n": 1}, now=T0, new_id=ids("s"), events=events, **fields
    )
    blank = InstanceState(
        id="i-1",
        workflow_name="line",
        workflow_version="1.0.0",
        status=WorkflowStatus.RUNNING,
        data={"n": 1},
        started_at=T0,
        updated_at=T0,
        **fields,
    )
    assert same(fast) == same(_start(definition, blank, now=T0, new_id=ids("s"), events=events))
    assert fast.instance.status is WorkflowStatus.RUNNING
    assert [t.step for t in fast.dispatch] == ["s1"]


def test_apply_success_leaves_every_other_case_to_the_general_path() -> None:
    now = T0 + timedelta(seconds=1)
    line = linear("line", Set("s1"), Set("s2"))
    plan = started(line, False)
    (token,) = plan.dispatch
    assert success(line, plan.instance, token.id, succeeded(), now, False) is not None
    # A token that is gone (a duplicate delivery): the general path raises StaleTokenError.
    assert success(line, plan.instance, "no-such-token", succeeded(), now, False) is None
    # Not running (failed or canceled meanwhile), or joins pending.
    failed = msgspec.structs.replace(plan.instance, status=WorkflowStatus.FAILED)
    assert success(line, failed, token.id, succeeded(), now, False) is None
    joining = msgspec.structs.replace(plan.instance, joins={"s2": ["x"]})
    assert success(line, joining, token.id, succeeded(), now, False) is None
    # A step that fans out is no straight route.
    fan = fan_out()
    plan = started(fan, False)
    assert success(fan, plan.instance, plan.dispatch[0].id, succeeded(), now, False) is None


def test_apply_success_takes_the_steps_end_apart_from_the_commit_time() -> None:
    line = linear("line", Set("s1"), Set("s2"))
    plan = started(line, True)
    (token,) = plan.dispatch
    result = succeeded({"k": 1})
    late = T0 + timedelta(seconds=30)
    direct = success(line, plan.instance, token.id, result, late, True)
    assert direct is not None
    (record,) = direct.new_records
    assert (record.started_at, record.completed_at) == (result.started_at, result.finished_at)
    assert direct.instance.updated_at == late
    assert direct.events[1].duration_ms == 7.0
