"""The steps a ``@workflow`` class compiles to: one per ``@step`` method.

A method without parameters (besides ``self``) becomes a machine step; one with parameters
(or a ``form=``) a human step whose task collects them and whose ``execute`` runs when the
task is completed (``runs_on_completion``).  Either way ``execute`` builds the typed context
from the data, calls the method (a ``def`` in a worker thread, an ``async def`` on the
loop), writes the context's changes back and returns the method's command, its wait
completed with the default next step.
"""

from __future__ import annotations

import asyncio
import inspect
import typing
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import msgspec

from flowstar.flow.context import EVENT_KEY, ContextModel, EventInfo, StepScope, enter, leave
from flowstar.model.commands import COMMAND_TYPES, Complete, Fail, Goto, Sleep, StartChild, Wait
from flowstar.model.errors import ValidationError
from flowstar.model.steps import BaseHumanStep, BaseMachineStep

if TYPE_CHECKING:
    from flowstar.model.context import WorkflowContext
    from flowstar.model.retry import RetryPolicy

__all__ = ["FlowHumanStep", "FlowMachineStep", "MethodCall", "form_schema_of", "input_parameters"]

_NO_DEFAULT: Any = inspect.Parameter.empty
_NO_INPUTS: Mapping[str, Any] = MappingProxyType({})
# The commands a step's return value is as it is (a wait or a child start gets its default
# next step): asked by exact type first, as most steps return one of these.
_FINAL_COMMANDS = frozenset({Goto, Complete, Fail, Sleep})


