"""What engines return to callers: a read-only view of an instance."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID, SafeUUID, uuid5

import msgspec

from flowstar.model.context import StepExecution, WorkflowContext
from flowstar.model.enums import StepStatus, WorkflowStatus
from flowstar.model.state import InstanceState

__all__ = ["VersionUsage", "WorkflowInstance", "as_uuid", "definition_uuid", "instance_view"]

_NAMESPACE = UUID("6b1f5a52-7f0c-4c71-9d1e-0a3f2c6e8b10")


@lru_cache(maxsize=1024)
def definition_uuid(name: str, version: str) -> UUID:
    """A stable id for a definition version (the context's ``workflow_id``)."""
    return uuid5(_NAMESPACE, f"{name}@{version}")


_new_uuid = object.__new__
_set_slot = object.__setattr__
_UNKNOWN_SAFETY = SafeUUID.unknown  # (an enum class lookup costs ~0.15 µs on Python 3.11)
_CANONICAL_LENGTH = 36


@lru_cache(maxsize=4096)
def as_uuid(value: str) -> UUID:
    """``UUID(value)``, cached: the same instance ids are parsed at every step.

    Ids in canonical form (all the engine makes) are converted directly, a few times faster
    than ``UUID.__init__``'s general parsing; anything else goes through it.
    """
    if len(value) == _CANONICAL_LENGTH and value[8:24:5] == "----":  # dashes at 8, 13, 18, 23
        number = int(value.replace("-", ""), 16)  # ValueError for a non-hex digit, as UUID()
        uuid = _new_uuid(UUID)
        _set_slot(uuid, "int", number)
        _set_slot(uuid, "is_safe", _UNKNOWN_SAFETY)
        return uuid
    return UUID(value)


# ``StepStatus(value)`` goes through the enum metaclass; a dict lookup gives the same member.
_STEP_STATUS: dict[str, StepStatus] = {status.value: status for status in StepStatus}


class VersionUsage(msgspec.Struct, frozen=True, kw_only=True):
    """One version of a workflow: whether this process has it, and how many instances run it.

    Attributes:
        name: the workflow's name.
        version: the version.
        registered: whether this process's registry has it (an unregistered version with
            running instances is stranded: register it again until they finish).
        active: whether new instances start on it (registered and not deactivated).
        running: its instances that are running or waiting.
    """

    name: str
    version: str
    registered: bool
    active: bool
    running: int


class WorkflowInstance:
    """A snapshot of a workflow instance, as of the call that returned it.

    Built from the committed state it was read from, which never changes; the ``context``
    (a copy of the data and the step history) is only built when it is first read, since
    most callers look at the id and status alone.
    """

    __slots__ = ("_context", "_id", "_state")

    def __init__(self, state: InstanceState) -> None:
        self._state = state
        self._id: UUID | None = None
        self._context: WorkflowContext | None = None

    @property
    def id(self) -> UUID:
        """The instance id."""
        if self._id is None:
            self._id = as_uuid(self._state.id)
        return self._id

    @property
    def context(self) -> WorkflowContext:
        """The instance's context: data, metadata and step history (a copy)."""
        if self._context is None:
            self._context = _context(self._state)
        return self._context

    @property
    def data(self) -> dict[str, Any]:
        """The context data."""
        return self.context.data

    @property
    def workflow_name(self) -> str:
        """The definition's name."""
        return self._state.workflow_name

    @property
    def waiting_for(self) -> list[str]:
        """The signals and events it waits for, as keys (``["signal:approval", "event:paid"]``)."""
        return self._state.waiting_for

    @property
    def waiting_signal(self) -> str | None:
        """The name of a signal it waits for (the first by name), or None."""
        for key in self._state.waiting_for:
            if key.startswith("signal:"):
                return key.removeprefix("signal:")
        return None

    @property
    def wake_at(self) -> datetime | None:
        """When its earliest timer fires (a sleep, a wait's timeout, a timer step, a retry), or None."""
        return self._state.next_due_at

    @property
    def definition_name(self) -> str:
        """Alias of ``workflow_name``."""
        return self._state.workflow_name

    @property
    def workflow_version(self) -> str:
        """The definition version the instance runs."""
        return self._state.workflow_version

    @property
    def status(self) -> WorkflowStatus:
        """Where the instance is in its life cycle."""
        return self._state.status

    @property
    def current_step(self) -> str | None:
        """The step most recently activated."""
        return self._state.current_step

    @property
    def error(self) -> str | None:
        """Why the instance failed, or the cancellation reason."""
        return self._state.error

    @property
    def failed_step(self) -> str | None:
        """The step that failed, for a failed instance."""
        return self._state.failed_step

    @property
    def tenant_id(self) -> str | None:
        """The tenant the instance belongs to."""
        return self._state.tenant_id

    @property
    def created_by(self) -> str | None:
        """Who started the instance."""
        return self._state.created_by

    @property
    def started_at(self) -> datetime:
        """When the instance was created."""
        return self._state.started_at

    @property
    def updated_at(self) -> datetime:
        """When its last change was committed."""
        return self._state.updated_at

    @property
    def completed_at(self) -> datetime | None:
        """When it finished (completed, failed or canceled)."""
        return self._state.completed_at

    @property
    def version(self) -> int:
        """How many commits the instance has had."""
        return self._state.version

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WorkflowInstance):
            return NotImplemented
        return self._state == other._state

    def __hash__(self) -> int:
        return hash((self._state.id, self._state.version))

    def __repr__(self) -> str:
        state = self._state
        return (
            f"WorkflowInstance(id={state.id!r}, workflow_name={state.workflow_name!r}, "
            f"workflow_version={state.workflow_version!r}, status={state.status.value!r}, "
            f"current_step={state.current_step!r}, version={state.version})"
        )


def _context(state: InstanceState) -> WorkflowContext:
    return WorkflowContext(
        workflow_id=definition_uuid(state.workflow_name, state.workflow_version),
        instance_id=as_uuid(state.id),
        data=dict(state.data),
        metadata=state.metadata,
        current_step=state.current_step or "",
        step_history=[
            StepExecution(h.step, _STEP_STATUS.get(h.status) or StepStatus(h.status), h.attempt, None, h.at)
            for h in state.history
        ],
        started_at=state.started_at,
        user_id=state.created_by,
        tenant_id=state.tenant_id,
    )


def instance_view(state: InstanceState) -> WorkflowInstance:
    """Build the public view of ``state``."""
    return WorkflowInstance(state)
