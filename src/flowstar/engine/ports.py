"""The ports an engine is assembled from: a store and a dispatcher (plus bus and clock)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from flowstar.model.definition import WorkflowDefinition
from flowstar.model.enums import TaskStatus, WorkflowStatus
from flowstar.model.state import CommitPlan, HumanTask, InstanceState, StepRecord, Token

__all__ = ["ActivationRunner", "Dispatcher", "Store"]

ActivationRunner = Callable[[str, str], Awaitable[None]]


class Store(Protocol):
    """Where instance state lives.  ``commit`` is the only write path."""

    async def ensure_definition(self, definition: WorkflowDefinition) -> None:
        """Record a definition version before its first instance is stored."""

    async def load_instance(self, instance_id: str) -> InstanceState | None:
        """The instance's current state, or None."""

    async def commit(self, plan: CommitPlan) -> bool:
        """Apply ``plan`` atomically if the instance is still at ``plan.expected_version``.

        Returns False (and writes nothing) when another commit got there first.
        """

    async def get_task(self, task_id: str) -> HumanTask | None:
        """One task by id."""

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

    async def pending_tokens(self) -> list[tuple[str, Token]]:
        """``(instance_id, token)`` for every dispatchable token of an active instance."""

    async def close(self) -> None:
        """Release connections."""


class Dispatcher(Protocol):
    """Gets committed activations executed, now or at their due time."""

    def bind(self, runner: ActivationRunner) -> None:
        """Set the coroutine that executes one activation (instance id, token id)."""

    async def dispatch(self, instance_id: str, tokens: Sequence[Token]) -> None:
        """Hand over tokens whose activation was just committed."""

    def driving(self, instance_id: str) -> AbstractAsyncContextManager[None]:
        """A block whose dispatches of ``instance_id`` may run in the caller's task."""

    def may_chain(self, instance_id: str) -> bool:
        """Whether the activation of ``instance_id`` running now may run the next one itself.

        True means the engine commits the next activation without dispatching it and runs
        it in the current task, as this dispatcher would have done anyway.
        """

    async def settled(self, instance_id: str) -> None:
        """Return when no activation of the instance is runnable in this process."""

    async def close(self) -> None:
        """Stop dispatching; in-flight activations finish or are handed back."""
