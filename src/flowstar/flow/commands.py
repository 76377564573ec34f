"""What a code-first step returns: ``goto``, ``complete``, ``fail``, ``sleep`` and the waits.

Each function builds one of the runtime's commands (``flowstar.model.commands``), the same
objects a graph step of a ``routing="commands"`` definition returns.  Targets are step
names; ``goto(self.review)`` and ``goto("review")`` are the same command.

A wait whose ``next`` is left out is completed by the compiled step: it goes on with the
step declared after the waiting one in the class body (see ``flowstar.flow.workflow``).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flowstar.model.commands import WAKEUP_KEY, Complete, Fail, Goto, Sleep, StartChild, Wait, WaitFor
from flowstar.model.conditions import Condition
from flowstar.model.context import json_data
from flowstar.model.errors import ValidationError
from flowstar.model.moments import duration_problem

__all__ = [
    "Duration",
    "StepRef",
    "ChildResult",
    "Wakeup",
    "child_result",
    "complete",
    "event_filter",
    "fail",
    "goto",
    "seconds_of",
    "sleep",
    "start_child",
    "step_name",
    "wait",
    "wait_for_event",
    "wakeup",
]

Duration = timedelta | float | int
"""A length of time: a ``timedelta`` or a number of seconds."""

StepRef = str | Callable[..., Any]
"""A step: its name, or the step method itself (``self.review``)."""


def step_name(target: StepRef) -> str:
    """The step name ``target`` refers to: a string as it is, a method by its step name.

    Raises:
        ValidationError: ``target`` is neither a non-empty string nor a function.
    """
    if isinstance(target, str):
        if not target:
            raise ValidationError("a step name must not be empty")
        return target
    func = getattr(target, "__func__", target)
    name = getattr(func, "__flow_step_name__", None) or getattr(func, "__name__", None)
    if not isinstance(name, str) or not name:
        raise ValidationError(f"{target!r} is not a step: pass a step method or a step name")
    return name


def _optional_name(target: StepRef | None) -> str | None:
    return None if target is None else step_name(target)


def seconds_of(duration: Duration, what: str = "duration") -> float:
    """``duration`` in seconds (a float).

    Raises:
        ValidationError: not a number or a ``timedelta`` (see ``duration_problem``: NaN and
            more than ``MAX_WAIT`` are none either), or negative.
    """
    problem = duration_problem(duration, what)
    if problem is not None:
        raise ValidationError(problem)
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
    if seconds < 0:
        raise ValidationError(f"{what} must be a finite, non-negative time, got {duration!r}")
    return seconds


def goto(target: StepRef) -> Goto:
    """Go on with step ``target`` (``self.review`` or ``"review"``)."""
    return Goto(step_name(target))


def complete(**result: Any) -> Complete:
    """End the workflow as completed; ``result``'s items are merged into its data."""
    return Complete(json_data(result, "complete() result") if result else {})


def fail(reason: str) -> Fail:
    """End the workflow as failed with ``reason`` (not retried: retries are for exceptions)."""
    if not isinstance(reason, str) or not reason:
        raise ValidationError("fail() needs a non-empty reason")
    return Fail(reason)


def sleep(duration: Duration, next: StepRef | None = None) -> Sleep:
    """Wait ``duration`` durably, then run ``next`` (default: this same step again)."""
    return Sleep(seconds_of(duration, "sleep duration"), _optional_name(next))


def start_child(
    workflow: str | type,
    /,
    *,
    next: StepRef | None = None,
    version: str | None = None,
    result_key: str = "child",
    **data: Any,
) -> StartChild:
    """Start an instance of ``workflow`` (a name or a ``@workflow`` class) with ``data`` and
    wait for it to end; then ``next`` runs (default: the step declared after this one).

    The child's outcome is in the data under ``result_key``: read it with ``child_result()``
    (its status, data and error; a failed child does not fail the parent by itself).
    Canceling the parent cancels the child.
    """
    definition = getattr(workflow, "definition", None)
    name: Any = getattr(definition, "name", workflow)
    return StartChild(
        workflow=_name(name, "workflow"),
        data=json_data(data, "start_child() data"),
        next=_optional_name(next),
        version=version,
        result_key=_name(result_key, "result key"),
    )


