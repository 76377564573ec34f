"""Request and response bodies of the REST API (msgspec Structs: validated, in the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from flowstar.engine.views import WorkflowInstance
from flowstar.model.bulk import BulkFilter
from flowstar.model.state import StepRecord
from flowstar.model.task_transitions import COMMENT_LIMIT

__all__ = [
    "BulkCountOut",
    "BulkOut",
    "BulkSubmit",
    "CancelRequest",
    "CommentRequest",
    "CompleteTaskRequest",
    "DefinitionOut",
    "ErrorBody",
    "FieldError",
    "GraphOut",
    "InstanceDetail",
    "InstanceOut",
    "ReassignRequest",
    "RetryRequest",
    "StartInstanceRequest",
    "WebhookCallback",
    "instance_out",
]


# The engine strips a comment or reason and refuses it empty or over the limit (check_comment).
_Text = Annotated[
    str, msgspec.Meta(min_length=1, description=f"not blank, at most {COMMENT_LIMIT} characters once stripped")
]


class FieldError(msgspec.Struct, kw_only=True):
    """One invalid field: a JSON pointer into the submitted data and what is wrong."""

    pointer: str
    message: str


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every error response's body."""

    status_code: int
    detail: str
    errors: list[FieldError] = []


class StartInstanceRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Start an instance of ``definition_name`` with ``input_data``.

    ``idempotency_key`` (or the ``Idempotency-Key`` header): the same key answers with the
    instance the first request started.
    """

    definition_name: str
    input_data: dict[str, Any] = {}
    version: str | None = None
    idempotency_key: str | None = None
    created_by: str | None = None
    tenant_id: str | None = None


class SignalRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Send signal ``name``: to ``instance_id``, or to every waiting instance of the tenant."""

    name: str
    payload: dict[str, Any] = {}
    instance_id: str | None = None
    tenant_id: str | None = None


class SignalOut(msgspec.Struct, kw_only=True):
    """How many instances the signal woke now (later waits still receive it)."""

    woken: int


class EventRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Report external event ``name`` about ``entity_id``, happening ``at`` (default now)."""

    name: str
    entity_id: str
    at: datetime | None = None
    payload: dict[str, Any] = {}
    tenant_id: str | None = None


class EventOut(msgspec.Struct, kw_only=True):
    """The reported event's id."""

    id: str


class CompleteTaskRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The form data of a human task; ``completed_by`` only for a trusted back end."""

    output_data: dict[str, Any] = {}
    completed_by: str | None = None


class ReassignRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Give the task to another user and/or group, saying why (the reason goes to the audit trail)."""

    assignee_id: str | None = None
    assignee_group: str | None = None
    reason: _Text | None = None


class CommentRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A comment on a task."""

    text: _Text


class CancelRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Why the instance is canceled."""

    reason: str = "canceled"


class RetryRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Retry a failed instance, from ``from_step`` (default: the step that failed)."""

    from_step: str | None = None


class InstanceOut(msgspec.Struct, kw_only=True):
    """A workflow instance."""

    id: str
    definition_name: str
    version: str
    status: str
    current_step: str | None
    data: dict[str, Any]
    error: str | None
    failed_step: str | None
    tenant_id: str | None
    created_by: str | None
    started_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class InstanceDetail(InstanceOut, kw_only=True):
    """An instance with its step history (oldest first)."""

    history: list[StepRecord]


class WebhookCallback(msgspec.Struct, kw_only=True):
    """The callback URL of one waiting webhook step (POST to it to resume the step)."""

    step_name: str
    url: str


class DefinitionOut(msgspec.Struct, kw_only=True):
    """A workflow definition: its steps and edges."""

    name: str
    version: str
    description: str
    initial_step: str
    terminal_steps: list[str]
    steps: list[dict[str, Any]]
    edges: list[dict[str, Any]]


class GraphOut(msgspec.Struct, kw_only=True):
    """A definition's graph, as Mermaid text and as JSON nodes and edges."""

    mermaid: str
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]


def instance_out(instance: WorkflowInstance) -> dict[str, Any]:
    """The ``InstanceOut`` fields of ``instance``."""
    return {
        "id": str(instance.id),
        "definition_name": instance.definition_name,
        "version": instance.workflow_version,
        "status": instance.status.value,
        "current_step": instance.current_step,
        "data": instance.data,
        "error": instance.error,
        "failed_step": instance.failed_step,
        "tenant_id": instance.tenant_id,
        "created_by": instance.created_by,
        "started_at": instance.started_at,
        "updated_at": instance.updated_at,
        "completed_at": instance.completed_at,
    }


class BulkSubmit(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A bulk operation: ``kind`` (retry, cancel, reassign) on what ``filter`` matches.

    ``from_step`` for a retry, ``reason`` for a cancel or reassign, ``to_user`` and/or
    ``to_group`` for a reassign; ``idempotency_key`` makes a re-sent request return the first
    operation even after it finished; ``tenant_id`` only for a trusted back end.
    """

    kind: Literal["retry", "cancel", "reassign"]
    filter: BulkFilter = BulkFilter()
    from_step: str | None = None
    reason: str | None = None
    to_user: str | None = None
    to_group: str | None = None
    idempotency_key: str | None = None
    tenant_id: str | None = None


class BulkOut(msgspec.Struct, kw_only=True):
    """A bulk operation and its progress (``acted + skipped + failed`` of ``total`` done)."""

    id: str
    kind: str
    status: str
    total: int | None
    acted: int
    skipped: int
    failed: int
    errors: list[str]
    created_at: str
    finished_at: str | None


class BulkCountOut(msgspec.Struct, kw_only=True):
    """How many items a bulk request matches now."""

    count: int
