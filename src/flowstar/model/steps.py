"""Step protocol and the base classes users subclass.

A step can be declared with class attributes (``name = "submit"``) or constructor arguments
(``SubmitStep(name="submit")``); a subclass whose ``__init__`` calls ``super().__init__()``
with no arguments keeps its class attributes.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from flowstar.model.enums import StepType
from flowstar.model.errors import FormValidationError, ValidationError
from flowstar.model.escalation import Escalation
from flowstar.model.moments import duration_problem
from flowstar.model.state import MAX_PRIORITY, MIN_PRIORITY

if TYPE_CHECKING:
    from flowstar.model.context import WorkflowContext
    from flowstar.model.retry import RetryPolicy

__all__ = [
    "BaseHumanStep",
    "BaseMachineStep",
    "BaseStep",
    "ProtocolStep",
    "Step",
    "adapt_step",
    "check_against_schema",
    "foreign_step_problem",
    "schema_problem",
    "schema_validator",
]


@runtime_checkable
class Step(Protocol):
    """What the engine needs from a step (every ``BaseStep`` has it).

    A ``WorkflowDefinition`` also accepts an object with only the members the reference API
    documents (``name``, ``description``, ``execute`` and the three hooks, each optional but
    ``execute``) and no ``step_type``: it wraps it in a ``ProtocolStep``, a machine step.
    """

    name: str
    description: str
    step_type: ClassVar[StepType]

    async def execute(self, context: WorkflowContext) -> Any:
        """Do the step's work."""

    async def can_execute(self, context: WorkflowContext) -> bool:
        """Whether to run the step; ``False`` skips it."""

    async def on_success(self, context: WorkflowContext, result: Any) -> None:
        """Called after ``execute`` returned."""

    async def on_failure(self, context: WorkflowContext, error: Exception) -> None:
        """Called after ``execute`` raised."""


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class BaseStep:
    """Shared behaviour of all steps.

    Args:
        name: unique step name within a definition; defaults to the class attribute, or the
            class name in snake case.
        description: human-readable description.
        retry_policy: overrides the workflow's retry policy for this step.
        timeout: seconds one attempt may run before it fails with ``StepTimeoutError``.
    """

    name: str = ""
    description: str = ""
    step_type: ClassVar[StepType] = StepType.MACHINE
    retry_policy: RetryPolicy | None = None
    timeout: float | None = None

    def __init__(
        self,
        name: str | None = None,
        description: str | None = None,
        *,
        retry_policy: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> None:
        self.name_explicit = bool(name or type(self).__dict__.get("name") or _inherited_name(type(self)))
        self.name = name or self.name or _snake(type(self).__name__)
        if description is not None:
            self.description = description
        if retry_policy is not None:
            self.retry_policy = retry_policy
        if timeout is not None:
            self.timeout = timeout

    async def execute(self, context: WorkflowContext) -> Any:
        """Do the step's work; the default does nothing."""
        return None

    async def can_execute(self, context: WorkflowContext) -> bool:
        """Return ``False`` to skip the step (a ``StepSkipped`` event is emitted)."""
        return True

    async def on_success(self, context: WorkflowContext, result: Any) -> None:
        """Hook called after ``execute`` returned."""

    async def on_failure(self, context: WorkflowContext, error: Exception) -> None:
        """Hook called after ``execute`` raised, before any retry."""

    def problems(self) -> list[str]:
        """Structural problems of this step, for ``WorkflowDefinition.validate``."""
        if self.timeout is None:
            return []
        problem = duration_problem(self.timeout, f"step {self.name!r}: timeout")
        if problem is not None:
            return [problem]
        if self.timeout <= 0:
            return [f"step {self.name!r}: timeout must be positive"]
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _inherited_name(cls: type) -> str:
    for klass in cls.__mro__[1:]:
        if klass in (BaseStep, BaseMachineStep, BaseHumanStep, object):
            continue
        value = klass.__dict__.get("name")
        if isinstance(value, str) and value:
            return value
    return ""


class BaseMachineStep(BaseStep):
    """An automated step: ``execute`` runs your code."""

    step_type: ClassVar[StepType] = StepType.MACHINE


class BaseHumanStep(BaseStep):
    """A step that waits for a person to submit a form.

    Args:
        title: task title shown in the inbox.
        form_schema: JSON Schema the submitted data must satisfy.
        assignee: fixed user id the task is assigned to.
        assignee_key: context key holding the assignee's user id (wins over ``assignee``).
        assignee_group: group or role whose members may complete the task.
        due_in: time allowed to complete the task; sets the task's due date.
        candidate_users: users who may claim the task.
        candidate_groups: groups whose members may claim it (``assignee_group`` counts too).
        candidates_key: context key holding more candidates: a mapping with ``users`` and/or
            ``groups`` lists (added to the fixed ones).
        priority: 0..100, higher first (default 50).
        follow_up: sets the task's follow-up date, this long after it opens.
        escalations: reminders and reassignments that fire while the task stays open
            (see ``Escalation``).
        runs_on_completion: once the task is completed (its data merged into the context),
            run the step's ``execute`` as a machine activation; what it returns (a command,
            see ``flowstar.model.commands``) decides what follows.  Code-first steps that
            take input are such steps.
        action: a name to complete the open task by through the REST API
            (``POST {prefix}/actions/{action}`` with the instance id and the fields).
    """

    step_type: ClassVar[StepType] = StepType.HUMAN
    title: str = ""
    form_schema: Mapping[str, Any] | None = None
    assignee: str | None = None
    assignee_key: str | None = None
    assignee_group: str | None = None
    due_in: timedelta | None = None
    candidate_users: Sequence[str] = ()
    candidate_groups: Sequence[str] = ()
    candidates_key: str | None = None
    priority: int = 50
    follow_up: timedelta | None = None
    escalations: Sequence[Escalation] = ()
    runs_on_completion: bool = False
    action: str | None = None

    def __init__(
        self,
        name: str | None = None,
        description: str | None = None,
        *,
        title: str | None = None,
        form_schema: Mapping[str, Any] | None = None,
        assignee: str | None = None,
        assignee_key: str | None = None,
        assignee_group: str | None = None,
        due_in: timedelta | None = None,
        candidate_users: Sequence[str] | None = None,
        candidate_groups: Sequence[str] | None = None,
        candidates_key: str | None = None,
        priority: int | None = None,
        follow_up: timedelta | None = None,
        escalations: Sequence[Escalation] | None = None,
        runs_on_completion: bool | None = None,
        action: str | None = None,
    ) -> None:
        super().__init__(name, description)
        for attr, value in (
            ("runs_on_completion", runs_on_completion),
            ("action", action),
            ("escalations", escalations),
            ("candidate_users", candidate_users),
            ("candidate_groups", candidate_groups),
            ("candidates_key", candidates_key),
            ("priority", priority),
            ("follow_up", follow_up),
            ("title", title),
            ("form_schema", form_schema),
            ("assignee", assignee),
            ("assignee_key", assignee_key),
            ("assignee_group", assignee_group),
            ("due_in", due_in),
        ):
            if value is not None:
                setattr(self, attr, value)
        if not self.title:
            self.title = self.name.replace("_", " ").capitalize()
        self._validator: Draft202012Validator | None = None

    def problems(self) -> list[str]:
        """Report an invalid ``form_schema``, priority or candidate list."""
        found = super().problems()
        if not isinstance(self.priority, int) or not MIN_PRIORITY <= self.priority <= MAX_PRIORITY:
            found.append(
                f"step {self.name!r}: priority must be an integer from {MIN_PRIORITY} to {MAX_PRIORITY},"
                f" got {self.priority!r}"
            )
        for attr in ("due_in", "follow_up"):
            delay = getattr(self, attr)
            if delay is None:
                continue
            if not isinstance(delay, timedelta):
                found.append(f"step {self.name!r}: {attr} must be a timedelta, got {delay!r}")
            elif (problem := duration_problem(delay, f"step {self.name!r}: {attr}")) is not None:
                found.append(problem)
        for attr in ("candidate_users", "candidate_groups"):
            names = getattr(self, attr)
            if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
                found.append(f"step {self.name!r}: {attr} must be a list of non-empty strings")
        for escalation in self.escalations:
            if isinstance(escalation, Escalation):
                found.extend(escalation.problems(self.name))
            else:
                found.append(f"step {self.name!r}: escalations must be Escalation objects, got {escalation!r}")
        if (problem := schema_problem(self.form_schema, f"step {self.name!r}: form_schema")) is not None:
            found.append(problem)
        return found

    def validate_form(self, data: Any) -> None:
        """Check ``data`` against ``form_schema``.

        Raises:
            FormValidationError: with the messages for each failing field.
        """
        if not isinstance(data, Mapping):
            raise FormValidationError({"": ["form data must be an object"]})
        if self.form_schema is None:
            return
        if self._validator is None:
            self._validator = schema_validator(self.form_schema)
        check_against_schema(self._validator, data)

    def resolve_assignee(self, data: Mapping[str, Any]) -> str | None:
        """The user the task goes to: from ``assignee_key`` in the context, else fixed."""
        if self.assignee_key:
            value = data.get(self.assignee_key)
            if value is not None:
                return str(value)
        return self.assignee

    def resolve_due(self, now: datetime) -> datetime | None:
        """The task's due date, if the step sets one."""
        return now + self.due_in if self.due_in is not None else None

    def resolve_follow_up(self, now: datetime) -> datetime | None:
        """The task's follow-up date, if the step sets one."""
        return now + self.follow_up if self.follow_up is not None else None

    def resolve_candidates(self, data: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """The candidate users and groups: the fixed ones plus those under ``candidates_key``.

        Each list is sorted without repeats (as the SQL store reads them back); the
        ``assignee_group`` is left out of the groups, where it counts already.
        """
        users = set(self.candidate_users)
        groups = set(self.candidate_groups)
        extra = data.get(self.candidates_key) if self.candidates_key else None
        if isinstance(extra, Mapping):
            users.update(_names(extra.get("users")))
            groups.update(_names(extra.get("groups")))
        groups.discard(self.assignee_group or "")
        return sorted(users), sorted(groups)

    @staticmethod
    def check_data(data: Mapping[str, Any]) -> None:
        """Refuse non-string keys early, with the same error as the context would raise."""
        for key in data:
            if not isinstance(key, str):
                raise ValidationError(f"form field names must be strings, got {key!r}")


def schema_problem(schema: Any, what: str) -> str | None:
    """Why ``schema`` (None: no schema) is not a JSON Schema object, named ``what``."""
    if schema is None:
        return None
    if not isinstance(schema, Mapping):
        return f"{what} must be a JSON Schema object, got {type(schema).__name__}"
    try:
        Draft202012Validator.check_schema(dict(schema))
    except SchemaError as exc:
        return f"{what} is invalid: {exc.message}"
    return None


def schema_validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    """A validator of ``schema`` that also checks ``format`` (``email``, ``date``, ``uuid``, ...):
    a form that asks for an e-mail address must not take any text."""
    return Draft202012Validator(dict(schema), format_checker=Draft202012Validator.FORMAT_CHECKER)


def check_against_schema(validator: Draft202012Validator, data: Mapping[str, Any]) -> None:
    """Check ``data`` with a JSON Schema ``validator`` (task forms, workflow input).

    Raises:
        FormValidationError: the messages of each failing field, by JSON pointer path.
    """
    field_errors: dict[str, list[str]] = {}
    for error in validator.iter_errors(dict(data)):
        if error.validator == "required" and isinstance(error.instance, Mapping):
            base = "/".join(str(p) for p in error.absolute_path)
            # jsonschema reports each missing field as its own error: note each once.
            for missing in error.validator_value:
                if missing not in error.instance:
                    path = f"{base}/{missing}" if base else str(missing)
                    messages = field_errors.setdefault(path, [])
                    if "this field is required" not in messages:
                        messages.append("this field is required")
            continue
        path = "/".join(str(p) for p in error.absolute_path)
        field_errors.setdefault(path, []).append(error.message)
    if field_errors:
        raise FormValidationError(field_errors)


def _names(value: Any) -> list[str]:
    """The non-empty strings of a context value that should be a list of names."""
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v is not None and str(v)]
    return []


# -- objects that only follow the Step protocol ---------------------------------------------

_HOOKS = ("can_execute", "on_success", "on_failure")
_BASES = {StepType.GATEWAY: "BaseGateway", StepType.TIMER: "TimerStep", StepType.WEBHOOK: "WebhookStep"}
_HUMAN_FIELDS = (
    "title",
    "form_schema",
    "assignee",
    "assignee_key",
    "assignee_group",
    "due_in",
    "candidate_users",
    "candidate_groups",
    "candidates_key",
    "priority",
    "follow_up",
    "escalations",
)


def _delegate(method: Callable[..., Any]) -> Callable[..., Any]:
    async def call(*args: Any) -> Any:
        result = method(*args)
        return await result if inspect.isawaitable(result) else result

    return call


class ProtocolStep(BaseMachineStep):
    """A machine step built from an object that only has the ``Step`` protocol's members.

    ``WorkflowDefinition`` wraps such objects so that the engine only sees ``BaseStep``s.
    Every call goes to the object itself, so changing its attributes later (a test swapping
    a client) takes effect.  Hooks the object does not define are ``BaseStep``'s no-ops.

    Attributes:
        wrapped: the object given in the definition's steps.
    """

    def __init__(self, wrapped: Any, name: str) -> None:
        super().__init__(
            name,
            getattr(wrapped, "description", None) or "",
            retry_policy=getattr(wrapped, "retry_policy", None),
            timeout=getattr(wrapped, "timeout", None),
        )
        self.wrapped = wrapped
        self._execute = _delegate(wrapped.execute)
        for hook in _HOOKS:
            method = getattr(wrapped, hook, None)
            if callable(method):
                # An instance attribute, so a step without the hook keeps BaseStep's no-op,
                # which the engine knows it need not call.
                setattr(self, hook, _delegate(method))

    async def execute(self, context: WorkflowContext) -> Any:
        """Run the wrapped object's ``execute``."""
        return await self._execute(context)

    def __repr__(self) -> str:
        return f"ProtocolStep({self.wrapped!r}, name={self.name!r})"


class _ProtocolHumanStep(BaseHumanStep):
    """A human step described by a plain object (its title, form schema and assignment)."""

    def __init__(self, wrapped: Any, name: str) -> None:
        super().__init__(
            name,
            getattr(wrapped, "description", None) or "",
            **{field: getattr(wrapped, field, None) for field in _HUMAN_FIELDS},
        )
        self.wrapped = wrapped


def _declared_type(obj: Any) -> StepType | None:
    declared = getattr(obj, "step_type", StepType.MACHINE)
    try:
        return StepType(declared)
    except ValueError:
        return None


def adapt_step(obj: Any, name: str) -> Any:
    """``obj`` as a ``BaseStep``: itself if it is one, else wrapped (see ``ProtocolStep``).

    An object with an ``execute`` method is a machine step unless its ``step_type`` says
    ``human``.  Anything else is returned unchanged, for ``WorkflowDefinition.validate`` to
    report: an object without ``execute``, or one declaring another (or an unknown) step
    type, which needs the matching base class (``BaseGateway``, ``TimerStep``,
    ``WebhookStep``).
    """
    if isinstance(obj, BaseStep):
        return obj
    kind = _declared_type(obj)
    if kind is StepType.HUMAN:
        return _ProtocolHumanStep(obj, name)
    if kind is StepType.MACHINE and callable(getattr(obj, "execute", None)):
        return ProtocolStep(obj, name)
    return obj


def foreign_step_problem(key: str, obj: Any) -> str:
    """Why ``adapt_step`` left ``obj`` as it was."""
    kind = _declared_type(obj)
    if kind is None:
        return f"step {key!r} ({type(obj).__name__}) has an unknown step_type {getattr(obj, 'step_type', None)!r}"
    if kind is not StepType.MACHINE:
        base = _BASES.get(kind, "BaseStep")
        return f"step {key!r} ({type(obj).__name__}) is a {kind.value} step: make it a {base} subclass"
    return f"step {key!r} ({type(obj).__name__}) does not implement the Step protocol (it needs async execute(context))"
