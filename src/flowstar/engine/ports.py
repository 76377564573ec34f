"""The ports an engine is assembled from: a store and a dispatcher (plus bus and clock).

``Store`` declares everything the engine uses of a store; ``Outbox`` and
``PendingActivations`` are the narrower parts the outbox relay and the reconciler need.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol

from flowstar.engine.activation import ActivationRun
from flowstar.model.bulk import BulkOperation
from flowstar.model.definition import WorkflowDefinition
from flowstar.model.enums import TaskStatus, WorkflowStatus
from flowstar.model.events import WorkflowEvent
from flowstar.model.pages import InstanceQuery, TaskQuery
from flowstar.model.state import CommitPlan, HumanTask, InstanceState, SignalEntry, StepRecord, TaskAuditEntry, Token

__all__ = ["ActivationRunner", "Dispatcher", "Outbox", "PendingActivations", "Store"]

ActivationRunner = Callable[[str, str], Awaitable[None]]


class PendingActivations(Protocol):
    """The activations a store holds that a dispatcher must run (what a reconciler reads)."""

    async def pending_tokens(self, due_before: datetime | None = None) -> list[tuple[str, Token]]:
        """``(instance_id, token)`` for every dispatchable token of an active instance.

        With ``due_before``, only the instances whose earliest dispatchable token was due
        (or created) at or before that time; all of their dispatchable tokens.
        """


class Outbox(Protocol):
    """Events committed with their transition and not yet published (what a relay drains)."""

    async def take_outbox(self, limit: int = 500) -> list[tuple[int, WorkflowEvent]]:
        """The oldest unpublished events, with their outbox ids, in commit order."""

    async def delete_outbox(self, ids: Sequence[int]) -> None:
        """Forget events that were published."""


class Store(PendingActivations, Protocol):
    """Where instance state lives.  ``commit`` is the only write path.

    Attributes:
        outbox: whether ``commit`` also stores the plan's events for a relay to publish
            (then the engine builds events even without an event bus).
    """

    outbox: bool

    async def ensure_definition(self, definition: WorkflowDefinition) -> None:
        """Record a definition version before its first instance is stored."""

    async def load_instance(self, instance_id: str) -> InstanceState | None:
        """The instance's state, or None: the one committed last, or (from a store that
        caches) the one this process committed last; after ``forget``, the committed one."""

    async def commit(self, plan: CommitPlan) -> bool:
        """Apply ``plan`` atomically if the instance is still at ``plan.expected_version``.

        Returns False (and writes nothing) when another commit got there first, or when it
        creates an instance whose id or ``idempotency_key`` another instance has.
        """

    async def instance_for_key(self, idempotency_key: str) -> str | None:
        """The id of the instance started with this (tenant-scoped) idempotency key, if any."""

    async def record_signal(self, entry: SignalEntry) -> None:
        """Log a signal sent or an event reported (waits that begin later look it up)."""

    async def mark_delivered(self, entry_id: str, at: datetime) -> None:
        """Every instance that waited for the logged entry when it came has been woken."""

    async def undelivered_signals(self, recorded_before: datetime, limit: int = 500) -> list[SignalEntry]:
        """Logged entries older than ``recorded_before`` whose delivery never finished, oldest first."""

    async def find_signals(
        self, kind: str, name: str, *, tenant_id: str | None, since: datetime, entity_id: str | None = None
    ) -> list[SignalEntry]:
        """Logged entries of ``kind`` and ``name`` in the tenant recorded at or after ``since``.

        Oldest first, at most ``flowstar.model.signals.SIGNAL_SCAN_LIMIT``; with ``entity_id``
        only those about that entity.
        """

    async def waiting_instances(
        self, key: str, *, tenant_id: str | None, after: str | None = None, limit: int = 500
    ) -> list[str]:
        """Ids of active instances of the tenant waiting for ``key`` (``"signal:approval"``).

        Ordered by id, at most ``limit``, those after ``after`` (keyset pages).
        """

    def forget(self, instance_id: str) -> None:
        """Drop any state of the instance the store keeps cached: the next load reads it."""

    async def save_bulk(self, operation: BulkOperation) -> None:
        """Store a bulk operation (a new one, or its progress)."""

    async def get_bulk(self, operation_id: str) -> BulkOperation | None:
        """One bulk operation by id."""

    async def bulk_for_key(self, request_key: str) -> BulkOperation | None:
        """The bulk operation submitted with this (tenant-scoped) idempotency key."""

    async def unfinished_bulk(
        self, *, request_hash: str | None = None, updated_before: datetime | None = None
    ) -> list[BulkOperation]:
        """Pending or running bulk operations (of that request, or saved before that time), oldest first."""

    async def get_task(self, task_id: str) -> HumanTask | None:
        """One task by id."""

    async def task_audit(self, task_id: str) -> list[TaskAuditEntry]:
        """The task's audit trail, oldest first."""

    async def find_tasks(
        self,
        *,
        instance_id: str | None = None,
        step_name: str | None = None,
        status: TaskStatus | None = None,
        assignee_id: str | None = None,
        assignee_group: str | None = None,
        tenant_id: str | None = None,
    ) -> list[HumanTask]:
        """Tasks matching every given filter, oldest first."""

    async def step_records(self, instance_id: str) -> list[StepRecord]:
        """Every step execution of an instance, in start order."""

    async def find_instances(
        self,
        *,
        workflow_name: str | None = None,
        status: WorkflowStatus | Sequence[WorkflowStatus] | None = None,
        tenant_id: str | None = None,
        created_by: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[InstanceState], int]:
        """A page of instances (newest first) and the total count."""

    async def active_versions(self, tenant_id: str | None = None) -> dict[tuple[str, str], int]:
        """How many instances are running or waiting, by ``(workflow name, version)``."""

    async def find_task_page(self, query: TaskQuery) -> list[HumanTask]:
        """Up to ``query.limit + 1`` tasks of the query after its key, oldest first by
        ``(created_at, id)`` (the row beyond the page tells that another page follows)."""

    async def find_instance_page(self, query: InstanceQuery) -> list[InstanceState]:
        """Up to ``query.limit + 1`` instances of the query after its key, newest first by
        ``(started_at, id)``."""

    async def close(self) -> None:
        """Release connections."""


class Dispatcher(Protocol):
    """Gets committed activations executed, now or at their due time."""

    def bind(self, runner: ActivationRunner) -> None:
        """Set the coroutine that executes one activation (instance id, token id)."""

    async def dispatch(self, instance_id: str, tokens: Sequence[Token]) -> None:
        """Hand over tokens whose activation was just committed."""

    async def may_chain(self, run: ActivationRun, token: Token) -> bool:
        """Whether ``run`` may execute ``token`` itself, right after the step that activated it.

        ``token`` is committed and due now.  True: the engine does not dispatch it and runs
        it next in the same task (the dispatcher contributes its limits: the SAQ one counts
        steps per job, watches the job's time budget and takes the activation's lease).
        False: the engine dispatches it as usual.
        """

    async def settled(self, instance_id: str) -> None:
        """Return when no activation of the instance is runnable in this process."""

    async def close(self) -> None:
        """Stop dispatching; in-flight activations finish or are handed back."""