def _wait(
    waits: tuple[WaitFor, ...],
    timeout: Duration | None,
    on_timeout: StepRef | None,
    next: StepRef | None,
    lookback: Duration | None,
) -> Wait:
    if on_timeout is not None and timeout is None:
        raise ValidationError("on_timeout needs a timeout")
    return Wait(
        waits=waits,
        next=_optional_name(next),
        timeout=None if timeout is None else seconds_of(timeout, "wait timeout"),
        on_timeout=_optional_name(on_timeout),
        lookback=None if lookback is None else seconds_of(lookback, "wait lookback"),
    )


def _name(name: str, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValidationError(f"a {what} name must be a non-empty string, got {name!r}")
    return name


def wait_for_event(  # noqa: PLR0917 - the documented positional order
    name: str,
    timeout: Duration | None = None,
    on_timeout: StepRef | None = None,
    next: StepRef | None = None,
    filter: str | None = None,
    lookback: Duration | None = None,
) -> Wait:
    """Wait for the external event ``name`` (reported with ``engine.report_event``).

    Its payload is merged into the data, with ``event_id``, ``event_name`` and
    ``entity_id``; then ``next`` runs (default: the step declared after this one).  After
    ``timeout`` with no event, ``on_timeout`` runs (default: ``next``; ``wakeup()`` tells
    which).  ``filter`` is a safe expression over the payload (``"amount > 100"``): events
    it rejects pass by.  An event reported before the wait began counts when it is within
    ``lookback`` (default: since the instance started).
    """
    source = None if filter is None else event_filter(filter)
    return _wait((WaitFor("event", _name(name, "event"), source),), timeout, on_timeout, next, lookback)


class _PayloadNames(ast.NodeTransformer):
    """``amount`` -> ``context.get('amount')``: the conditions' spelling of a payload field."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        # ``context.get('x')`` (already the conditions' spelling) and method calls keep
        # their function; only their arguments are rewritten.
        node.args = [self.visit(a) for a in node.args]
        node.keywords = [self.visit(k) for k in node.keywords]
        if not isinstance(node.func, ast.Name):
            node.func = self.visit(node.func)
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id == "context":
            return node
        getter = ast.Attribute(value=ast.Name("context", ast.Load()), attr="get", ctx=ast.Load())
        return ast.Call(func=getter, args=[ast.Constant(node.id)], keywords=[])


def event_filter(expression: str) -> str:
    """An event filter in the runtime's condition language: payload fields may be named
    bare (``amount > 100 and currency == 'EUR'``), as ``context.get('amount')`` reads them.

    Raises:
        ValidationError: an empty filter.
        UnsafeExpressionError: one the safe evaluator refuses (it is checked now).
    """
    if not isinstance(expression, str) or not expression.strip():
        raise ValidationError("an event filter must be a non-empty expression")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        source = expression  # the evaluator says what is wrong
    else:
        source = ast.unparse(ast.fix_missing_locations(_PayloadNames().visit(tree)))
    Condition(source)
    return source


class _WaitNamespace:
    """``wait.for_signal``, ``wait.for_event`` and ``wait.any``."""

    @staticmethod
    def for_signal(
        name: str,
        timeout: Duration | None = None,
        on_timeout: StepRef | None = None,
        next: StepRef | None = None,
        lookback: Duration | None = None,
    ) -> Wait:
        """Wait for signal ``name`` (sent with ``engine.signal``); its payload joins the data.

        Then ``next`` runs (default: the step declared after this one); after ``timeout``
        with no signal, ``on_timeout`` (default: ``next``).  A signal sent before the wait
        began counts when it is within ``lookback`` (default: since the instance started).
        """
        return _wait((WaitFor("signal", _name(name, "signal")),), timeout, on_timeout, next, lookback)

    for_event = staticmethod(wait_for_event)

    @staticmethod
    def any(
        *waits: Wait,
        timeout: Duration | None = None,
        on_timeout: StepRef | None = None,
        next: StepRef | None = None,
        lookback: Duration | None = None,
    ) -> Wait:
        """Wait for the first of several signals and events (each a ``wait.for_signal(...)``
        or ``wait_for_event(...)`` without ``next``/``timeout`` of its own).

        ``wakeup()`` in the next step tells which one came (or that the timeout did).
        """
        if not waits:
            raise ValidationError("wait.any() needs at least one wait")
        found: list[WaitFor] = []
        for part in waits:
            if not isinstance(part, Wait):
                raise ValidationError(f"wait.any() takes waits (wait.for_signal(...), ...), got {part!r}")
            if part.next is not None or part.timeout is not None or part.on_timeout is not None:
                raise ValidationError("give next, timeout and on_timeout to wait.any(), not to the waits inside it")
            found.extend(part.waits)
        return _wait(tuple(found), timeout, on_timeout, next, lookback)


wait = _WaitNamespace()
"""The signal waits: ``wait.for_signal(name, ...)``, ``wait.for_event(...)``, ``wait.any(...)``."""


@dataclass(frozen=True)
class Wakeup:
    """What ended the wait (or sleep) before the current step.

    Attributes:
        kind: ``"signal"``, ``"event"``, ``"timeout"`` or ``"timer"`` (a sleep ended).
        name: the signal's or event's name (None for a timeout or timer).
        details: the runtime's whole wake-up record.
    """

    kind: str
    name: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def timed_out(self) -> bool:
        """Whether the wait's timeout ran out before anything came."""
        return self.kind == "timeout"


def wakeup(data: Mapping[str, Any] | None = None) -> Wakeup | None:
    """What woke this step up (None when it did not follow a wait or sleep).

    Reads the runtime's ``_wakeup`` record from the data of the running step (or ``data``).
    Only the step that runs right after the wait (or sleep) sees it: the runtime drops the
    record once that step has run.
    """
    if data is None:
        from flowstar.flow.context import current_data

        data = current_data()
    record = data.get(WAKEUP_KEY)
    if not isinstance(record, Mapping):
        return None
    name = record.get("name")
    return Wakeup(str(record.get("kind", "")), name if isinstance(name, str) else None, dict(record))


@dataclass(frozen=True)
class ChildResult:
    """How a child workflow started with ``start_child`` ended.

    Attributes:
        id: the child instance's id.
        workflow: its workflow name.
        status: ``"completed"``, ``"failed"`` or ``"canceled"``.
        data: its data when it ended (without the runtime's ``_`` keys).
        error: why it failed or was canceled (None when it completed).
    """

    id: str
    workflow: str
    status: str
    data: Mapping[str, Any]
    error: str | None = None

    @property
    def completed(self) -> bool:
        """Whether the child completed (rather than failed or was canceled)."""
        return self.status == "completed"


def child_result(key: str = "child", data: Mapping[str, Any] | None = None) -> ChildResult | None:
    """The outcome of the child workflow the previous step waited for (None if there is none).

    ``key`` is the ``result_key`` given to ``start_child``.
    """
    if data is None:
        from flowstar.flow.context import current_data

        data = current_data()
    record = data.get(key)
    if not isinstance(record, Mapping) or "status" not in record:
        return None
    error = record.get("error")
    return ChildResult(
        id=str(record.get("id", "")),
        workflow=str(record.get("workflow", "")),
        status=str(record["status"]),
        data=dict(record.get("data") or {}),
        error=error if isinstance(error, str) else None,
    )
