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
    "MAX_PRIORITY",
    "MIN_PRIORITY",
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
    "WAIT_KINDS",
    "SignalEntry",
    "WaitInfo",
    "scoped_idempotency_key",
]

TokenKind = Literal["run", "timer", "human", "webhook", "escalation", "signal", "event"]
DISPATCHED_KINDS = frozenset(("run", "timer", "escalation"))
# Tokens that wait for a signal or an external event (found by name, see ``waiting_for``).
WAIT_KINDS = frozenset(("signal", "event"))
# The context's step_history keeps the most recent entries only, so an instance that loops
# for months does not grow its row without bound; the full history is in the step records.
HISTORY_LIMIT = 50


class WaitInfo(msgspec.Struct, kw_only=True, gc=False):
    """What an open wait of a command (``Sleep``, ``Wait``) or a signal/event step waits for.

    Attributes:
        name: the signal's or event's name (``signal`` and ``event`` tokens).
        then: the step entered when this token ends the wait; None follows the edges out of
            the waiting step (a graph workflow's signal or event step).
        group: tokens of one wait share it: the first to end the wait voids the others.
        since: signals and events recorded at or after this time count (the lookback).
        filter: a safe expression over an event's payload; events it rejects pass by.
    """

    name: str | None = None
    then: str | None = None
    group: str | None = None
    since: datetime | None = None
    filter: str | None = None


class Token(msgspec.Struct, kw_only=True, gc=False):
    """One unit of work in flight: a step activation to run, or an open wait.

    ``run``, ``timer`` and ``escalation`` tokens are handed to a dispatcher (``due_at``
    says when); ``human`` and ``webhook`` tokens wait for a call from outside.  An
    ``escalation`` token belongs to the open task ``task_id``; ``escalation`` is its index
    in the step's ``escalations``.  ``signal`` and ``event`` tokens wait for a signal or an
    external event named in ``wait``; a ``timer`` with ``wait`` is a command's sleep or a
    wait's timeout.
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
    wait: WaitInfo | None = None

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
    # The last signal or event of each wait key ("signal:name") the instance consumed, as
    # [recorded_at ISO, entry id]: a later wait's lookback starts after it (never twice).
    deliveries: dict[str, list[str]] = msgspec.field(default_factory=dict)
    started_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None

    @property
    def waiting_for(self) -> list[str]:
        """The wait keys of its open signal and event waits (``"signal:approval"``), sorted."""
        return sorted({f"{t.kind}:{t.wait.name}" for t in self.tokens.values() if t.kind in WAIT_KINDS and t.wait})

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


# The range of a task's priority (higher first).
MIN_PRIORITY = 0
MAX_PRIORITY = 100


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
    # Signal and event waits the plan opened: the engine looks for ones that came early.
    waits: Sequence[Token] = ()

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


class SignalEntry(msgspec.Struct, kw_only=True, gc=False):
    """A signal sent or an external event reported, as the store logs it.

    The log lets a wait that begins after its signal still receive it (the lookback).

    Attributes:
        kind: ``signal`` or ``event``.
        instance_id: the one instance a signal is for; None for every waiting instance.
        entity_id: the entity an event is about (``report_event``).
        occurs_at: the event's own time (an appointment's), for event-triggered workflows.
    """

    id: str
    kind: Literal["signal", "event"]
    name: str
    tenant_id: str | None = None
    instance_id: str | None = None
    entity_id: str | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    occurs_at: datetime | None = None
    recorded_at: datetime

    @property
    def key(self) -> str:
        """The wait key it ends (``"signal:approval"``)."""
        return f"{self.kind}:{self.name}"
