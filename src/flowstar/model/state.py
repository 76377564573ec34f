"""The records the engine stores: instance state, tokens, human tasks, step executions.

These are plain msgspec Structs so that every backend (memory, SQL, a job payload) encodes
them the same way.  A ``CommitPlan`` is everything one transition writes, applied by a store
in a single transaction, and only if the instance's version is still the one it was built on.

They are declared ``gc=False``: they hold only JSON data, strings and each other, never a
reference back, so they cannot form cycles, and keeping them out of the cyclic garbage
collector saves its scans on the hot path (about 4% of the instructions per step).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec

from flowstar.model.enums import StepStatus, TaskStatus, WorkflowStatus
from flowstar.model.errors import ValidationError
from flowstar.model.events import WorkflowEvent

__all__ = [
    "HISTORY_LIMIT",
    "IDEMPOTENCY_KEY_LIMIT",
    "CommitPlan",
    "HistoryEntry",
    "HumanTask",
    "InstanceState",
    "RecordUpdate",
    "StepRecord",
    "DISPATCHED_KINDS",
    "TaskAuditAction",
    "TaskAuditEntry",
    "TaskUpdate",
    "Token",
    "TokenKind",
    "scoped_idempotency_key",
]

TokenKind = Literal["run", "timer", "human", "webhook", "escalation"]
DISPATCHED_KINDS = frozenset(("run", "timer", "escalation"))
# The context's step_history keeps the most recent entries only, so an instance that loops
# for months does not grow its row without bound; the full history is in the step records.
HISTORY_LIMIT = 50


class Token(msgspec.Struct, kw_only=True, gc=False):
    """One unit of work in flight: a step activation to run, or an open wait.

    ``run``, ``timer`` and ``escalation`` tokens are handed to a dispatcher (``due_at``
    says when); ``human`` and ``webhook`` tokens wait for a call from outside.  An
    ``escalation`` token belongs to the open task ``task_id``; ``escalation`` is its index
    in the step's ``escalations``.
    """

    id: str
    step: str
    kind: TokenKind = "run"
    attempt: int = 1
    due_at: datetime | None = None
    task_id: str | None = None
    record_id: str | None = None
    created_at: datetime
    escalation: int | None = None

    @property
    def dispatchable(self) -> bool:
        """Whether a dispatcher must run this token (as opposed to waiting for a caller)."""
        return self.kind in DISPATCHED_KINDS


class HistoryEntry(msgspec.Struct, array_like=True, gc=False):
    """A compact line of ``step_history``."""

    step: str
    status: str
    attempt: int
    at: datetime
    # Who completed the step, for waits a person finished (``context.user_id`` after it).
    by: str | None = None


class InstanceState(msgspec.Struct, kw_only=True, gc=False):
    """The state of record of one workflow instance."""

    id: str
    workflow_name: str
    workflow_version: str
    status: WorkflowStatus
    data: dict[str, Any]
    version: int = 0
    tokens: dict[str, Token] = msgspec.field(default_factory=dict)
    joins: dict[str, list[str]] = msgspec.field(default_factory=dict)
    current_step: str | None = None
    error: str | None = None
    failed_step: str | None = None
    tenant_id: str | None = None
    created_by: str | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    # The start's idempotency key, scoped to the tenant (see ``scoped_idempotency_key``):
    # unique among all instances, so a repeated start finds the instance it made.
    idempotency_key: str | None = None
    history: list[HistoryEntry] = msgspec.field(default_factory=list)
    started_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None

    @property
    def next_due_at(self) -> datetime | None:
        """The earliest due time of a dispatchable token (for indexing timers)."""
        dues = [t.due_at for t in self.tokens.values() if t.dispatchable and t.due_at is not None]
        return min(dues) if dues else None


class StepRecord(msgspec.Struct, kw_only=True, gc=False):
    """One execution (attempt) of one step.

    The record of a ``run`` token's outcome has the token's id: one activation has exactly
    one outcome, and the id then costs nothing to make.  Records of steps inside a group and
    of waits (opened before their token exists) get ids of their own.
    """

    id: str
    instance_id: str
    step_name: str
    step_type: str
    status: StepStatus
    attempt: int = 1
    input_data: dict[str, Any] | None = None
    output_data: Any = None
    error: str | None = None
    started_at: datetime
    completed_at: datetime | None = None
    assigned_to: str | None = None
    completed_by: str | None = None
    token_id: str | None = None
    parent_step: str | None = None
    tenant_id: str | None = None


class RecordUpdate(msgspec.Struct, kw_only=True, gc=False):
    """A change to a waiting step record (a human, timer or webhook step finishing)."""

    id: str
    status: StepStatus
    completed_at: datetime
    output_data: Any = None
    error: str | None = None
    completed_by: str | None = None


class HumanTask(msgspec.Struct, kw_only=True, gc=False):
    """A task in the inbox.

    Attributes:
        candidate_users: users who may claim the task (besides ``assignee_id``).
        candidate_groups: groups whose members may claim it; ``assignee_group`` counts as
            one more (it is never repeated here).
        claimed_by: the user working on it (claimed), or None.
        priority: 0..100, higher first (default 50).
        follow_up_at: when to look at it again (a date shown in the inbox, no timer).
    """

    id: str
    instance_id: str
    workflow_name: str
    step_name: str
    title: str
    description: str | None = None
    form_schema: dict[str, Any] | None = None
    assignee_id: str | None = None
    assignee_group: str | None = None
    due_at: datetime | None = None
    reminder_at: datetime | None = None
    status: TaskStatus = TaskStatus.PENDING
    created_at: datetime
    completed_at: datetime | None = None
    completed_by: str | None = None
    data: dict[str, Any] | None = None
    tenant_id: str | None = None
    step_execution_id: str | None = None
    candidate_users: list[str] = msgspec.field(default_factory=list)
    candidate_groups: list[str] = msgspec.field(default_factory=list)
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    priority: int = 50
    follow_up_at: datetime | None = None


TaskAuditAction = Literal[
    "created", "claimed", "unclaimed", "reassigned", "commented", "completed", "canceled", "reminded", "escalated"
]


class TaskAuditEntry(msgspec.Struct, kw_only=True, gc=False):
    """One line of a task's audit trail: who did what to it, and when.

    Attributes:
        action: created, claimed, unclaimed, reassigned, commented, completed, canceled,
            reminded or escalated.
        actor: the user who acted; None for the engine itself (or a trusted caller that
            named nobody).
        details: what the action changed (a comment's ``text``, a reassignment's ``reason``...).
    """

    id: str
    task_id: str
    instance_id: str
    tenant_id: str | None = None
    action: TaskAuditAction
    actor: str | None = None
    at: datetime
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class TaskUpdate(msgspec.Struct, kw_only=True, gc=False):
    """A change to a task: completion, cancellation or reassignment."""

    id: str
    status: TaskStatus | None = None
    completed_at: datetime | None = None
    completed_by: str | None = None
    data: dict[str, Any] | None = None
    assignee_id: str | None = None
    assignee_group: str | None = None
    reassign: bool = False
    # A claim change sets both claim fields (None: unclaimed); a reassignment clears them.
    claim: bool = False
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    # The task's full candidate set as (kind, name) rows when it changes (a new group).
    candidates: tuple[tuple[str, str], ...] | None = None


class CommitPlan(msgspec.Struct, kw_only=True, gc=False):
    """Everything one transition writes, committed atomically by a store.

    Attributes:
        instance: the instance's new state (its ``version`` is ``expected_version + 1``).
        expected_version: the version the plan was computed from; 0 creates the instance.
        dispatch: tokens to hand to the dispatcher once the commit succeeded.
        audit: task audit trail entries the change records.

    The other fields default to empty tuples, not lists: most plans leave most of them empty,
    and a plan is built for every step (seven fresh lists cost a third of its making).
    """

    instance: InstanceState
    expected_version: int
    new_records: Sequence[StepRecord] = ()
    record_updates: Sequence[RecordUpdate] = ()
    new_tasks: Sequence[HumanTask] = ()
    task_updates: Sequence[TaskUpdate] = ()
    events: Sequence[WorkflowEvent] = ()
    dispatch: Sequence[Token] = ()
    voided: Sequence[str] = ()
    audit: Sequence[TaskAuditEntry] = ()

    @property
    def created(self) -> bool:
        """Whether this plan creates the instance."""
        return self.expected_version == 0


# Longest idempotency key a start accepts (the HTTP header's limit too).
IDEMPOTENCY_KEY_LIMIT = 255


def scoped_idempotency_key(tenant_id: str | None, key: str | None) -> str | None:
    """The stored form of a start's idempotency key: unique per tenant, unambiguous.

    Raises:
        ValidationError: an empty key, or one longer than ``IDEMPOTENCY_KEY_LIMIT``.
    """
    if key is None:
        return None
    if not isinstance(key, str) or not key or len(key) > IDEMPOTENCY_KEY_LIMIT:
        raise ValidationError(f"an idempotency key is a string of 1 to {IDEMPOTENCY_KEY_LIMIT} characters")
    return msgspec.json.encode([tenant_id, key]).decode()
