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

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import msgspec

from flowstar.model.conditions import ConditionEvaluationError
from flowstar.model.context import WorkflowContext
from flowstar.model.definition import WorkflowDefinition
from flowstar.model.enums import (
    TERMINAL_WORKFLOW_STATUSES,
    StepStatus,
    StepType,
    TaskStatus,
    WorkflowStatus,
)
from flowstar.model.errors import (
    InvalidTransitionError,
    StepExecutionError,
    TaskAlreadyCompletedError,
)
from flowstar.model.events import (
    HumanTaskCompleted,
    HumanTaskCreated,
    HumanTaskReassigned,
    StepCompleted,
    StepExecuted,
    StepFailed,
    StepSkipped,
    StepStarted,
    WorkflowCanceled,
    WorkflowCompleted,
    WorkflowEvent,
    WorkflowFailed,
    WorkflowRetried,
    WorkflowStarted,
)
from flowstar.model.state import (
    HISTORY_LIMIT,
    CommitPlan,
    HistoryEntry,
    HumanTask,
    InstanceState,
    RecordUpdate,
    StepRecord,
    TaskUpdate,
    Token,
    TokenKind,
)
from flowstar.model.steps import BaseHumanStep
from flowstar.model.waits import TimerStep

__all__ = [
    "InnerRecord",
    "StaleTokenError",
    "StepResult",
    "apply_step_result",
    "last_actor",
    "cancel_instance",
    "reassign_task",
    "resume_wait",
    "retry_instance",
    "start_instance",
]

NewId = Callable[[], str]

_RESULT_STATUS = {
    "succeeded": StepStatus.SUCCEEDED,
    "skipped": StepStatus.SKIPPED,
    "failed": StepStatus.FAILED,
}


class StaleTokenError(InvalidTransitionError):
    """The token was already consumed or voided: its outcome must not be committed."""


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


