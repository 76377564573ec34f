"""Workflow definitions: steps, edges, and the graph the engine walks."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from flowstar.model.conditions import Condition, ConditionEvaluationError
from flowstar.model.enums import StepType
from flowstar.model.errors import ValidationError
from flowstar.model.gateways import BaseGateway
from flowstar.model.retry import RetryPolicy
from flowstar.model.semver import is_semver
from flowstar.model.steps import (
    BaseStep,
    Step,
    adapt_step,
    check_against_schema,
    foreign_step_problem,
    schema_problem,
    schema_validator,
)

if TYPE_CHECKING:
    from flowstar.model.context import WorkflowContext

__all__ = ["Edge", "EventTrigger", "Routing", "WorkflowDefinition", "WorkflowGraph"]

# "edges": steps go on along their edges (graph workflows); "commands": each step returns
# what happens next (``flowstar.model.commands``; code-first workflows), edges only draw.
Routing = Literal["edges", "commands"]


@dataclass(frozen=True, slots=True)
class EventTrigger:
    """Start an instance when ``event`` is reported, ``offset_seconds`` after the event's time.

    A negative offset starts it before the event's time (a reminder an hour before an
    appointment); a start time already past starts at once.
    """

    event: str
    offset_seconds: float = 0.0


class Edge:
    """A transition from ``source`` to ``target``, optionally guarded by a condition.

    ``condition`` is a safe expression string (compiled now: an unsafe or malformed one
    raises ``UnsafeExpressionError`` here) or a callable taking the ``WorkflowContext``.

    Raises:
        ValidationError: ``source`` or ``target`` is not a non-empty string, or
            ``condition`` is neither a string, a callable nor None.
    """

    __slots__ = ("_compiled", "condition", "source", "target")

    def __init__(
        self,
        source: str,
        target: str,
        condition: str | Callable[[WorkflowContext], bool] | None = None,
    ) -> None:
        for role, name in (("source", source), ("target", target)):
            if not isinstance(name, str) or not name:
                raise ValidationError(f"an edge's {role} must be a step name (a non-empty string), got {name!r}")
        if condition is not None and not isinstance(condition, str) and not callable(condition):
            raise ValidationError(
                f"edge {source!r} -> {target!r}: a condition is an expression string or a callable, "
                f"got {type(condition).__name__}"
            )
        self.source = source
        self.target = target
        self.condition = condition
        self._compiled: Condition | None = Condition(condition) if isinstance(condition, str) else None

    def matches(self, context: WorkflowContext) -> bool:
        """Whether this edge is taken for ``context``."""
        if self.condition is None:
            return True
        if self._compiled is not None:
            return self._compiled(context.data)
        try:
            return bool(self.condition(context))  # type: ignore[operator]
        except Exception as exc:
            # Raised as a condition error so the engine fails the workflow instead of
            # leaving the activation uncommitted.
            raise ConditionEvaluationError(f"condition {self.label!r} failed: {type(exc).__name__}: {exc}") from exc

    @property
    def label(self) -> str | None:
        """Text describing the condition, for diagrams and stored graphs."""
        if self.condition is None:
            return None
        if isinstance(self.condition, str):
            return self.condition
        return getattr(self.condition, "__name__", "condition")

    def __repr__(self) -> str:
        cond = f", condition={self.label!r}" if self.condition is not None else ""
        return f"Edge({self.source!r}, {self.target!r}{cond})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Edge):
            return NotImplemented
        return (self.source, self.target, self.condition) == (other.source, other.target, other.condition)

    def __hash__(self) -> int:
        return hash((self.source, self.target))


@dataclass(frozen=True)
class WorkflowGraph:
    """Adjacency of a definition, with the reachability the join logic needs."""

    nodes: frozenset[str]
    outgoing: Mapping[str, tuple[Edge, ...]]
    incoming: Mapping[str, tuple[Edge, ...]]
    step_types: Mapping[str, StepType] = field(default_factory=dict)

    @cached_property
    def joins(self) -> frozenset[str]:
        """Steps with more than one incoming edge: they wait for every live branch."""
        return frozenset(n for n, edges in self.incoming.items() if len({e.source for e in edges}) > 1)

    @cached_property
    def reach(self) -> Mapping[str, frozenset[str]]:
        """For each step, the steps reachable from it by one or more edges."""
        result: dict[str, frozenset[str]] = {}
        for start in self.nodes:
            seen: set[str] = set()
            queue = deque(e.target for e in self.outgoing.get(start, ()))
            while queue:
                node = queue.popleft()
                if node in seen:
                    continue
                seen.add(node)
                queue.extend(e.target for e in self.outgoing.get(node, ()))
            result[start] = frozenset(seen)
        return result

    @cached_property
    def fixed_targets(self) -> Mapping[str, tuple[str, ...]]:
        """For each step whose outgoing edges have no condition, their targets in order.

        Routing out of such a step needs no context to evaluate conditions against.
        """
        return {
            name: tuple(e.target for e in edges)
            for name, edges in self.outgoing.items()
            if all(e.condition is None for e in edges)
        }

    def successors(self, step: str) -> list[str]:
        """Targets of the edges out of ``step``."""
        return [e.target for e in self.outgoing.get(step, ())]

    def can_reach(self, source: str, target: str) -> bool:
        """Whether a token at ``source`` may still arrive at ``target``."""
        return target in self.reach.get(source, frozenset())


@dataclass(eq=False)
class WorkflowDefinition:
    """Declarative workflow structure defining steps and their connections.

    ``steps`` maps names to steps (a list of steps is accepted too, keyed by their names).
    A step may be any object with the ``Step`` protocol's members (at least ``name`` and an
    async ``execute``): it is wrapped in a ``ProtocolStep``, a machine step unless its
    ``step_type`` says ``human``.

    A definition is checked when it is built, for its structure: every step is a step whose
    own settings are valid (a timer's duration, a form schema, a group's members, a
    positive timeout), step keys match step names, every edge joins two known steps (no
    duplicates, no self-loops, no conditions out of a gateway, an edge to every target a
    gateway declares), ``initial_step`` is a step, ``terminal_steps`` is non-empty, names
    steps and has no outgoing edges, every step is reachable from the initial step, and
    every non-terminal step has a way out (a path to a terminal step).  Fields of the wrong
    type (``edges=None``, a string for ``terminal_steps``) are refused first.  Its identity
    (a non-empty ``name`` and a semantic ``version``) is checked when it is registered,
    where it is used.

    Raises:
        ValidationError: the definition has structural problems; ``.errors`` lists them all.
            ``validate()`` returns every problem, structural and of identity (for a
            definition changed after it was built); ``WorkflowRegistry.register_definition``
            raises ``ValidationError`` when that list is not empty.
    """

    name: str
    version: str = "1.0.0"
    description: str = ""
    steps: dict[str, Step] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    initial_step: str = ""
    terminal_steps: set[str] = field(default_factory=set)
    retry_policy: RetryPolicy | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # JSON Schema of the data an instance starts with (the inbox's start form, and checked
    # by ``start_workflow``); None accepts any JSON object.
    input_schema: Mapping[str, Any] | None = None
    routing: Routing = "edges"
    # Reported events that start instances of this definition (``Engine.report_event``).
    trigger: EventTrigger | None = None

    def __post_init__(self) -> None:
        shape = _shape_problems(self)
        if shape:
            raise ValidationError(f"workflow {self.name!r} {self.version} is invalid: " + "; ".join(shape), shape)
        steps: Any = self.steps
        self._name_problems: list[str] = []
        if not isinstance(steps, Mapping):
            steps = self._keyed(steps)
        self.steps = {key: self._named(key, step) for key, step in steps.items()}
        self.edges = list(self.edges)
        self.terminal_steps = set(self.terminal_steps)
        problems = self.structural_problems()
        # Checking built the cached graph: drop it, so that a definition completed after
        # construction (and validated again) is walked as it ends up.
        for cached in ("_graph", "step_types"):
            self.__dict__.pop(cached, None)
        if problems:
            raise ValidationError(f"workflow {self.name!r} {self.version} is invalid: " + "; ".join(problems), problems)

    def _keyed(self, steps: Iterable[Any]) -> dict[str, Any]:
        """A list of steps keyed by their names; a name given twice is a problem, not a loss."""
        keyed: dict[str, Any] = {}
        for step in steps:
            name = getattr(step, "name", "")
            if name in keyed:
                self._name_problems.append(f"two steps are named {name!r}")
            keyed[name] = step
        return keyed

    def _named(self, key: str, step: Any) -> Any:
        """``step`` under ``key``: named after it unless it has a name of its own that differs."""
        current = getattr(step, "name", "")
        if not isinstance(step, BaseStep):
            if isinstance(current, str) and current and current != key:
                self._name_problems.append(f"step key {key!r} does not match the step's name {current!r}")
            return adapt_step(step, key)
        if not current or (not getattr(step, "name_explicit", True) and current != key):
            step.name = key
        elif current != key:
            self._name_problems.append(f"step key {key!r} does not match the step's name {current!r}")
        return step

    def validate_input(self, data: Mapping[str, Any]) -> None:
        """Check a new instance's data against ``input_schema`` (nothing to check without one).

        Raises:
            FormValidationError: the messages of each failing field, by JSON pointer path.
        """
        if self.input_schema is None:
            return
        validator = self.__dict__.get("_input_validator")
        if validator is None:
            validator = self.__dict__["_input_validator"] = schema_validator(self.input_schema)
        check_against_schema(validator, data)

    def get_graph(self) -> WorkflowGraph:
        """The graph representation of the workflow (cached; don't mutate after use)."""
        return self._graph

    @cached_property
    def step_types(self) -> Mapping[str, StepType]:
        """Each step's type, by step name (cached; don't mutate after use)."""
        return self._graph.step_types

    @cached_property
    def _graph(self) -> WorkflowGraph:
        outgoing: dict[str, list[Edge]] = {name: [] for name in self.steps}
        incoming: dict[str, list[Edge]] = {name: [] for name in self.steps}
        for edge in self.edges:
            outgoing.setdefault(edge.source, []).append(edge)
            incoming.setdefault(edge.target, []).append(edge)
        return WorkflowGraph(
            nodes=frozenset(self.steps),
            step_types={name: getattr(step, "step_type", StepType.MACHINE) for name, step in self.steps.items()},
            outgoing={k: tuple(v) for k, v in outgoing.items()},
            incoming={k: tuple(v) for k, v in incoming.items()},
        )

    def validate(self) -> list[str]:
        """Return every problem found, structural and of identity (empty means valid)."""
        return self.identity_problems() + self.structural_problems()

    def identity_problems(self) -> list[str]:
        """Problems of the name and version the definition is registered under."""
        problems: list[str] = []
        if not isinstance(self.name, str):
            problems.append(f"workflow name must be a string, got {self.name!r}")
        elif not self.name:
            problems.append("workflow name is empty")
        if not is_semver(self.version):
            problems.append(f"version {self.version!r} is not a semantic version (MAJOR.MINOR.PATCH)")
        return problems

    def structural_problems(self) -> list[str]:
        """Problems of the steps and edges (the ones construction refuses)."""
        problems: list[str] = list(self._name_problems)
        if not self.steps:
            problems.append("workflow has no steps")
        for key, step in self.steps.items():
            problems.extend(_step_problems(key, step))
        problems.extend(self._edge_problems())
        if (problem := schema_problem(self.input_schema, "input_schema")) is not None:
            problems.append(problem)
        if not self.initial_step:
            problems.append("initial_step is not set")
        elif self.initial_step not in self.steps:
            problems.append(f"initial_step {self.initial_step!r} is not a step")
        if self.routing == "commands":
            # Steps say where to go when they run: no terminal steps, no edges needed.
            return problems
        if not self.terminal_steps:
            problems.append("terminal_steps is empty: the workflow could never complete")
        for terminal in sorted(self.terminal_steps):
            if terminal not in self.steps:
                problems.append(f"terminal step {terminal!r} is not a step")
        problems.extend(self._graph_problems())
        return problems

    def _edge_problems(self) -> Iterable[str]:
        seen: set[tuple[str, str]] = set()
        for edge in self.edges:
            if edge.source not in self.steps:
                yield f"edge {edge.source!r} -> {edge.target!r}: unknown source step {edge.source!r}"
            if edge.target not in self.steps:
                yield f"edge {edge.source!r} -> {edge.target!r}: unknown target step {edge.target!r}"
            if (edge.source, edge.target) in seen:
                yield f"duplicate edge {edge.source!r} -> {edge.target!r}"
            seen.add((edge.source, edge.target))
            if edge.source == edge.target and self.routing == "edges":
                yield f"edge {edge.source!r} -> {edge.target!r} loops onto itself"
            source = self.steps.get(edge.source)
            if isinstance(source, BaseGateway) and edge.condition is not None:
                yield (
                    f"edge {edge.source!r} -> {edge.target!r}: edges out of a gateway take no "
                    "condition (the gateway's evaluate() chooses)"
                )

    def _graph_problems(self) -> Iterable[str]:
        graph = self.get_graph()
        for terminal in sorted(self.terminal_steps & set(self.steps)):
            if graph.outgoing.get(terminal):
                yield f"terminal step {terminal!r} has outgoing edges"
        for name, step in self.steps.items():
            if name not in self.terminal_steps and not graph.outgoing.get(name):
                yield f"step {name!r} is not terminal and has no outgoing edges"
            on_timeout = getattr(step, "on_timeout", None)
            if isinstance(on_timeout, str) and on_timeout not in graph.successors(name):
                yield f"step {name!r} times out to {on_timeout!r} but has no edge to it"
            if isinstance(step, BaseGateway):
                declared = step.declared_targets()
                edge_targets = set(graph.successors(name))
                for target in sorted((declared or set()) - edge_targets):
                    yield f"gateway {name!r} routes to {target!r} but has no edge to it"
        if self.initial_step in self.steps:
            reachable = graph.reach[self.initial_step] | {self.initial_step}
            for name in sorted(set(self.steps) - reachable):
                yield f"step {name!r} is unreachable from initial step {self.initial_step!r}"
            if self.terminal_steps and not (reachable & self.terminal_steps):
                yield "no terminal step is reachable from the initial step"
                return
        for name in sorted(set(self.steps) - self.terminal_steps):
            if graph.outgoing.get(name) and not (graph.reach[name] & self.terminal_steps):
                yield f"step {name!r} cannot reach a terminal step: an instance there could never complete"

    def to_mermaid(self, current_step: str | None = None) -> str:
        """A MermaidJS flowchart of the workflow, optionally highlighting ``current_step``."""
        from flowstar.model.mermaid import render_mermaid

        return render_mermaid(self, current_step)

    def describe(self) -> dict[str, Any]:
        """A JSON description (steps, edges, conditions as text) for storage and APIs."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "initial_step": self.initial_step,
            "terminal_steps": sorted(self.terminal_steps),
            "steps": [
                {
                    "name": name,
                    "type": str(getattr(step, "step_type", StepType.MACHINE).value),
                    "description": getattr(step, "description", ""),
                }
                for name, step in self.steps.items()
            ],
            "edges": [{"source": e.source, "target": e.target, "condition": e.label} for e in self.edges],
        }


def _shape_problems(definition: WorkflowDefinition) -> list[str]:
    """Fields of the wrong type: the structural checks could not even read them."""
    problems: list[str] = []
    if not isinstance(definition.steps, Mapping) and not _is_collection(definition.steps):
        problems.append(f"steps must be a dict of steps by name or a list of steps, got {definition.steps!r}")
    if not _is_collection(definition.edges):
        problems.append(f"edges must be a list of Edge, got {definition.edges!r}")
    else:
        problems.extend(
            f"edges must be Edge objects, got {edge!r}" for edge in definition.edges if not isinstance(edge, Edge)
        )
    if not isinstance(definition.initial_step, str):
        problems.append(f"initial_step must be a step name, got {definition.initial_step!r}")
    terminals = definition.terminal_steps
    if not _is_collection(terminals) or not all(isinstance(t, str) for t in terminals):
        problems.append(f"terminal_steps must be a set of step names, got {terminals!r}")
    if definition.routing not in ("edges", "commands"):
        problems.append(f"routing must be 'edges' or 'commands', got {definition.routing!r}")
    if definition.retry_policy is not None and not isinstance(definition.retry_policy, RetryPolicy):
        problems.append(f"retry_policy must be a RetryPolicy, got {definition.retry_policy!r}")
    if definition.trigger is not None and not isinstance(definition.trigger, EventTrigger):
        problems.append(f"trigger must be an EventTrigger, got {definition.trigger!r}")
    if not isinstance(definition.metadata, Mapping):
        problems.append(f"metadata must be a dict, got {type(definition.metadata).__name__}")
    return problems


def _is_collection(value: object) -> bool:
    """A list, tuple, set or other iterable of items (not a string, which iterates letters)."""
    return isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping)


def _step_problems(key: str, step: Any) -> list[str]:
    if not isinstance(step, BaseStep):  # what adapt_step could not wrap
        return [foreign_step_problem(key, step)]
    return step.problems()
