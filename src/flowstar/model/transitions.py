"""The pure transition logic shared by every engine.

Each public function takes an instance's current state and an outcome, and returns the
``CommitPlan`` to write: the new state, step records, tasks, events and the tokens to
dispatch.  Nothing here does I/O; time and id generation are passed in.

Parallelism is token based: every activation or open wait of an instance is a token.  An edge
taken into a step with several incoming edges (a join) records an arrival; the join fires once
no live token can still reach it, so branches not taken never block it, and it runs exactly
once per wave of arrivals.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from flowstar.model.access import candidate_pairs
from flowstar.model.builder import NewId, PlanBuilder, StaleTokenError
from flowstar.model.commands import WAKEUP_KEY, Command
from flowstar.model.definition import WorkflowDefinition
from flowstar.model.enums import TERMINAL_WORKFLOW_STATUSES, StepStatus, TaskStatus, WorkflowStatus
from flowstar.model.errors import InvalidTransitionError, TaskAlreadyCompletedError
from flowstar.model.events import (
    HumanTaskCompleted,
    HumanTaskReassigned,
    StepCompleted,
    StepExecuted,
    StepFailed,
    StepSkipped,
    StepStarted,
    WorkflowCanceled,
    WorkflowRetried,
    WorkflowStarted,
)
from flowstar.model.state import (
    CommitPlan,
    HumanTask,
    InstanceState,
    RecordUpdate,
    SignalEntry,
    StepRecord,
    TaskUpdate,
    Token,
)
from flowstar.model.steps import BaseHumanStep

__all__ = [
    "InnerRecord",
    "StaleTokenError",
    "StepResult",
    "apply_reassignment",
    "apply_step_result",
    "last_actor",
    "cancel_instance",
    "deliver_signal",
    "reassign_task",
    "resume_wait",
    "retry_instance",
    "start_instance",
]

_RESULT_STATUS = {
    "succeeded": StepStatus.SUCCEEDED,
    "skipped": StepStatus.SKIPPED,
    "failed": StepStatus.FAILED,
}


class InnerRecord(msgspec.Struct, kw_only=True, gc=False):
    """The outcome of one step inside a group."""

    step_name: str
    step_type: str
    status: StepStatus
    started_at: datetime
    completed_at: datetime
    output: Any = None
    error: str | None = None


class StepResult(msgspec.Struct, kw_only=True, gc=False):
    """What running a step's body produced (computed by the engine, applied here)."""

    status: Literal["succeeded", "skipped", "failed"]
    started_at: datetime
    finished_at: datetime
    changes: dict[str, Any] = msgspec.field(default_factory=dict)
    output: Any = None
    error: str | None = None
    retry_at: datetime | None = None
    targets: list[str] | None = None
    inner: list[InnerRecord] = msgspec.field(default_factory=list)
    # What the step said happens next (``flowstar.model.commands``), if it returned a command.
    command: Command | None = None


def start_instance(
    definition: WorkflowDefinition,
    *,
    instance_id: str,
    data: dict[str, Any],
    now: datetime,
    new_id: NewId,
    events: bool = True,
    tenant_id: str | None = None,
    created_by: str | None = None,
    metadata: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    start_at: datetime | None = None,
) -> CommitPlan:
    """Create an instance and activate its initial step (at ``start_at``, when given)."""
    state = InstanceState(
        id=instance_id,
        workflow_name=definition.name,
        workflow_version=definition.version,
        status=WorkflowStatus.RUNNING,
        data=data,
        tenant_id=tenant_id,
        created_by=created_by,
        metadata=metadata or {},
        idempotency_key=idempotency_key,
        started_at=now,
        updated_at=now,
    )
    tr = PlanBuilder(definition, state, now, new_id, events)
    tr.emit(WorkflowStarted, initial_step=definition.initial_step, created_by=created_by)
    tr.enter(definition.initial_step, due_at=start_at)
    return tr.finish()