class _Transition:
    """Builds one CommitPlan from a copy of the instance state."""

    def __init__(
        self, definition: WorkflowDefinition, state: InstanceState, now: datetime, new_id: NewId, events: bool = True
    ) -> None:
        self.definition = definition
        self.events = events
        self.graph = definition.get_graph()
        self.step_types = self.graph.step_types
        self.expected_version = state.version
        # The data a step ran on (its record's input), before the transition changes a copy.
        self.input_data = state.data
        self.state = msgspec.structs.replace(
            state,
            tokens=dict(state.tokens),
            joins={k: list(v) for k, v in state.joins.items()} if state.joins else {},
            history=list(state.history),
            data=dict(state.data),
        )
        self.now = now
        self.new_id = new_id
        # The plan's lists, kept here with their list type: the plan's fields are sequences
        # (empty tuples unless a transition has something to put there).
        self.emitted: list[WorkflowEvent] = []
        self.dispatch: list[Token] = []
        self.new_records: list[StepRecord] = []
        self.new_tasks: list[HumanTask] = []
        self.voided: list[str] = []
        self.record_updates: list[RecordUpdate] = []
        self.task_updates: list[TaskUpdate] = []
        self.plan = CommitPlan(
            instance=self.state,
            expected_version=state.version,
            new_records=self.new_records,
            record_updates=self.record_updates,
            new_tasks=self.new_tasks,
            task_updates=self.task_updates,
            events=self.emitted,
            dispatch=self.dispatch,
            voided=self.voided,
        )

    # -- events and records -------------------------------------------------------------

    def emit(self, event_type: type[WorkflowEvent], **fields: Any) -> None:
        if not self.events:
            return
        self.emitted.append(
            event_type(
                instance_id=self.state.id,
                workflow_name=self.state.workflow_name,
                workflow_version=self.state.workflow_version,
                timestamp=fields.pop("timestamp", self.now),
                tenant_id=self.state.tenant_id,
                **fields,
            )
        )

    def remember(self, step: str, status: StepStatus, attempt: int = 1, by: str | None = None) -> None:
        history = self.state.history
        history.append(HistoryEntry(step, status, attempt, self.now, by))
        if len(history) > HISTORY_LIMIT:
            del history[: len(history) - HISTORY_LIMIT]

    def step_type(self, step_name: str) -> StepType:
        return self.step_types[step_name]

    # -- tokens -------------------------------------------------------------------------

    def take(self, token_id: str) -> Token:
        token = self.state.tokens.pop(token_id, None)
        if token is None:
            raise StaleTokenError(f"token {token_id} of instance {self.state.id} is no longer active")
        return token

    def add_token(self, step: str, kind: TokenKind, **fields: Any) -> Token:
        token = Token(id=self.new_id(), step=step, kind=kind, created_at=self.now, **fields)
        self.state.tokens[token.id] = token
        self.state.current_step = step
        if kind in ("run", "timer"):  # Token.dispatchable, without the property call
            self.dispatch.append(token)
        return token

    def enter(self, step_name: str, attempt: int = 1, due_at: datetime | None = None) -> None:
        """Activate ``step_name``: schedule a run, or open the wait a waiting step needs."""
        kind = self.step_types[step_name]
        if kind is StepType.HUMAN:
            step = self.definition.steps[step_name]
            assert isinstance(step, BaseHumanStep)
            self.open_task(step)
        elif kind is StepType.TIMER:
            step = self.definition.steps[step_name]
            assert isinstance(step, TimerStep)
            try:
                wake = step.wake_at(self.state.data, self.now)
            except StepExecutionError as exc:
                self.fail(str(exc), step_name)
                return
            record = self.waiting_record(step_name, kind)
            self.add_token(step_name, "timer", due_at=wake, record_id=record.id)
        elif kind is StepType.WEBHOOK:
            record = self.waiting_record(step_name, kind)
            self.add_token(step_name, "webhook", record_id=record.id)
        elif due_at is None and attempt == 1:
            self.add_token(step_name, "run")
        else:
            self.add_token(step_name, "run", attempt=attempt, due_at=due_at)

    def waiting_record(self, step_name: str, kind: StepType, assigned_to: str | None = None) -> StepRecord:
        record = StepRecord(
            id=self.new_id(),
            instance_id=self.state.id,
            step_name=step_name,
            step_type=kind.value,
            status=StepStatus.WAITING,
            input_data=self.state.data,
            started_at=self.now,
            assigned_to=assigned_to,
            tenant_id=self.state.tenant_id,
        )
        self.new_records.append(record)
        self.emit(StepStarted, step_name=step_name, step_type=kind.value)
        return record

    def open_task(self, step: BaseHumanStep) -> None:
        assignee = step.resolve_assignee(self.state.data)
        record = self.waiting_record(step.name, StepType.HUMAN, assigned_to=assignee)
        task = HumanTask(
            id=self.new_id(),
            instance_id=self.state.id,
            workflow_name=self.state.workflow_name,
            step_name=step.name,
            title=step.title,
            description=step.description or None,
            form_schema=dict(step.form_schema) if step.form_schema is not None else None,
            assignee_id=assignee,
            assignee_group=step.assignee_group,
            due_at=step.resolve_due(self.now),
            created_at=self.now,
            tenant_id=self.state.tenant_id,
            step_execution_id=record.id,
        )
        self.new_tasks.append(task)
        self.add_token(step.name, "human", task_id=task.id, record_id=record.id)
        self.emit(
            HumanTaskCreated,
            task_id=task.id,
            step_name=step.name,
            task_title=task.title,
            assignee=assignee,
            assignee_group=task.assignee_group,
            due_at=task.due_at,
        )

    # -- routing ------------------------------------------------------------------------

    def route(self, step_name: str, targets: list[str] | None = None) -> None:
        """Follow the edges out of a finished step (or the gateway's chosen targets)."""
        if self.state.status is WorkflowStatus.FAILED:
            return
        if targets is None:
            if step_name in self.definition.terminal_steps:
                return
            fixed = self.graph.fixed_targets.get(step_name)
            try:
                if fixed is not None:
                    targets = list(fixed)
                else:
                    context = WorkflowContext(data=self.state.data, current_step=step_name)
                    targets = [e.target for e in self.graph.outgoing.get(step_name, ()) if e.matches(context)]
            except ConditionEvaluationError as exc:
                self.fail(f"step {step_name!r}: {exc}", step_name)
                return
            if not targets:
                self.fail(f"no edge out of step {step_name!r} matched the context", step_name)
                return
        for target in targets:
            self.arrive(target, step_name)

    def arrive(self, target: str, source: str) -> None:
        if target in self.graph.joins:
            self.state.joins.setdefault(target, []).append(source)
        else:
            self.enter(target)

    def fire_ready_joins(self) -> None:
        fired = True
        while fired and self.state.status is not WorkflowStatus.FAILED:
            fired = False
            for join in list(self.state.joins):
                if join not in self.state.joins:
                    continue
                if any(t.step != join and self.graph.can_reach(t.step, join) for t in self.state.tokens.values()):
                    continue
                if any(self.upstream_join(other, join) for other in self.state.joins if other != join):
                    # A pending join that feeds this one (a diamond inside a diamond) fires
                    # first; its branch then arrives here, so this join still runs once.
                    continue
                del self.state.joins[join]
                self.enter(join)
                fired = True

    def upstream_join(self, other: str, join: str) -> bool:
        """Whether pending join ``other`` can still deliver a branch to ``join``.

        Joins on one cycle reach each other both ways; neither blocks the other there, or
        a loop would never fire.
        """
        return self.graph.can_reach(other, join) and not self.graph.can_reach(join, other)

    # -- endings ------------------------------------------------------------------------

    def fail(self, error: str, step_name: str | None) -> None:
        self.void_all()
        self.state.status = WorkflowStatus.FAILED
        self.state.error = error
        self.state.failed_step = step_name
        self.state.current_step = step_name
        self.state.completed_at = self.now
        self.emit(WorkflowFailed, error=error, step_name=step_name)

    def void_all(self, task_status: TaskStatus = TaskStatus.CANCELED) -> None:
        for token in self.state.tokens.values():
            self.voided.append(token.id)
            if token.record_id is not None:
                self.record_updates.append(
                    RecordUpdate(id=token.record_id, status=StepStatus.CANCELED, completed_at=self.now)
                )
            if token.task_id is not None:
                self.task_updates.append(TaskUpdate(id=token.task_id, status=task_status, completed_at=self.now))
        self.state.tokens = {}
        self.state.joins = {}
        self.dispatch.clear()

    def finish(self) -> CommitPlan:
        state = self.state
        if state.joins and state.status not in TERMINAL_WORKFLOW_STATUSES:
            self.fire_ready_joins()
        if state.status not in TERMINAL_WORKFLOW_STATUSES:
            if not state.tokens:
                state.status = WorkflowStatus.COMPLETED
                state.completed_at = self.now
                self.emit(WorkflowCompleted, final_step=state.current_step)
            else:
                state.status = WorkflowStatus.WAITING
                for token in state.tokens.values():
                    if token.kind == "run":
                        state.status = WorkflowStatus.RUNNING
                        break
        state.version = self.expected_version + 1
        state.updated_at = self.now
        return self.plan


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
) -> CommitPlan:
    """Create an instance and activate its initial step."""
    state = InstanceState(
        id=instance_id,
        workflow_name=definition.name,
        workflow_version=definition.version,
        status=WorkflowStatus.RUNNING,
        data=data,
        tenant_id=tenant_id,
        created_by=created_by,
        metadata=metadata or {},
        started_at=now,
        updated_at=now,
    )
    tr = _Transition(definition, state, now, new_id, events)
    tr.emit(WorkflowStarted, initial_step=definition.initial_step, created_by=created_by)
    tr.enter(definition.initial_step)
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
    tr = _Transition(definition, state, now, new_id, events)
    token = tr.take(token_id)
    step_type: str = tr.step_types[token.step]
    base = {"step_name": token.step, "step_type": step_type} if events else {}
    if events:
        tr.emit(StepStarted, attempt=token.attempt, timestamp=result.started_at, **base)
    _record_outcome(tr, token, step_type, result)
    duration = (result.finished_at - result.started_at).total_seconds() * 1000
    if result.status == "failed":
        error = result.error or "step failed"
        tr.emit(StepFailed, error=error, attempt=token.attempt, retry_at=result.retry_at, **base)
        tr.emit(StepExecuted, attempt=token.attempt, status="failed", error=error, duration_ms=duration, **base)
        if result.retry_at is not None:
            tr.enter(token.step, attempt=token.attempt + 1, due_at=result.retry_at)
        else:
            # What the step wrote before failing for good stays, for whoever debugs it (a
            # retried attempt's writes are dropped: the next attempt starts afresh).
            tr.state.data.update(result.changes)
            tr.fail(f"step {token.step!r} failed after {token.attempt} attempt(s): {error}", token.step)
        return tr.finish()
    if result.status == "skipped":
        tr.emit(StepSkipped, **base)
        tr.emit(StepExecuted, attempt=token.attempt, status="skipped", duration_ms=duration, **base)
        tr.route(token.step)
        return tr.finish()
    tr.state.data.update(result.changes)
    tr.emit(StepCompleted, attempt=token.attempt, output=result.output, duration_ms=duration, **base)
    tr.emit(StepExecuted, attempt=token.attempt, status="succeeded", duration_ms=duration, **base)
    if result.targets is not None and not _gateway_targets_valid(tr, token.step, result.targets):
        return tr.finish()
    tr.route(token.step, result.targets)
    return tr.finish()


