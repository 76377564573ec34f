"""Workflow definitions: validation, step declaration, edges and graphs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from flowstar import (
    BaseGateway,
    BaseHumanStep,
    BaseMachineStep,
    Edge,
    ExclusiveGateway,
    ParallelGateway,
    SequentialGroup,
    StepType,
    TimerStep,
    ValidationError,
    WebhookStep,
    WorkflowContext,
    WorkflowDefinition,
    WorkflowRegistry,
)
from tests.unit.helpers import Set, linear


class Submit(BaseMachineStep):
    name = "submit"
    description = "Submit the request"


class Review(BaseHumanStep):
    name = "review"
    title = "Review it"
    form_schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}


# -- validation ---------------------------------------------------------------------------


def _refused(**fields: Any) -> list[str]:
    """The problems a definition built from ``fields`` is refused with."""
    with pytest.raises(ValidationError) as info:
        WorkflowDefinition(**fields)
    assert str(info.value).startswith(f"workflow {fields.get('name')!r} {fields.get('version', '1.0.0')} is invalid: ")
    for error in info.value.errors:
        assert error in str(info.value)
    return info.value.errors


def test_a_valid_definition_has_no_problems() -> None:
    definition = WorkflowDefinition(
        name="approval",
        version="1.0.0",
        steps={"submit": Submit(), "review": Review()},
        edges=[Edge("submit", "review")],
        initial_step="submit",
        terminal_steps={"review"},
    )
    assert definition.validate() == []


def _broken_fields() -> dict[str, Any]:
    class Router(BaseGateway):
        async def evaluate(self, context: WorkflowContext) -> str:
            return "a"

    return {
        "name": "broken",
        "version": "1.0",
        "steps": {
            "start": Set("start"),
            "a": Set("a"),
            "end": Set("end"),
            "orphan": Set("orphan"),
            "dead": Set("dead"),
            "router": Router("router"),
            "mismatch": Set("other_name"),
            "form": BaseHumanStep("form", form_schema={"type": "no-such-type"}),
            "gw": ExclusiveGateway("gw", [("context.get('x') == 1", "a")], default="ghost_target"),
        },
        "edges": [
            Edge("start", "a"),
            Edge("start", "a"),
            Edge("a", "end"),
            Edge("a", "missing_target"),
            Edge("missing_source", "end"),
            Edge("end", "a"),
            Edge("start", "router"),
            Edge("router", "a", condition="context.get('x') == 1"),
            Edge("start", "dead"),
            Edge("start", "mismatch"),
            Edge("mismatch", "end"),
            Edge("start", "form"),
            Edge("form", "end"),
            Edge("start", "gw"),
            Edge("gw", "a"),
        ],
        "initial_step": "nowhere",
        "terminal_steps": {"end", "ghost"},
    }


def test_construction_reports_every_structural_problem_at_once() -> None:
    problems = _refused(**_broken_fields())
    expected = [
        "step key 'mismatch' does not match the step's name 'other_name'",
        "step 'form': form_schema is invalid:",
        "edge 'a' -> 'missing_target': unknown target step 'missing_target'",
        "edge 'missing_source' -> 'end': unknown source step 'missing_source'",
        "duplicate edge 'start' -> 'a'",
        "edge 'router' -> 'a': edges out of a gateway take no condition",
        "initial_step 'nowhere' is not a step",
        "terminal step 'ghost' is not a step",
        "terminal step 'end' has outgoing edges",
        "step 'orphan' is not terminal and has no outgoing edges",
        "step 'dead' is not terminal and has no outgoing edges",
        "gateway 'gw' routes to 'ghost_target' but has no edge to it",
    ]
    for message in expected:
        assert any(message in p for p in problems), f"{message!r} not in {problems}"
    assert len(problems) == len(expected)


def test_unreachable_steps_and_a_missing_initial_step_are_refused() -> None:
    assert _refused(
        name="w",
        steps={"a": Set("a"), "b": Set("b"), "island": Set("island"), "island2": Set("island2")},
        edges=[Edge("a", "b"), Edge("island", "island2")],
        initial_step="a",
        terminal_steps={"b", "island2"},
    ) == [
        "step 'island' is unreachable from initial step 'a'",
        "step 'island2' is unreachable from initial step 'a'",
    ]
    assert _refused(name="w", steps={"a": Set("a")}, terminal_steps={"a"}) == ["initial_step is not set"]


def test_empty_and_looping_definitions_are_refused() -> None:
    assert _refused(name="w") == [
        "workflow has no steps",
        "initial_step is not set",
        "terminal_steps is empty: the workflow could never complete",
    ]
    problems = _refused(
        name="w",
        steps={"a": Set("a"), "b": Set("b"), "end": Set("end")},
        edges=[Edge("a", "b"), Edge("b", "b"), Edge("b", "a")],
        initial_step="a",
        terminal_steps={"end"},
    )
    assert "edge 'b' -> 'b' loops onto itself" in problems
    assert "step 'end' is unreachable from initial step 'a'" in problems
    assert "no terminal step is reachable from the initial step" in problems


def test_a_loop_with_no_way_to_a_terminal_step_is_refused() -> None:
    # d and e pass the token back and forth: every step has an edge out, all are reachable,
    # a terminal step is reachable from the start, yet an instance in d never completes.
    assert _refused(
        name="w",
        steps=[Set("a"), Set("b"), Set("c"), Set("d"), Set("e")],
        edges=[Edge("a", "b"), Edge("b", "c"), Edge("b", "d"), Edge("d", "e"), Edge("e", "d")],
        initial_step="a",
        terminal_steps={"c"},
    ) == [
        "step 'd' cannot reach a terminal step: an instance there could never complete",
        "step 'e' cannot reach a terminal step: an instance there could never complete",
    ]


def test_a_loop_with_an_exit_is_accepted() -> None:
    definition = WorkflowDefinition(
        name="w",
        steps=[Set("a"), Set("b"), Set("c")],
        edges=[Edge("a", "b"), Edge("b", "a", condition="context.get('again')"), Edge("b", "c")],
        initial_step="a",
        terminal_steps={"c"},
    )
    assert definition.validate() == []


_GOOD: dict[str, Any] = {
    "name": "w",
    "steps": {"a": Set("a"), "b": Set("b")},
    "edges": [Edge("a", "b")],
    "initial_step": "a",
    "terminal_steps": {"b"},
}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("steps", None, "steps must be a dict of steps by name or a list of steps, got None"),
        ("edges", None, "edges must be a list of Edge, got None"),
        ("edges", [("a", "b")], "edges must be Edge objects, got ('a', 'b')"),
        ("initial_step", ["a"], "initial_step must be a step name, got ['a']"),
        ("terminal_steps", None, "terminal_steps must be a set of step names, got None"),
        # A string would be read as the set of its letters.
        ("terminal_steps", "b", "terminal_steps must be a set of step names, got 'b'"),
        ("routing", "bogus", "routing must be 'edges' or 'commands', got 'bogus'"),
        ("retry_policy", "x", "retry_policy must be a RetryPolicy, got 'x'"),
        ("trigger", "due", "trigger must be an EventTrigger, got 'due'"),
        ("metadata", [1], "metadata must be a dict, got list"),
    ],
)
def test_fields_of_the_wrong_type_are_refused_with_their_name(field: str, value: Any, message: str) -> None:
    assert _refused(**{**_GOOD, field: value}) == [message]


def test_two_steps_of_one_name_in_a_list_are_refused_not_dropped() -> None:
    assert _refused(**{**_GOOD, "steps": [Set("a"), Set("a"), Set("b")]}) == ["two steps are named 'a'"]


def test_a_version_that_is_not_a_string_is_an_identity_problem() -> None:
    definition = WorkflowDefinition(**{**_GOOD, "version": 1})
    assert definition.validate() == ["version 1 is not a semantic version (MAJOR.MINOR.PATCH)"]
    with pytest.raises(ValidationError):
        WorkflowRegistry().register_definition(definition)


def test_registering_something_else_than_a_definition_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="register_definition takes a WorkflowDefinition, got str"):
        WorkflowRegistry().register_definition("w")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Edge(["a"], "b"), "an edge's source must be a step name (a non-empty string), got ['a']"),
        (lambda: Edge("a", ""), "an edge's target must be a step name (a non-empty string), got ''"),
        (lambda: Edge("a", "b", condition=5), "edge 'a' -> 'b': a condition is an expression string or a callable"),
        (lambda: ExclusiveGateway("g", "b"), "gateway 'g': branches must be (condition, target) pairs, got 'b'"),
        (lambda: ParallelGateway("g", "bc"), "gateway 'g': targets must be a list of step names, got 'bc'"),
        (lambda: SequentialGroup("x"), "a step group holds steps, got 'x'"),  # type: ignore[arg-type]
    ],
)
def test_parts_of_the_wrong_type_are_refused_when_built(build: Any, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        build()
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("schema", ["x", [1]])
def test_a_form_schema_that_is_not_an_object_is_a_problem(schema: Any) -> None:
    step = BaseHumanStep("a", form_schema=schema)
    problems = _refused(**{**_GOOD, "steps": {"a": step, "b": Set("b")}})
    assert problems == [f"step 'a': form_schema must be a JSON Schema object, got {type(schema).__name__}"]


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (TimerStep("t"), "timer step 't': give exactly one of duration or until"),
        (TimerStep("t", duration=5, until="when"), "timer step 't': give exactly one of duration or until"),
        (Set("t"), None),
        (BaseHumanStep("t", form_schema={"type": "object", "required": "x"}), "step 't': form_schema is invalid"),
        (SequentialGroup(BaseHumanStep("inner"), name="t"), "group 't': 'inner' is not a machine step"),
        (SequentialGroup(name="t"), "group 't' has no steps"),
        (object(), "step 't' (object) does not implement the Step protocol"),
    ],
)
def test_step_problems_are_reported(step: Any, message: str | None) -> None:
    fields: dict[str, Any] = {"name": "w", "steps": {"t": step}, "initial_step": "t", "terminal_steps": {"t"}}
    if message is None:
        assert WorkflowDefinition(**fields).validate() == []
    else:
        problems = _refused(**fields)
        assert len(problems) == 1
        assert problems[0].startswith(message)


def test_non_positive_timeout_is_a_problem() -> None:
    step = Set("t")
    step.timeout = 0
    assert _refused(name="w", steps={"t": step}, initial_step="t", terminal_steps={"t"}) == [
        "step 't': timeout must be positive"
    ]


def test_name_and_version_are_checked_at_registration() -> None:
    definition = linear("", Set("a"), version="1.0")
    assert definition.validate() == [
        "workflow name is empty",
        "version '1.0' is not a semantic version (MAJOR.MINOR.PATCH)",
    ]
    registry = WorkflowRegistry()
    with pytest.raises(ValidationError) as info:
        registry.register_definition(definition)
    assert info.value.errors == definition.validate()
    assert str(info.value).startswith("workflow '' 1.0 is invalid: ")
    assert registry.list_definitions() == []


def test_a_definition_broken_after_construction_is_refused_at_registration() -> None:
    definition = linear("w", Set("a"), Set("b"))
    definition.edges.append(Edge("b", "ghost"))
    registry = WorkflowRegistry()
    with pytest.raises(ValidationError) as info:
        registry.register_definition(definition)
    assert info.value.errors == [
        "edge 'b' -> 'ghost': unknown target step 'ghost'",
        "terminal step 'b' has outgoing edges",
    ]
    assert not registry.has_definition("w")
    assert registry.list_definitions() == []


# -- declaring steps --------------------------------------------------------------------


def test_steps_declared_by_class_attributes() -> None:
    step = Submit()
    assert step.name == "submit"
    assert step.description == "Submit the request"
    assert step.step_type is StepType.MACHINE
    review = Review()
    assert (review.name, review.title, review.step_type) == ("review", "Review it", StepType.HUMAN)


def test_steps_declared_by_constructor_arguments() -> None:
    step = BaseMachineStep("compute", "Compute things", timeout=3.0)
    assert (step.name, step.description, step.timeout) == ("compute", "Compute things", 3.0)
    human = BaseHumanStep(
        "approve",
        title="Approve",
        form_schema={"type": "object"},
        assignee="ann",
        assignee_key="manager",
        assignee_group="managers",
        due_in=timedelta(hours=4),
    )
    assert human.name == "approve"
    assert human.title == "Approve"
    assert (human.assignee, human.assignee_key, human.assignee_group) == ("ann", "manager", "managers")
    assert human.due_in == timedelta(hours=4)
    # Constructor arguments win over class attributes.
    assert Submit("renamed").name == "renamed"


def test_human_step_title_defaults_from_name() -> None:
    assert BaseHumanStep("manager_approval").title == "Manager approval"


def test_subclass_with_own_init_keeps_its_class_attribute_name() -> None:
    class FetchUserData(BaseMachineStep):
        name = "fetch_user"
        description = "Retrieve user information from user service"

        def __init__(self, api_base_url: str, api_key: str) -> None:
            super().__init__()
            self.api_base_url = api_base_url
            self.api_key = api_key

    step = FetchUserData(api_base_url="https://api.example.com", api_key="k")
    assert step.name == "fetch_user"
    assert step.description == "Retrieve user information from user service"
    assert step.api_base_url == "https://api.example.com"
    definition = linear("fetch", step, Set("done"))
    assert definition.validate() == []
    assert definition.steps["fetch_user"] is step


def test_subclass_of_a_named_step_inherits_the_name() -> None:
    class Base(BaseMachineStep):
        name = "base_step"

    class Child(Base):
        pass

    child = Child()
    assert child.name == "base_step"
    assert _refused(name="w", steps={"other": child}, initial_step="other", terminal_steps={"other"}) == [
        "step key 'other' does not match the step's name 'base_step'"
    ]


def test_unnamed_step_takes_its_key_in_the_definition() -> None:
    class ComputeTotals(BaseMachineStep):
        pass

    step = ComputeTotals()
    assert step.name == "compute_totals"  # snake case of the class name until keyed
    definition = WorkflowDefinition(name="w", steps={"totals": step}, initial_step="totals", terminal_steps={"totals"})
    assert definition.validate() == []
    assert step.name == "totals"


def test_steps_may_be_given_as_a_list() -> None:
    definition = WorkflowDefinition(
        name="w",
        steps=[Submit(), Review()],  # type: ignore[arg-type]
        edges=[Edge("submit", "review")],
        initial_step="submit",
        terminal_steps={"review"},
    )
    assert list(definition.steps) == ["submit", "review"]
    assert definition.validate() == []


# -- edges and graphs -------------------------------------------------------------------


def test_edge_basics() -> None:
    plain = Edge("a", "b")
    assert (plain.source, plain.target, plain.condition, plain.label) == ("a", "b", None, None)
    assert repr(plain) == "Edge('a', 'b')"
    conditional = Edge("a", "b", condition="context.get('x') == 1")
    assert conditional.label == "context.get('x') == 1"
    assert repr(conditional) == "Edge('a', 'b', condition=\"context.get('x') == 1\")"
    assert Edge("a", "b") == Edge("a", "b")
    assert Edge("a", "b") != Edge("a", "c")
    assert Edge("a", "b", "context.get('x') == 1") != Edge("a", "b")

    def is_big(context: WorkflowContext) -> bool:
        return bool(context.get("n", 0) > 10)

    by_callable = Edge("a", "b", condition=is_big)
    assert by_callable.label == "is_big"
    assert by_callable.matches(WorkflowContext(data={"n": 11})) is True
    assert by_callable.matches(WorkflowContext(data={"n": 1})) is False
    assert plain.matches(WorkflowContext()) is True


def test_graph_joins_and_reachability() -> None:
    definition = WorkflowDefinition(
        name="diamond",
        steps={n: Set(n) for n in ("start", "left", "right", "join")},
        edges=[Edge("start", "left"), Edge("start", "right"), Edge("left", "join"), Edge("right", "join")],
        initial_step="start",
        terminal_steps={"join"},
    )
    graph = definition.get_graph()
    assert graph.joins == frozenset({"join"})
    assert sorted(graph.successors("start")) == ["left", "right"]
    assert graph.can_reach("start", "join")
    assert not graph.can_reach("join", "start")
    assert graph.reach["left"] == frozenset({"join"})
    assert graph.nodes == frozenset({"start", "left", "right", "join"})


def test_describe_gives_a_json_description() -> None:
    definition = WorkflowDefinition(
        name="w",
        version="2.1.0",
        description="demo",
        steps={
            "submit": Submit(),
            "gate": ParallelGateway("gate", ["review", "wait"]),
            "review": Review(),
            "wait": TimerStep("wait", duration=5),
            "hook": WebhookStep("hook"),
        },
        edges=[
            Edge("submit", "gate"),
            Edge("gate", "review"),
            Edge("gate", "wait"),
            Edge("review", "hook", condition="context.get('ok')"),
            Edge("wait", "hook"),
        ],
        initial_step="submit",
        terminal_steps={"hook"},
    )
    assert definition.validate() == []
    described = definition.describe()
    assert described["name"] == "w"
    assert described["version"] == "2.1.0"
    assert described["initial_step"] == "submit"
    assert described["terminal_steps"] == ["hook"]
    assert [(s["name"], s["type"]) for s in described["steps"]] == [
        ("submit", "machine"),
        ("gate", "gateway"),
        ("review", "human"),
        ("wait", "timer"),
        ("hook", "webhook"),
    ]
    assert {"source": "review", "target": "hook", "condition": "context.get('ok')"} in described["edges"]
