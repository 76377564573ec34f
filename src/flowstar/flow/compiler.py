"""``@workflow``, ``@event_workflow`` and ``@step``: compiling a class into a definition.

The class's ``@step`` methods, in the order of the class body, become the steps of an
ordinary ``WorkflowDefinition`` with ``routing="commands"``: each step returns what happens
next, and the one runtime (every engine, the REST API, the inbox) runs it like any other
definition.  The edges are only the diagram, read from each method's source.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from flowstar.flow.analysis import StepFlow, read_step
from flowstar.flow.commands import Duration, seconds_of
from flowstar.flow.context import ContextModel
from flowstar.flow.retry import Retry
from flowstar.flow.steps import FlowHumanStep, FlowMachineStep, MethodCall, form_schema_of, input_parameters
from flowstar.model.definition import Edge, EventTrigger, WorkflowDefinition
from flowstar.model.errors import ValidationError
from flowstar.model.registry import WorkflowRegistry, default_registry
from flowstar.model.steps import BaseStep

__all__ = ["CompiledWorkflow", "StepOptions", "compiled_workflow", "event_workflow", "step", "workflow"]

C = TypeVar("C", bound=type)
F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS = "__flow_step__"


@dataclass(frozen=True)
class StepOptions:
    """What ``@step(...)`` said about a method."""

    start: bool = False
    retry: Retry | None = None
    title: str | None = None
    timeout: Duration | None = None
    form: Any = None
    assignee: str | None = None
    assignee_group: str | None = None
    candidate_users: Sequence[str] | None = None
    candidate_groups: Sequence[str] | None = None
    action: str | None = None
    description: str | None = None


@overload
def step(func: F, /) -> F: ...


@overload
def step(
    *,
    start: bool = False,
    retry: Retry | None = None,
    title: str | None = None,
    timeout: Duration | None = None,
    form: Any = None,
    assignee: str | None = None,
    assignee_group: str | None = None,
    candidate_users: Sequence[str] | None = None,
    candidate_groups: Sequence[str] | None = None,
    action: str | None = None,
    description: str | None = None,
) -> Callable[[F], F]: ...


def step(
    func: Callable[..., Any] | None = None,
    /,
    *,
    start: bool = False,
    retry: Retry | None = None,
    title: str | None = None,
    timeout: Duration | None = None,
    form: Any = None,
    assignee: str | None = None,
    assignee_group: str | None = None,
    candidate_users: Sequence[str] | None = None,
    candidate_groups: Sequence[str] | None = None,
    action: str | None = None,
    description: str | None = None,
) -> Any:
    """Mark a method of a ``@workflow`` class as a step (``@step`` or ``@step(...)``).

    Args:
        start: the first step (default: the first step of the class body).
        retry: this step's retry policy (default: the workflow's ``default_retry``).
        title: the task title of a step with inputs; the description of other steps.
        timeout: how long one run of the method may take (a ``timedelta`` or seconds).
        form: the type (msgspec Struct, dataclass or pydantic model) whose JSON Schema is
            the task's form; makes the step a human step even without parameters.
        assignee: the user the step's task is assigned to.
        assignee_group: the group whose members may complete it.
        candidate_users: users who may claim it.
        candidate_groups: groups whose members may claim it.
        action: the name the step is offered under as an action (completing its task).
        description: the step's description (default: the docstring's first line).
    """
    options = StepOptions(
        start=start,
        retry=retry,
        title=title,
        timeout=timeout,
        form=form,
        assignee=assignee,
        assignee_group=assignee_group,
        candidate_users=candidate_users,
        candidate_groups=candidate_groups,
        action=action,
        description=description,
    )
    if timeout is not None:
        seconds_of(timeout, "step timeout")  # refuse a bad timeout where it is written
    _check_retry(retry, "@step(retry=...)")

    def mark(method: F) -> F:
        if not callable(method):
            raise ValidationError(f"@step decorates a method, not {method!r}")
        setattr(method, _OPTIONS, options)
        return method

    return mark(func) if func is not None else mark


@dataclass(frozen=True)
class CompiledWorkflow:
    """A compiled ``@workflow`` class: the class, its context model and its definition."""

    workflow_class: type
    model: ContextModel
    definition: WorkflowDefinition


def compiled_workflow(definition: WorkflowDefinition) -> CompiledWorkflow | None:
    """The compiled class behind ``definition`` (None for a graph definition)."""
    for one in definition.steps.values():
        call = getattr(one, "call", None)
        if isinstance(call, MethodCall):
            compiled = getattr(call.workflow_class, "__flow_compiled__", None)
            if isinstance(compiled, CompiledWorkflow):
                return compiled
    return None


def _check_retry(retry: object, what: str) -> None:
    if retry is not None and not isinstance(retry, Retry):
        raise ValidationError(f"{what} takes a Retry(...), got {retry!r}")


def _check_class(cls: object, what: str) -> None:
    if not isinstance(cls, type):
        raise ValidationError(f"{what} decorates a class with @step methods, not {cls!r}")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _methods(cls: type) -> dict[str, tuple[Callable[..., Any], StepOptions]]:
    found: dict[str, tuple[Callable[..., Any], StepOptions]] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            options = getattr(value, _OPTIONS, None)
            if isinstance(options, StepOptions) and callable(value):
                found[name] = (value, options)
            elif name in found:  # overridden by something that is not a step
                del found[name]
    return found


def _first_doc_line(func: Callable[..., Any]) -> str:
    doc = (func.__doc__ or "").strip()
    return doc.splitlines()[0].strip() if doc else ""


class _Compiler:
    def __init__(
        self,
        cls: type,
        name: str,
        version: str,
        default_retry: Retry | None,
        trigger: EventTrigger | None,
    ) -> None:
        self.cls = cls
        self.name = name
        self.version = version
        self.default_retry = default_retry
        self.trigger = trigger
        self.problems: list[str] = []
        factory = getattr(cls, "create_context", None)
        self.model = ContextModel(getattr(cls, "Context", None), factory if callable(factory) else None, name)

    def compile(self) -> CompiledWorkflow:
        methods = _methods(self.cls)
        if not methods:
            raise ValidationError(f"workflow {self.name!r} ({self.cls.__qualname__}) has no @step methods")
        order = list(methods)
        starts = [n for n, (_, options) in methods.items() if options.start]
        if len(starts) > 1:
            self.problems.append(f"more than one start step: {', '.join(starts)}")
        initial = starts[0] if starts else order[0]
        steps: dict[str, BaseStep] = {}
        edges: list[Edge] = []
        ends: set[str] = set()
        for index, step_name in enumerate(order):
            func, options = methods[step_name]
            following = order[index + 1] if index + 1 < len(order) else None
            flow = read_step(func)
            call = MethodCall(
                self.cls,
                func,
                self.model,
                following,
                builds_event_context=self.trigger is not None and step_name == initial,
            )
            steps[step_name] = self._step(step_name, func, options, call)
            edges.extend(self._edges(step_name, flow, following, set(order)))
            if flow.ends and not flow.targets and not flow.loops and not flow.default_next:
                ends.add(step_name)
        if self.problems:
            raise ValidationError(
                f"workflow {self.name!r} ({self.cls.__qualname__}) is invalid: " + "; ".join(self.problems),
                self.problems,
            )
        definition = WorkflowDefinition(
            name=self.name,
            version=self.version,
            description=_first_doc_line(self.cls),
            steps=dict(steps),
            edges=edges,
            initial_step=initial,
            terminal_steps=ends,
            retry_policy=self.default_retry.policy() if self.default_retry is not None else None,
            metadata=self._metadata(steps),
            input_schema=None if self.trigger is not None else self.model.schema(),
            routing="commands",
            trigger=self.trigger,
        )
        return CompiledWorkflow(self.cls, self.model, definition)

    def _metadata(self, steps: Mapping[str, BaseStep]) -> dict[str, Any]:
        actions = {s.action: n for n, s in steps.items() if isinstance(s, FlowHumanStep) and s.action}
        return {
            "front_end": "code",
            "class": f"{self.cls.__module__}.{self.cls.__qualname__}",
            "actions": actions,
        }

    def _step(self, step_name: str, func: Callable[..., Any], options: StepOptions, call: MethodCall) -> BaseStep:
        try:
            inputs = input_parameters(func)
        except ValidationError as exc:
            self.problems.append(str(exc))
            inputs = {}
        call.inputs = inputs
        common: dict[str, Any] = {
            "description": options.description or _first_doc_line(func) or (options.title or ""),
            "retry_policy": options.retry.policy() if options.retry is not None else None,
            "timeout": seconds_of(options.timeout, "step timeout") if options.timeout is not None else None,
        }
        if not inputs and options.form is None:
            if options.action or options.assignee or options.assignee_group:
                self.problems.append(
                    f"step {step_name!r} takes no input: action, assignee and assignee_group need a step with "
                    "parameters or a form="
                )
            return FlowMachineStep(step_name, call, **common)
        try:
            schema = form_schema_of(step_name, inputs, options.form)
        except ValidationError as exc:
            self.problems.append(str(exc))
            schema = None
        task: dict[str, Any] = {
            "title": options.title,
            "form_schema": schema,
            "assignee": options.assignee,
            "assignee_group": options.assignee_group,
            "candidate_users": options.candidate_users,
            "candidate_groups": options.candidate_groups,
        }
        return FlowHumanStep(step_name, call, action=options.action, **common, **task)

    def _edges(self, step_name: str, flow: StepFlow, following: str | None, known: set[str]) -> list[Edge]:
        for target in flow.targets:
            if target not in known:
                self.problems.append(f"step {step_name!r} goes to {target!r}, which is not a step")
        if flow.default_next and following is None:
            self.problems.append(f"step {step_name!r} waits without next= but no step is declared after it")
        targets = [t for t in flow.targets if t in known]
        if flow.loops:
            targets.append(step_name)
        if flow.default_next and following is not None:
            targets.append(following)
        unique = list(dict.fromkeys(targets))
        return [Edge(step_name, target) for target in unique]


def _register(cls: C, compiled: CompiledWorkflow, registry: WorkflowRegistry | None) -> C:
    target = registry if registry is not None else default_registry()
    target.register_definition(compiled.definition)
    cls.__flow_compiled__ = compiled  # type: ignore[attr-defined]
    cls.definition = compiled.definition  # type: ignore[attr-defined]
    cls.workflow_name = compiled.definition.name  # type: ignore[attr-defined]
    return cls


def workflow(
    name: str,
    version: str = "1.0.0",
    default_retry: Retry | None = None,
    *,
    registry: WorkflowRegistry | None = None,
) -> Callable[[C], C]:
    """Compile the decorated class into a workflow definition and register it.

    Args:
        name: the workflow's name (what ``engine.start`` takes).
        version: its semantic version; instances keep the version they started on.
        default_retry: the retry policy of steps without their own.
        registry: where to register it (default: ``flowstar.default_registry()``).

    The class keeps the result as ``.definition``.

    Raises:
        ValidationError: the class has no steps, more than one start step, a wait with no
            step after it and no ``next=``, a target that is no step, or a bad option.
    """

    _check_retry(default_retry, "workflow(default_retry=...)")

    def decorate(cls: C) -> C:
        _check_class(cls, f"@workflow({name!r})")
        compiled = _Compiler(cls, name, version, default_retry, None).compile()
        return _register(cls, compiled, registry)

    return decorate


def event_workflow(
    event_name: str,
    offset_minutes: float = 0,
    *,
    name: str | None = None,
    version: str = "1.0.0",
    default_retry: Retry | None = None,
    registry: WorkflowRegistry | None = None,
) -> Callable[[C], C]:
    """Like ``workflow``, for a workflow that ``engine.report_event(event_name, ...)`` starts.

    An instance starts at the event's time plus ``offset_minutes`` (negative: before it; a
    time already past starts at once).  Its context comes from ``create_context(event=...)``
    (an ``EventInfo``: ``id``, ``name``, ``entity_id``/``entity``, ``at``, ``payload``), or,
    without one, from the ``Context``'s fields found in the payload and ``entity_id``.

    Args:
        event_name: the event that starts it.
        offset_minutes: minutes after (or, negative, before) the event's time.
        name: the workflow's name (default: the class name in snake case).
    """
    if not isinstance(event_name, str) or not event_name:
        raise ValidationError("event_workflow needs an event name")

    _check_retry(default_retry, "event_workflow(default_retry=...)")

    def decorate(cls: C) -> C:
        _check_class(cls, f"@event_workflow({event_name!r})")
        trigger = EventTrigger(event=event_name, offset_seconds=float(offset_minutes) * 60.0)
        compiled = _Compiler(cls, name or _snake(cls.__name__), version, default_retry, trigger).compile()
        return _register(cls, compiled, registry)

    return decorate
