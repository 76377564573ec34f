"""Bulk operations: retry or cancel every instance matching a filter, reassign every matching task.

Pure data and rules; ``flowstar.engine.bulk`` runs them.  Each action moves an item to a
target state only if it is not there yet (a canceled instance is not canceled again, a task
already with the new assignee is not reassigned again), so an operation that resumes after a
crash, or is sent twice, acts on each item once.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec

from flowstar.model.enums import TaskStatus, WorkflowStatus
from flowstar.model.errors import ValidationError
from flowstar.model.moments import aware
from flowstar.model.pages import MAX_LIMIT, InstanceQuery, PageKey, TaskQuery

__all__ = [
    "BULK_ERRORS_KEPT",
    "BULK_KINDS",
    "BulkFilter",
    "BulkOperation",
    "BulkRequest",
    "BulkStatus",
    "describe",
    "instance_query",
    "request_hash",
    "task_query",
]

BULK_KINDS = ("retry", "cancel", "reassign")
# An operation keeps the first errors it met (the counts cover all of them).
BULK_ERRORS_KEPT = 20
BulkStatus = Literal["pending", "running", "completed", "failed"]
_DEFAULT_STATUSES: dict[str, tuple[str, ...]] = {
    "retry": (WorkflowStatus.FAILED.value,),
    "cancel": (WorkflowStatus.RUNNING.value, WorkflowStatus.WAITING.value, WorkflowStatus.PENDING.value),
    "reassign": (TaskStatus.PENDING.value,),
}


class BulkFilter(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which items an operation acts on (every given field must match).

    Instances (retry, cancel): ``workflow``, ``statuses`` (default: failed ones to retry,
    active ones to cancel), ``created_after``/``created_before``, ``created_by``, or an
    explicit list of ``ids``.  Tasks (reassign): ``workflow``, ``assignee``, ``group``,
    ``instance_id`` (open tasks only), or ``ids``.
    """

    workflow: str | None = None
    statuses: tuple[str, ...] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    created_by: str | None = None
    assignee: str | None = None
    group: str | None = None
    instance_id: str | None = None
    ids: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.ids is not None and not all(type(i) is str for i in self.ids):
            # The ids as the engine hands them out (``WorkflowInstance.id`` is a UUID) travel
            # as text; whatever is no id then fails ``BulkRequest.check``.
            msgspec.structs.force_setattr(self, "ids", tuple(str(i) for i in self.ids))


class BulkRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What to do to every item of ``filter``.

    ``from_step`` for a retry; ``reason`` for a cancel or reassign; ``to_user`` and/or
    ``to_group`` for a reassign.
    """

    kind: Literal["retry", "cancel", "reassign"]
    filter: BulkFilter = BulkFilter()
    from_step: str | None = None
    reason: str | None = None
    to_user: str | None = None
    to_group: str | None = None

    def check(self) -> None:
        """Raise ``ValidationError`` for a request that cannot run."""
        if self.kind == "reassign" and not (self.to_user or self.to_group):
            raise ValidationError("a bulk reassign needs to_user or to_group")
        if self.kind != "reassign" and (self.to_user or self.to_group):
            raise ValidationError("to_user and to_group are for a bulk reassign")
        if self.kind != "retry" and self.from_step is not None:
            raise ValidationError("from_step is for a bulk retry")
        if self.filter.created_after is not None:
            aware(self.filter.created_after, "filter.created_after")
        if self.filter.created_before is not None:
            aware(self.filter.created_before, "filter.created_before")
        statuses = self.filter.statuses or ()
        allowed = {TaskStatus.PENDING.value} if self.kind == "reassign" else {s.value for s in WorkflowStatus}
        unknown = sorted(set(statuses) - allowed)
        if unknown:
            raise ValidationError(f"unknown status {', '.join(map(repr, unknown))} for a bulk {self.kind}")
        ids = self.filter.ids
        if ids is not None and len(ids) > 10_000:
            raise ValidationError("a bulk operation names at most 10000 ids; use a filter for more")
        bad = next((i for i in ids or () if not _is_uuid(i)), None)
        if bad is not None:
            raise ValidationError(f"filter.ids: {bad!r} is not an id")

    def statuses(self) -> tuple[str, ...]:
        """The statuses acted on: the filter's, or the kind's default."""
        return self.filter.statuses or _DEFAULT_STATUSES[self.kind]


class BulkOperation(msgspec.Struct, kw_only=True):
    """A bulk operation and its progress.

    Attributes:
        total: how many items matched when it began (None until counted).
        acted: items it changed; skipped: items already in the target state (or that left
            the filter meanwhile); failed: items it could not change (the first errors are
            in ``errors``).
        cursor: where it goes on after a restart (the last page's key), or ``position``
            for an operation on a list of ids.
        request_key: the caller's idempotency key, if one was given.
        request_hash: the request's fingerprint: re-sending the same request while it runs
            returns this operation.
    """

    id: str
    request: BulkRequest
    tenant_id: str | None = None
    created_by: str | None = None
    status: BulkStatus = "pending"
    total: int | None = None
    acted: int = 0
    skipped: int = 0
    failed: int = 0
    errors: list[str] = msgspec.field(default_factory=list)
    cursor: tuple[datetime, str] | None = None
    position: int = 0
    request_key: str | None = None
    request_hash: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None

    @property
    def done(self) -> int:
        """Items handled so far (acted, skipped or failed)."""
        return self.acted + self.skipped + self.failed

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed")


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def request_hash(request: BulkRequest, tenant_id: str | None) -> str:
    """The fingerprint of ``request`` in the tenant (what a re-sent request matches)."""
    body = msgspec.json.encode({"tenant": tenant_id, "request": request})
    return hashlib.sha256(body).hexdigest()


def instance_query(request: BulkRequest, tenant_id: str | None, after: PageKey | None) -> InstanceQuery:
    """The page of instances after ``after`` that a retry or cancel acts on."""
    f = request.filter
    return InstanceQuery(
        workflow_name=f.workflow,
        statuses=frozenset(WorkflowStatus(s) for s in request.statuses()),
        tenant_id=tenant_id,
        scoped=tenant_id is not None,
        created_by=f.created_by,
        created_after=f.created_after,
        created_before=f.created_before,
        after=after,
        limit=MAX_LIMIT,
    )


def task_query(request: BulkRequest, tenant_id: str | None, after: PageKey | None) -> TaskQuery:
    """The page of tasks after ``after`` that a reassign acts on."""
    f = request.filter
    return TaskQuery(
        status=TaskStatus.PENDING,
        assignee_id=f.assignee,
        group=f.group,
        workflow_name=f.workflow,
        instance_id=f.instance_id,
        scoped=tenant_id is not None,
        tenant_id=tenant_id,
        after=after,
        limit=MAX_LIMIT,
    )


def describe(operation: BulkOperation) -> dict[str, Any]:
    """A JSON-ready view of the operation (the API's and the CLI's)."""
    return {
        "id": operation.id,
        "kind": operation.request.kind,
        "status": operation.status,
        "total": operation.total,
        "acted": operation.acted,
        "skipped": operation.skipped,
        "failed": operation.failed,
        "errors": list(operation.errors),
        "created_at": operation.created_at.isoformat(),
        "finished_at": operation.finished_at.isoformat() if operation.finished_at else None,
    }