@dataclass
class MethodCall:
    """How a compiled step calls its method.

    Attributes:
        workflow_class: the ``@workflow`` class (instantiated for every run of the step).
        method: the step's function.
        model: the workflow's context model.
        default_next: the step declared after this one (a wait's default ``next``).
        builds_event_context: the first step of an event workflow: it turns the ``_event``
            record into the context before the method runs.
        inputs: the method's parameters besides ``self``, with their types and defaults.
    """

    workflow_class: type
    method: Callable[..., Any]
    model: ContextModel
    default_next: str | None
    builds_event_context: bool = False
    inputs: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    is_async: bool = field(init=False)

    def __post_init__(self) -> None:
        # Asked once: inspect.iscoroutinefunction costs more than a plain step's body.
        self.is_async = inspect.iscoroutinefunction(self.method)

    async def run(self, step_name: str, context: WorkflowContext) -> Any:
        """Run the method for ``context`` and return its (completed) command."""
        if self.builds_event_context:
            self._event_context(context)
        data = context.data
        typed = self.model.bind(context)
        kwargs = self._kwargs(step_name, data) if self.inputs else _NO_INPUTS
        bound = getattr(self.workflow_class(), self.method.__name__)
        token = enter(StepScope(typed, context))
        try:
            if self.is_async:
                result = await bound(**kwargs)
            else:
                # to_thread copies the contextvars: get_context() works in the thread too.
                result = await asyncio.to_thread(bound, **kwargs)
        finally:
            leave(token)
        changes = self.model.changes(data, typed)
        if changes:
            context.update(changes)
        return self._command(step_name, result)

    def _event_context(self, context: WorkflowContext) -> None:
        record = context.data.get(EVENT_KEY)
        if not isinstance(record, Mapping) or record.get("context_created"):
            return
        created = self.model.from_event(EventInfo.from_data(record))
        context.update({**created, EVENT_KEY: {**record, "context_created": True}})

    def _kwargs(self, step_name: str, data: Mapping[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        missing = []
        for name, (annotation, default) in self.inputs.items():
            if name in data:
                kwargs[name] = _converted(step_name, name, data[name], annotation)
            elif default is not _NO_DEFAULT:
                kwargs[name] = default
            else:
                missing.append(name)
        if missing:
            raise ValidationError(f"step {step_name!r} needs input {', '.join(map(repr, missing))}, not in the data")
        return kwargs

    def _command(self, step_name: str, result: Any) -> Any:
        if type(result) in _FINAL_COMMANDS:
            return result
        if result is None:
            return Fail(f"step {step_name!r} returned no command: return goto(), complete(), fail(), sleep() or a wait")
        if not isinstance(result, COMMAND_TYPES):
            return Fail(f"step {step_name!r} returned {type(result).__name__}, not a command (goto, complete, ...)")
        if isinstance(result, Wait | StartChild):
            return self._with_next(step_name, result)
        return result

    def _with_next(self, step_name: str, result: Wait | StartChild) -> Wait | StartChild | Fail:
        """A wait or child start completed with its default next step (the one declared after)."""
        following = result.next or self.default_next
        if following is None:
            what = "waits" if isinstance(result, Wait) else "starts a child"
            return Fail(f"step {step_name!r} {what} but no step follows it: give it a next=")
        if isinstance(result, StartChild):
            return msgspec.structs.replace(result, next=following)
        on_timeout = result.on_timeout or (following if result.timeout is not None else None)
        return msgspec.structs.replace(result, next=following, on_timeout=on_timeout)


def _converted(step_name: str, name: str, value: Any, annotation: Any) -> Any:
    if annotation is Any or annotation is _NO_DEFAULT:
        return value
    try:
        return msgspec.convert(value, annotation, strict=False)
    except (msgspec.ValidationError, TypeError) as exc:
        raise ValidationError(f"step {step_name!r}: input {name!r}: {exc}") from exc


def input_parameters(method: Callable[..., Any]) -> dict[str, tuple[Any, Any]]:
    """The method's parameters after ``self``: name -> (type, default).

    Raises:
        ValidationError: a ``*args``/``**kwargs`` or positional-only parameter (inputs are
            named form fields).
    """
    signature = inspect.signature(method)
    try:
        hints = typing.get_type_hints(method)
    except Exception:  # an annotation that cannot be resolved here: that input takes any value
        hints = {}
    found: dict[str, tuple[Any, Any]] = {}
    for index, (name, param) in enumerate(signature.parameters.items()):
        if index == 0:
            continue  # self
        if param.kind not in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            raise ValidationError(f"step {method.__name__!r}: parameter {name!r} must be a named parameter")
        found[name] = (hints.get(name, Any), param.default)
    return found


def _schema_of_type(form: Any) -> dict[str, Any]:
    model_schema = getattr(form, "model_json_schema", None)
    if callable(model_schema):  # pydantic
        return dict(model_schema())
    (ref,), components = msgspec.json.schema_components([form])
    if "$ref" not in ref:  # int, str, list[...]: a value, not a form of named fields
        raise TypeError(f"{form!r} is not a type with fields (a msgspec Struct, dataclass or pydantic model)")
    name = ref["$ref"].rsplit("/", 1)[-1]
    schema = dict(components.pop(name))
    if components:
        schema["$defs"] = components
    return schema


def form_schema_of(step_name: str, inputs: Mapping[str, tuple[Any, Any]], form: Any = None) -> dict[str, Any]:
    """The task's form schema: ``form``'s (a msgspec Struct, dataclass or pydantic model),
    else one field per input, typed by its annotation, required unless it has a default.

    Raises:
        ValidationError: a type with no JSON Schema.
    """
    try:
        if form is not None:
            return _schema_of_type(form)
        fields = [
            (name, annotation, msgspec.NODEFAULT if default is _NO_DEFAULT else default)
            for name, (annotation, default) in inputs.items()
        ]
        # Fields without a default first, as a Struct requires; the schema's order is the form's.
        ordered = sorted(fields, key=lambda f: f[2] is not msgspec.NODEFAULT)
        struct = msgspec.defstruct(_title(step_name).replace(" ", ""), ordered)
        schema = _schema_of_type(struct)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"step {step_name!r}: no form schema for its inputs: {exc}") from exc
    schema["title"] = _title(step_name)
    schema["properties"] = {name: schema["properties"][name] for name in inputs}
    return schema


def _title(step_name: str) -> str:
    return step_name.replace("_", " ").capitalize()


class FlowMachineStep(BaseMachineStep):
    """A ``@step`` method without inputs: the runtime runs it and follows its command."""

    def __init__(
        self,
        name: str,
        call: MethodCall,
        *,
        description: str = "",
        retry_policy: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__(name, description, retry_policy=retry_policy, timeout=timeout)
        self.call = call

    def execute(self, context: WorkflowContext) -> Coroutine[Any, Any, Any]:
        """Run the method and return its command."""
        # The method call's own coroutine, not one that awaits it: a coroutine less per step.
        return self.call.run(self.name, context)


class FlowHumanStep(BaseHumanStep):
    """A ``@step`` method with inputs: a task collects them, then the method runs.

    Attributes:
        action: the name the step is offered under as an action (``@step(action=...)``).
    """

    def __init__(
        self,
        name: str,
        call: MethodCall,
        *,
        description: str = "",
        retry_policy: RetryPolicy | None = None,
        timeout: float | None = None,
        action: str | None = None,
        **task: Any,
    ) -> None:
        super().__init__(name, description, runs_on_completion=True, **task)
        self.call = call
        self.action = action
        if retry_policy is not None:
            self.retry_policy = retry_policy
        if timeout is not None:
            self.timeout = timeout

    async def execute(self, context: WorkflowContext) -> Any:
        """Run the method with the task's inputs and return its command."""
        return await self.call.run(self.name, context)