def apply_step_result(
    definition: WorkflowDefinition,
    state: InstanceState,
    token_id: str,
    result: StepResult,
    *,
    now: datetime,
    new_id: NewId,
    events: bool = True,
) -> CommitPlan:
    """Commit the outcome of a ``run`` token: routing, joins, gateways, groups, failures.

    Raises:
        StaleTokenError: the token is no longer active (a duplicate delivery, or the instance
            was canceled or failed meanwhile).
    """
    tr = PlanBuilder(definition, state, now, new_id, events)
    token = tr.take(token_id)
    step_type: str = tr.step_types[token.step]
    _record_outcome(tr, token, step_type, result)
    status = result.status
    if events:
        _emit_step_events(tr, token, step_type, result)
    if status == "failed":
        if result.retry_at is not None:
            tr.enter(token.step, attempt=token.attempt + 1, due_at=result.retry_at)
        else:
            # What the step wrote before failing for good stays, for whoever debugs it (a
            # retried attempt's writes are dropped: the next attempt starts afresh).
            tr.state.data.update(result.changes)
            error = result.error or "step failed"
            tr.fail(f"step {token.step!r} failed after {token.attempt} attempt(s): {error}", token.step)
    elif status == "skipped":
        tr.route(token.step)
    else:
        data = tr.state.data
        data.update(result.changes)
        if WAKEUP_KEY in data:
            # What ended a wait concerns the step run right after it only.
            del data[WAKEUP_KEY]
        if result.command is not None:
            tr.follow(token.step, result.command)
        elif result.targets is None or _gateway_targets_valid(tr, token.step, result.targets):
            tr.route(token.step, result.targets)
    return tr.finish()


def _emit_step_events(tr: PlanBuilder, token: Token, step_type: str, result: StepResult) -> None:
    """StepStarted, the outcome's event (StepCompleted, StepFailed or StepSkipped), StepExecuted."""
    base: dict[str, Any] = {"step_name": token.step, "step_type": step_type, "attempt": token.attempt}
    duration = (result.finished_at - result.started_at).total_seconds() * 1000
    tr.emit(StepStarted, timestamp=result.started_at, **base)
    if result.status == "failed":
        error = result.error or "step failed"
        tr.emit(StepFailed, error=error, retry_at=result.retry_at, **base)
        tr.emit(StepExecuted, status="failed", error=error, duration_ms=duration, **base)
    elif result.status == "skipped":
        tr.emit(StepSkipped, step_name=token.step, step_type=step_type)
        tr.emit(StepExecuted, status="skipped", duration_ms=duration, **base)
    else:
        tr.emit(StepCompleted, output=result.output, duration_ms=duration, **base)
        tr.emit(StepExecuted, status="succeeded", duration_ms=duration, **base)


def _record_outcome(tr: PlanBuilder, token: Token, step_type: str, result: StepResult) -> None:
    """The step records of an activation's outcome (inner steps of a group first) and its history line."""
    state = tr.state
    new_records = tr.new_records
    for inner in result.inner:
        new_records.append(
            StepRecord(
                id=tr.new_id(),
                instance_id=state.id,
                step_name=inner.step_name,
                step_type=inner.step_type,
                status=inner.status,
                attempt=token.attempt,
                output_data=inner.output,
                error=inner.error,
                started_at=inner.started_at,
                completed_at=inner.completed_at,
                token_id=token.id,
                parent_step=token.step,
                tenant_id=state.tenant_id,
            )
        )
    status = _RESULT_STATUS[result.status]
    new_records.append(
        StepRecord(
            id=token.id,  # the record of an activation's outcome carries the activation's id
            instance_id=state.id,
            step_name=token.step,
            step_type=step_type,
            status=status,
            attempt=token.attempt,
            input_data=tr.input_data,
            output_data=result.output,
            error=result.error,
            started_at=result.started_at,
            completed_at=result.finished_at,
            token_id=token.id,
            tenant_id=state.tenant_id,
        )
    )
    tr.remember(token.step, status, token.attempt)


def _gateway_targets_valid(tr: PlanBuilder, step: str, targets: list[str]) -> bool:
    """Whether a gateway's choice names edges it has; fails the instance if not."""
    allowed = set(tr.graph.successors(step))
    unknown = [t for t in targets if t not in allowed]
    if unknown:
        tr.fail(f"gateway {step!r} returned {unknown}, which it has no edge to", step)
        return False
    if not targets:
        tr.fail(f"gateway {step!r} chose no branch", step)
        return False
    return True


def last_actor(state: InstanceState) -> str | None:
    """Who acted last on the instance: the user who completed its latest human task, else its creator."""
    for entry in reversed(state.history):
        if entry.by is not None:
            return entry.by
    return state.created_by


