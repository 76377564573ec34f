"""The execution context a step reads and writes.

Writes are recorded as a diff so that parallel branches, each running on its own copy of the
context, can be merged into the instance's data when their outcomes are committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any
from uuid import UUID, uuid4

import msgspec

from flowstar.model.enums import StepStatus
from flowstar.model.errors import ContextSerializationError

__all__ = ["StepExecution", "WorkflowContext", "step_context", "to_json_value"]

_MISSING: Any = object()
_encode = msgspec.json.encode
_decode = msgspec.json.decode


def to_json_value(key: str, value: Any) -> Any:
    """Return ``value`` as plain JSON data, or raise ``ContextSerializationError``.

    Values are normalised when they are set (datetimes and UUIDs become strings, structs and
    dataclasses become dicts) so that a step sees the same types whether the instance lives in
    memory or was reloaded from a database.
    """
    try:
        # A JSON round trip yields exactly what a database-backed store hands back later
        # (tuples and sets become lists, NaN becomes null), which to_builtins does not.
        return msgspec.json.decode(msgspec.json.encode(value))
    except (TypeError, msgspec.EncodeError, ValueError) as exc:
        raise ContextSerializationError(
            f"context value for {key!r} is not JSON-serializable ({type(value).__name__}): {exc}"
        ) from exc


@dataclass(slots=True)
class StepExecution:
    """A finished (or waiting) execution of one step, as shown in ``step_history``."""

    step_name: str
    status: StepStatus
    attempt: int = 1
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error: str | None = None


_EMPTY_METADATA: Mapping[str, Any] = MappingProxyType({})
_new_object = object.__new__


@dataclass(init=False, slots=True)
class WorkflowContext:
    """Execution context passed between steps.

    ``data`` is the mutable workflow data; ``metadata`` is read-only.  Every ``set`` is also
    recorded in ``changes`` so the engine can commit exactly what the step wrote.
    """

    workflow_id: UUID
    instance_id: UUID
    data: dict[str, Any]
    metadata: Mapping[str, Any]
    current_step: str
    step_history: list[StepExecution]
    started_at: datetime
    user_id: str | None
    tenant_id: str | None
    changes: dict[str, Any] = field(repr=False)

    # Written out rather than generated: the engine builds one context per step, and the
    # generated ``__init__`` would call default factories and ``__post_init__`` each time.
    def __init__(  # noqa: PLR0917 - the documented dataclass fields, in order
        self,
        workflow_id: UUID | None = None,
        instance_id: UUID | None = None,
        data: dict[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        current_step: str = "",
        step_history: list[StepExecution] | None = None,
        started_at: datetime | None = None,
        user_id: str | None = None,
        tenant_id: str | None = None,
        changes: dict[str, Any] | None = None,
    ) -> None:
        self.workflow_id = workflow_id if workflow_id is not None else uuid4()
        self.instance_id = instance_id if instance_id is not None else uuid4()
        self.data = data if data is not None else {}
        self.metadata = MappingProxyType(dict(metadata)) if metadata else _EMPTY_METADATA
        self.current_step = current_step
        self.step_history = step_history if step_history is not None else []
        self.started_at = started_at if started_at is not None else datetime.now(UTC)
        self.user_id = user_id
        self.tenant_id = tenant_id
        self.changes = changes if changes is not None else {}

    def get(self, key: str, default: Any = None) -> Any:
        """Return ``data[key]``, or ``default`` when the key is absent."""
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``.

        Raises:
            ContextSerializationError: the key is not a string or the value cannot be stored
                as JSON. Nothing is written in that case.
        """
        if not isinstance(key, str):
            raise ContextSerializationError(f"context keys must be strings, got {key!r}")
        try:
            # ``to_json_value`` inlined: steps call ``set`` in their innermost loops.
            stored = _decode(_encode(value))
        except (TypeError, msgspec.EncodeError, ValueError):
            stored = to_json_value(key, value)  # raises the error that names the key
        self.data[key] = stored
        self.changes[key] = stored

    def update(self, values: Mapping[str, Any]) -> None:
        """``set`` every item of ``values``; all are checked before any is written."""
        for key in values:
            if not isinstance(key, str):
                raise ContextSerializationError(f"context keys must be strings, got {key!r}")
        converted = {key: to_json_value(key, value) for key, value in values.items()}
        self.data.update(converted)
        self.changes.update(converted)

    def branch(self) -> WorkflowContext:
        """A copy for a parallel branch: same data, its own diff."""
        return WorkflowContext(
            workflow_id=self.workflow_id,
            instance_id=self.instance_id,
            data=msgspec.json.decode(msgspec.json.encode(self.data)),
            metadata=self.metadata,
            current_step=self.current_step,
            step_history=list(self.step_history),
            started_at=self.started_at,
            user_id=self.user_id,
            tenant_id=self.tenant_id,
        )


def step_context(  # noqa: PLR0917 - positional: the engine builds one context per step
    workflow_id: UUID,
    instance_id: UUID,
    data: dict[str, Any],
    metadata: Mapping[str, Any],
    current_step: str,
    started_at: datetime,
    user_id: str | None,
    tenant_id: str | None,
) -> WorkflowContext:
    """A context for running ``current_step``: ``WorkflowContext(...)`` with every field given.

    Built field by field: ``__init__`` checks each of its optional arguments for a default,
    and the engine makes one context per step.  ``data`` is used as it is (the engine passes
    its own copy); ``metadata`` is copied behind a read-only view, as ``__init__`` does.
    """
    context: WorkflowContext = _new_object(WorkflowContext)
    context.workflow_id = workflow_id
    context.instance_id = instance_id
    context.data = data
    context.metadata = MappingProxyType(dict(metadata)) if metadata else _EMPTY_METADATA
    context.current_step = current_step
    context.step_history = []
    context.started_at = started_at
    context.user_id = user_id
    context.tenant_id = tenant_id
    context.changes = {}
    return context