def _record_outcome(tr: _Transition, token: Token, step_type: str, result: StepResult) -> None:
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


def _gateway_targets_valid(tr: _Transition, step: str, targets: list[str]) -> bool:
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
    tr = _Transition(definition, state, now, new_id, events)
    try:
        token = tr.take(token_id)
    except StaleTokenError as exc:
        raise TaskAlreadyCompletedError(f"step {exc} was completed or canceled already") from exc
    kind = tr.step_type(token.step).value
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
        tr.task_updates.append(
            TaskUpdate(
                id=token.task_id,
                status=TaskStatus.COMPLETED,
                completed_at=now,
                completed_by=completed_by,
                data=changes,
            )
        )
        tr.emit(
            HumanTaskCompleted,
            task_id=token.task_id,
            step_name=token.step,
            completed_by=completed_by or "",
            data=changes,
        )
    tr.state.data.update(changes)
    tr.remember(token.step, StepStatus.SUCCEEDED, by=completed_by)
    duration = (now - token.created_at).total_seconds() * 1000
    tr.emit(StepCompleted, step_name=token.step, step_type=kind, output=output, duration_ms=duration)
    tr.emit(StepExecuted, step_name=token.step, step_type=kind, status="succeeded", duration_ms=duration)
    tr.route(token.step)
    return tr.finish()


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
    tr = _Transition(definition, state, now, new_id, events)
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
    tr = _Transition(definition, state, now, new_id, events)
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
) -> CommitPlan:
    """Move an open task to another assignee and/or group."""
    if task.status is not TaskStatus.PENDING or task.id not in {t.task_id for t in state.tokens.values()}:
        raise TaskAlreadyCompletedError(f"task {task.id} is {task.status.value} and cannot be reassigned")
    tr = _Transition(definition, state, now, new_id, events)
    group = assignee_group if assignee_group is not None else task.assignee_group
    tr.task_updates.append(TaskUpdate(id=task.id, assignee_id=assignee_id, assignee_group=group, reassign=True))
    tr.emit(
        HumanTaskReassigned,
        task_id=task.id,
        step_name=task.step_name,
        old_assignee=task.assignee_id,
        new_assignee=assignee_id,
        assignee_group=group,
        reassigned_by=reassigned_by,
    )
    return tr.finish()