def resume_wait(
    definition: WorkflowDefinition,
    state: InstanceState,
    token_id: str,
    *,
    changes: dict[str, Any],
    now: datetime,
    new_id: NewId,
    events: bool = True,
    completed_by: str | None = None,
    output: Any = None,
) -> CommitPlan:
    """Finish an open wait (human task, webhook callback, or a due timer) and move on.

    Raises:
        TaskAlreadyCompletedError: the wait is no longer open.
    """
    tr = PlanBuilder(definition, state, now, new_id, events)
    token = _take_wait(tr, token_id)
    if token.kind == "timer" and token.wait is not None:
        # A command's sleep, or a wait's timeout: the next step learns which.
        changes = {**changes, WAKEUP_KEY: {"kind": "timeout" if token.wait.group else "timer", "name": None}}
    _finish_wait(tr, token, changes, completed_by, output)
    return tr.finish()


def deliver_signal(
    definition: WorkflowDefinition,
    state: InstanceState,
    token_id: str,
    entry: SignalEntry,
    *,
    now: datetime,
    new_id: NewId,
    events: bool = True,
) -> CommitPlan:
    """End the signal or event wait ``token_id`` with ``entry`` (see ``accepts``).

    A signal's payload is merged into the data; an event's too, with ``event_id``,
    ``event_name`` and ``entity_id``.  The instance remembers the entry as the last of its
    name it consumed, so no later wait receives it again.

    Raises:
        TaskAlreadyCompletedError: the wait is no longer open (another delivery ended it).
    """
    tr = PlanBuilder(definition, state, now, new_id, events)
    token = _take_wait(tr, token_id)
    changes = dict(entry.payload)
    if entry.kind == "event":
        changes.update(event_id=entry.id, event_name=entry.name, entity_id=entry.entity_id)
    changes[WAKEUP_KEY] = {"kind": entry.kind, "name": entry.name}
    tr.state.deliveries = {**tr.state.deliveries, entry.key: [entry.recorded_at.isoformat(), entry.id]}
    _finish_wait(tr, token, changes, None, entry.payload)
    return tr.finish()


def _take_wait(tr: PlanBuilder, token_id: str) -> Token:
    try:
        return tr.take(token_id)
    except StaleTokenError as exc:
        raise TaskAlreadyCompletedError(f"step {exc} was completed or canceled already") from exc


def _finish_wait(tr: PlanBuilder, token: Token, changes: dict[str, Any], completed_by: str | None, output: Any) -> None:
    """Close the wait ``token`` held (record, task, sibling tokens), merge ``changes``, go on."""
    now = tr.now
    kind = tr.step_types[token.step].value
    tr.end_wait(token)
    if token.record_id is not None:
        tr.record_updates.append(
            RecordUpdate(
                id=token.record_id,
                status=StepStatus.SUCCEEDED,
                completed_at=now,
                output_data=output,
                completed_by=completed_by,
            )
        )
    if token.task_id is not None:
        _complete_task(tr, token, changes, completed_by)
    tr.state.data.update(changes)
    tr.remember(token.step, StepStatus.SUCCEEDED, by=completed_by)
    duration = (now - token.created_at).total_seconds() * 1000
    tr.emit(StepCompleted, step_name=token.step, step_type=kind, output=output, duration_ms=duration)
    tr.emit(StepExecuted, step_name=token.step, step_type=kind, status="succeeded", duration_ms=duration)
    step = tr.definition.steps[token.step]
    if token.wait is not None and token.wait.then is not None:
        tr.enter_named(token.step, token.wait.then, "the wait goes on with")
    elif token.kind == "human" and isinstance(step, BaseHumanStep) and step.runs_on_completion:
        tr.add_token(token.step, "run")
    else:
        # A signal or event step that got its signal in time does not take its timeout edge.
        in_time = token.kind in ("signal", "event")
        tr.route(token.step, exclude=getattr(step, "on_timeout", None) if in_time else None)


