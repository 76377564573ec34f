"""Gateways route only to the steps they return."""

from __future__ import annotations

from typing import Any

import pytest

from flowstar import (
    BaseGateway,
    Edge,
    ExclusiveGateway,
    ParallelGateway,
    StepStatus,
    StepType,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowStatus,
)
from tests.unit.helpers import Set


def _routed(
    gateway: BaseGateway, targets: tuple[str, ...] = ("a", "b", "c")
) -> tuple[WorkflowDefinition, dict[str, Set]]:
    branches = {t: Set(t, **{f"ran_{t}": True}) for t in targets}
    steps: dict[str, Any] = {"start": Set("start"), "gate": gateway, **branches}
    edges = [Edge("start", "gate")] + [Edge("gate", t) for t in targets]
    definition = WorkflowDefinition(
        name="routed",
        steps=steps,
        edges=edges,
        initial_step="start",
        terminal_steps=set(targets),
    )
    return definition, branches


@pytest.mark.parametrize(
    ("amount", "expected"),
    [(50, "a"), (500, "b"), (5000, "c"), (None, "c")],
)
async def test_exclusive_gateway_picks_the_first_match_or_default(make_engine: Any, amount: Any, expected: str) -> None:
    gateway = ExclusiveGateway(
        "gate",
        [
            ("context.get('amount') is not None and context.get('amount') < 100", "a"),
            ("context.get('amount') is not None and context.get('amount') < 1000", "b"),
        ],
        default="c",
    )
    definition, branches = _routed(gateway)
    engine = make_engine(definition)
    instance = await engine.start_workflow("routed", {"amount": amount})
    assert instance.status is WorkflowStatus.COMPLETED
    assert {name for name, step in branches.items() if step.runs} == {expected}
    assert instance.data == {"amount": amount, f"ran_{expected}": True}
    assert instance.current_step == expected


async def test_exclusive_gateway_accepts_callables(make_engine: Any) -> None:
    def is_vip(context: WorkflowContext) -> bool:
        return context.get("tier") == "vip"

    definition, branches = _routed(ExclusiveGateway("gate", [(is_vip, "a")], default="b"))
    engine = make_engine(definition)
    await engine.start_workflow("routed", {"tier": "vip"})
    await engine.start_workflow("routed", {"tier": "basic"})
    assert (branches["a"].runs, branches["b"].runs, branches["c"].runs) == (1, 1, 0)


async def test_exclusive_gateway_without_match_or_default_fails(make_engine: Any) -> None:
    definition, branches = _routed(ExclusiveGateway("gate", [("context.get('x') == 1", "a")]))
    engine = make_engine(definition)
    instance = await engine.start_workflow("routed", {"x": 2})
    assert instance.status is WorkflowStatus.FAILED
    assert instance.error == "gateway 'gate' chose no branch"
    assert instance.failed_step == "gate"
    assert sum(b.runs for b in branches.values()) == 0


async def test_exclusive_gateway_condition_error_fails_the_step(make_engine: Any) -> None:
    definition, _ = _routed(ExclusiveGateway("gate", [("context.get('x') > 1", "a")], default="b"))
    engine = make_engine(definition)
    instance = await engine.start_workflow("routed", {"x": "text"})
    assert instance.status is WorkflowStatus.FAILED
    assert "context.get('x') > 1" in (instance.error or "")


async def test_parallel_gateway_routes_to_all_targets(make_engine: Any) -> None:
    definition, branches = _routed(ParallelGateway("gate", ["a", "c"]))
    engine = make_engine(definition)
    instance = await engine.start_workflow("routed")
    assert instance.status is WorkflowStatus.COMPLETED
    assert (branches["a"].runs, branches["b"].runs, branches["c"].runs) == (1, 0, 1)
    assert instance.data == {"ran_a": True, "ran_c": True}


class PickFromContext(BaseGateway):
    """A custom gateway: the context says where to go."""

    async def evaluate(self, context: WorkflowContext) -> str | list[str]:
        choice = context.get("route")
        return list(choice) if isinstance(choice, list) else str(choice)


@pytest.mark.parametrize(("route", "ran"), [("b", {"b"}), (["a", "c"], {"a", "c"}), (["a", "b", "c"], {"a", "b", "c"})])
async def test_custom_gateway_routes_only_to_returned_steps(make_engine: Any, route: Any, ran: set[str]) -> None:
    definition, branches = _routed(PickFromContext("gate"))
    engine = make_engine(definition)
    instance = await engine.start_workflow("routed", {"route": route})
    assert instance.status is WorkflowStatus.COMPLETED
    assert {name for name, step in branches.items() if step.runs} == ran
    assert all(step.runs <= 1 for step in branches.values())
    history = await engine.get_history(instance.id)
    gate = next(r for r in history if r.step_name == "gate")
    assert (gate.step_type, gate.status) == (StepType.GATEWAY.value, StepStatus.SUCCEEDED)


@pytest.mark.parametrize(("route", "unknown"), [("nowhere", "['nowhere']"), (["a", "start"], "['start']")])
async def test_custom_gateway_returning_an_unknown_step_fails_clearly(
    make_engine: Any, route: Any, unknown: str
) -> None:
    definition, branches = _routed(PickFromContext("gate"))
    engine = make_engine(definition)
    instance = await engine.start_workflow("routed", {"route": route})
    assert instance.status is WorkflowStatus.FAILED
    assert instance.error == f"gateway 'gate' returned {unknown}, which it has no edge to"
    assert instance.failed_step == "gate"
    assert sum(b.runs for b in branches.values()) == 0


async def test_gateway_without_evaluate_fails_the_workflow(make_engine: Any) -> None:
    class Lazy(BaseGateway):
        pass

    definition, _ = _routed(Lazy("gate"))
    engine = make_engine(definition)
    instance = await engine.start_workflow("routed")
    assert instance.status is WorkflowStatus.FAILED
    assert "Lazy must implement evaluate()" in (instance.error or "")


def test_declared_targets() -> None:
    exclusive = ExclusiveGateway("g", [("context.get('x')", "a"), ("context.get('y')", "b")], default="c")
    assert exclusive.declared_targets() == {"a", "b", "c"}
    assert ParallelGateway("p", ["x", "y"]).declared_targets() == {"x", "y"}
    assert PickFromContext("g").declared_targets() is None
    assert exclusive.step_type is StepType.GATEWAY
