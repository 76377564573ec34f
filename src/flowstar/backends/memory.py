"""The in-memory store: the state of record for the local engine, and the twin of the SQL one.

It applies a plan with the SQL store's semantics (``flowstar.model.changes``: what an update
sets, what ``None`` means, which fields keep their first value) and answers queries in the
same order, so that an engine behaves the same on either.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from flowstar.model.bulk import BulkOperation
from flowstar.model.changes import keep_creation_fields, record_changes, task_changes
from flowstar.model.definition import WorkflowDefinition
from flowstar.model.enums import ACTIVE_WORKFLOW_STATUSES, TaskStatus, WorkflowStatus
from flowstar.model.pages import InstanceQuery, TaskQuery
from flowstar.model.signals import SIGNAL_SCAN_LIMIT
from flowstar.model.state import (
    CommitPlan,
    HumanTask,
    InstanceState,
    RecordUpdate,
    SignalEntry,
    StepRecord,
    TaskAuditEntry,
    TaskUpdate,
    Token,
)

__all__ = ["MemoryStore"]


class MemoryStore:
    """Keeps everything in dictionaries.

    ``commit`` contains no ``await``, so on one event loop it is atomic; the version check
    still rejects plans computed from an outdated state, exactly as the SQL store does.
    States are replaced, never mutated, so a loaded state is a stable snapshot.
    """

    # Events stay in the process: there is no outbox to write them to.
    outbox: bool = False

    def __init__(self) -> None:
        self.instances: dict[str, InstanceState] = {}
        self.records: dict[str, list[StepRecord]] = {}
        self.tasks: dict[str, HumanTask] = {}
        self.audit: dict[str, list[TaskAuditEntry]] = {}
        self.definitions: dict[tuple[str, str], dict[str, Any]] = {}
        self._keys: dict[str, str] = {}  # idempotency key -> instance id
        self.signals: list[SignalEntry] = []
        self._delivered: set[str] = set()
        self.bulk: dict[str, bytes] = {}  # encoded, as a database would keep them

    async def ensure_definition(self, definition: WorkflowDefinition) -> None:
        """Remember the definition's description."""
        self.definitions[(definition.name, definition.version)] = definition.describe()

    async def load_instance(self, instance_id: str) -> InstanceState | None:
        """The committed state, or None."""
        return self.instances.get(instance_id)

    async def instance_for_key(self, idempotency_key: str) -> str | None:
        """The id of the instance started with this idempotency key, if any."""
        return self._keys.get(idempotency_key)

    def _claim_key(self, instance: InstanceState) -> bool:
        """Take a new instance's idempotency key; False if an earlier start has it (as the
        SQL store's unique index answers)."""
        key = instance.idempotency_key
        if key is None:
            return True
        if key in self._keys:
            return False
        self._keys[key] = instance.id
        return True

    async def commit(self, plan: CommitPlan) -> bool:
        """Apply ``plan`` if the instance is still at ``plan.expected_version``."""
        instance = plan.instance
        instance_id = instance.id
        current = self.instances.get(instance_id)
        if current is None:
            if plan.expected_version != 0 or not self._claim_key(instance):
                return False
        elif current.version != plan.expected_version:
            return False
        else:
            instance = keep_creation_fields(instance, current)
        self.instances[instance_id] = instance
        if plan.new_records:
            records = self.records.get(instance_id)
            if records is None:
                self.records[instance_id] = list(plan.new_records)
            else:
                records.extend(plan.new_records)
        if plan.record_updates:
            self._update_records(instance_id, plan.record_updates)
        if plan.new_tasks or plan.task_updates:
            self._update_tasks(plan.new_tasks, plan.task_updates)
        if plan.audit:
            for entry in plan.audit:
                self.audit.setdefault(entry.task_id, []).append(entry)
        return True

    def _update_records(self, instance_id: str, updates: Sequence[RecordUpdate]) -> None:
        records = self.records.get(instance_id, [])
        by_id = {r.id: i for i, r in enumerate(records)}
        for update in updates:
            index = by_id.get(update.id)
            if index is None:
                continue
            records[index] = msgspec.structs.replace(records[index], **record_changes(update))

    def _update_tasks(self, new_tasks: Sequence[HumanTask], updates: Sequence[TaskUpdate]) -> None:
        for task in new_tasks:
            self.tasks[task.id] = task
        for change in updates:
            current = self.tasks.get(change.id)
            if current is not None:
                self.tasks[change.id] = msgspec.structs.replace(current, **task_changes(change))

    def forget(self, instance_id: str) -> None:
        """Nothing is cached: the dictionaries are the state of record."""

    async def get_task(self, task_id: str) -> HumanTask | None:
        """One task by id."""
        return self.tasks.get(task_id)

    async def task_audit(self, task_id: str) -> list[TaskAuditEntry]:
        """The task's audit trail, oldest first."""
        return sorted(self.audit.get(task_id, []), key=lambda e: (e.at, e.id))

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
        found = [
            t
            for t in self.tasks.values()
            if (instance_id is None or t.instance_id == instance_id)
            and (step_name is None or t.step_name == step_name)
            and (status is None or t.status is status)
            and (assignee_id is None or t.assignee_id == assignee_id)
            and (assignee_group is None or t.assignee_group == assignee_group)
            and (tenant_id is None or t.tenant_id == tenant_id)
        ]
        return sorted(found, key=lambda t: (t.created_at, t.id))

    async def step_records(self, instance_id: str) -> list[StepRecord]:
        """Every step execution of an instance, in start order."""
        return sorted(self.records.get(instance_id, []), key=lambda r: (r.started_at, r.id))

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
        statuses = {status} if isinstance(status, WorkflowStatus) else set(status) if status is not None else None
        found = [
            s
            for s in self.instances.values()
            if (workflow_name is None or s.workflow_name == workflow_name)
            and (statuses is None or s.status in statuses)
            and (tenant_id is None or s.tenant_id == tenant_id)
            and (created_by is None or s.created_by == created_by)
        ]
        # Newest first, ties by id (as the SQL store orders them).
        found.sort(key=lambda s: s.id)
        found.sort(key=lambda s: s.started_at, reverse=True)
        return found[offset : offset + limit], len(found)

    async def active_versions(self, tenant_id: str | None = None) -> dict[tuple[str, str], int]:
        """How many instances are running or waiting, by ``(workflow name, version)``."""
        counts: dict[tuple[str, str], int] = {}
        for s in self.instances.values():
            if s.status in ACTIVE_WORKFLOW_STATUSES and (tenant_id is None or s.tenant_id == tenant_id):
                key = (s.workflow_name, s.workflow_version)
                counts[key] = counts.get(key, 0) + 1
        return counts

    async def find_task_page(self, query: TaskQuery) -> list[HumanTask]:
        """Up to ``query.limit + 1`` tasks after the query's key, oldest first by ``(created_at, id)``."""
        found = sorted((t for t in self.tasks.values() if query.matches(t)), key=lambda t: (t.created_at, t.id))
        return found[: query.limit + 1]

    async def find_instance_page(self, query: InstanceQuery) -> list[InstanceState]:
        """Up to ``query.limit + 1`` instances after the query's key, newest first by ``(started_at, id)``."""
        found = sorted(
            (s for s in self.instances.values() if query.matches(s)), key=lambda s: (s.started_at, s.id), reverse=True
        )
        return found[: query.limit + 1]

    async def pending_tokens(self, due_before: datetime | None = None) -> list[tuple[str, Token]]:
        """Dispatchable tokens of active instances (of those with one due before ``due_before``)."""
        found: list[tuple[str, Token]] = []
        for state in self.instances.values():
            if state.status not in ACTIVE_WORKFLOW_STATUSES:
                continue
            tokens = [t for t in state.tokens.values() if t.dispatchable]
            # As the SQL store's ``dispatch_at``: the earliest due (or creation) time.
            if tokens and (due_before is None or min(t.due_at or t.created_at for t in tokens) <= due_before):
                found.extend((state.id, t) for t in tokens)
        return found

    async def record_signal(self, entry: SignalEntry) -> None:
        """Log a signal or an event."""
        self.signals.append(entry)

    async def save_bulk(self, operation: BulkOperation) -> None:
        """Store a bulk operation (a new one, or its progress)."""
        self.bulk[operation.id] = msgspec.json.encode(operation)

    async def get_bulk(self, operation_id: str) -> BulkOperation | None:
        """One bulk operation by id."""
        body = self.bulk.get(operation_id)
        return msgspec.json.decode(body, type=BulkOperation) if body is not None else None

    async def bulk_for_key(self, request_key: str) -> BulkOperation | None:
        """The bulk operation submitted with this (tenant-scoped) idempotency key."""
        found = [op for op in self._bulk_operations() if op.request_key == request_key]
        return found[0] if found else None

    async def unfinished_bulk(
        self, *, request_hash: str | None = None, updated_before: datetime | None = None
    ) -> list[BulkOperation]:
        """Pending or running bulk operations (of that request, or saved before that time), oldest first."""
        return [
            op
            for op in self._bulk_operations()
            if not op.finished
            and (request_hash is None or op.request_hash == request_hash)
            and (updated_before is None or op.updated_at < updated_before)
        ]

    def _bulk_operations(self) -> list[BulkOperation]:
        found = [msgspec.json.decode(body, type=BulkOperation) for body in self.bulk.values()]
        return sorted(found, key=lambda op: (op.created_at, op.id))

    async def mark_delivered(self, entry_id: str, at: datetime) -> None:
        """Every instance that waited for the logged entry when it came has been woken."""
        self._delivered.add(entry_id)

    async def undelivered_signals(self, recorded_before: datetime, limit: int = 500) -> list[SignalEntry]:
        """Logged entries older than ``recorded_before`` whose delivery never finished, oldest first."""
        found = [e for e in self.signals if e.id not in self._delivered and e.recorded_at < recorded_before]
        return found[:limit]

    async def find_signals(
        self, kind: str, name: str, *, tenant_id: str | None, since: datetime, entity_id: str | None = None
    ) -> list[SignalEntry]:
        """Logged entries of ``kind`` and ``name`` in the tenant since ``since``, oldest first."""
        found = [
            e
            for e in self.signals
            if e.kind == kind
            and e.name == name
            and e.tenant_id == tenant_id
            and e.recorded_at >= since
            and (entity_id is None or e.entity_id == entity_id)
        ]
        found.sort(key=lambda e: (e.recorded_at, e.id))
        return found[:SIGNAL_SCAN_LIMIT]

    async def waiting_instances(
        self, key: str, *, tenant_id: str | None, after: str | None = None, limit: int = 500
    ) -> list[str]:
        """Ids of active instances of the tenant waiting for ``key``, by id, after ``after``."""
        found = sorted(
            s.id
            for s in self.instances.values()
            if s.tenant_id == tenant_id
            and s.status in ACTIVE_WORKFLOW_STATUSES
            and (after is None or s.id > after)
            and key in s.waiting_for
        )
        return found[:limit]

    async def close(self) -> None:
        """Nothing to release."""