def _complete_task(tr: PlanBuilder, token: Token, changes: dict[str, Any], completed_by: str | None) -> None:
    assert token.task_id is not None
    tr.drop_escalations(token.task_id)
    tr.task_updates.append(
        TaskUpdate(
            id=token.task_id,
            status=TaskStatus.COMPLETED,
            completed_at=tr.now,
            completed_by=completed_by,
            data=changes,
        )
    )
    tr.record_audit(token.task_id, "completed", completed_by)
    tr.emit(
        HumanTaskCompleted,
        task_id=token.task_id,
        step_name=token.step,
        completed_by=completed_by or "",
        data=changes,
    )


def cancel_instance(
    definition: WorkflowDefinition,
    state: InstanceState,
    *,
    reason: str,
    now: datetime,
    new_id: NewId,
    events: bool = True,
    canceled_by: str | None = None,
) -> CommitPlan:
    """Cancel the instance, its pending activations and its open tasks."""
    if state.status in TERMINAL_WORKFLOW_STATUSES:
        raise InvalidTransitionError(f"instance {state.id} is {state.status.value} and cannot be canceled")
    tr = PlanBuilder(definition, state, now, new_id, events)
    tr.void_all()
    tr.state.status = WorkflowStatus.CANCELED
    tr.state.completed_at = now
    tr.state.error = reason
    tr.emit(WorkflowCanceled, reason=reason, canceled_by=canceled_by)
    return tr.finish()


def retry_instance(
    definition: WorkflowDefinition,
    state: InstanceState,
    *,
    from_step: str | None,
    now: datetime,
    new_id: NewId,
    events: bool = True,
) -> CommitPlan:
    """Resume a failed instance from ``from_step`` (default: the step that failed)."""
    if state.status is not WorkflowStatus.FAILED:
        raise InvalidTransitionError(
            f"instance {state.id} is {state.status.value}; only failed instances can be retried"
        )
    step = from_step or state.failed_step or definition.initial_step
    if step not in definition.steps:
        raise InvalidTransitionError(f"workflow {definition.name!r} has no step {step!r}")
    tr = PlanBuilder(definition, state, now, new_id, events)
    tr.state.status = WorkflowStatus.RUNNING
    tr.state.error = None
    tr.state.failed_step = None
    tr.state.completed_at = None
    tr.emit(WorkflowRetried, from_step=step)
    tr.enter(step)
    return tr.finish()


def reassign_task(
    definition: WorkflowDefinition,
    state: InstanceState,
    task: HumanTask,
    *,
    assignee_id: str | None,
    assignee_group: str | None,
    now: datetime,
    new_id: NewId,
    events: bool = True,
    reassigned_by: str | None = None,
    reason: str | None = None,
) -> CommitPlan:
    """Move an open task to another assignee and/or group (its claim ends)."""
    if task.status is not TaskStatus.PENDING or task.id not in {t.task_id for t in state.tokens.values()}:
        raise TaskAlreadyCompletedError(f"task {task.id} is {task.status.value} and cannot be reassigned")
    tr = PlanBuilder(definition, state, now, new_id, events)
    apply_reassignment(tr, task, assignee_id, assignee_group, actor=reassigned_by, reason=reason)
    return tr.finish()


def apply_reassignment(
    tr: PlanBuilder,
    task: HumanTask,
    assignee_id: str | None,
    assignee_group: str | None,
    *,
    actor: str | None,
    reason: str | None,
    action: Literal["reassigned", "escalated"] = "reassigned",
) -> None:
    """Add the reassignment of open ``task`` to the plan being built (rows, audit, event)."""
    group = assignee_group if assignee_group is not None else task.assignee_group
    candidates = None
    if group != task.assignee_group:
        # The assignee group is one of the task's candidate rows: they change with it.
        candidates = candidate_pairs(task.candidate_users, [g for g in task.candidate_groups if g != group], group)
    tr.task_updates.append(
        TaskUpdate(id=task.id, assignee_id=assignee_id, assignee_group=group, reassign=True, candidates=candidates)
    )
    details: dict[str, Any] = {
        "old_assignee": task.assignee_id,
        "new_assignee": assignee_id,
        "old_group": task.assignee_group,
        "new_group": group,
    }
    if reason:
        details["reason"] = reason
    tr.record_audit(task.id, action, actor, details)
    tr.emit(
        HumanTaskReassigned,
        task_id=task.id,
        step_name=task.step_name,
        old_assignee=task.assignee_id,
        new_assignee=assignee_id,
        assignee_group=group,
        reassigned_by=actor,
    )
