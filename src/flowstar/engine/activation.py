"""What the engine's activation loop knows about one run of it.

A run starts when a call (``start_workflow``, a completed task, a webhook, a retry) or a
dispatcher (a task of the inline dispatcher, a SAQ job) hands the engine committed work of
one instance.  The loop executes an activation, commits its outcome and, while the
dispatcher agrees (``Dispatcher.may_chain``), executes the next one itself instead of
dispatching it.
"""

from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar
from dataclasses import dataclass, field

from flowstar.model.state import Token

__all__ = ["STEP_RUN", "STEP_RUN_FIELDS", "ActivationRun", "RunTracker"]

# Which step execution the code running now belongs to, while a step's body runs: what
# ``flowstar.logs.add_step_run`` puts on every log line (one tuple, set once per step).
STEP_RUN_FIELDS = ("instance_id", "workflow", "version", "step", "activation", "attempt")
STEP_RUN: ContextVar[tuple[str, str, str, str, str, int] | None] = ContextVar("flowstar_step_run", default=None)


@dataclass(slots=True, eq=False)
class ActivationRun:
    """One run of the activation loop for one instance.

    Dispatchers that execute jobs subclass it to carry what their ``may_chain`` needs (SAQ:
    the job, its lease, its time budget); calls from outside use this plain class.

    Attributes:
        instance_id: the instance the run belongs to.
        steps: activations executed in this run so far.
        started: ``time.monotonic()`` when the run began.
        current: the activation executing now (None before the first).
    """

    instance_id: str
    steps: int = 0
    started: float = field(default_factory=time.monotonic)
    current: Token | None = None


class RunTracker:
    """Counts the engine's runs in flight per instance, so that callers can wait for them."""

    __slots__ = ("_active", "_idle")

    def __init__(self) -> None:
        self._active: dict[str, int] = {}
        self._idle: dict[str, asyncio.Event] = {}

    def enter(self, instance_id: str) -> None:
        """A run of ``instance_id`` began."""
        self._active[instance_id] = self._active.get(instance_id, 0) + 1

    def leave(self, instance_id: str) -> None:
        """A run of ``instance_id`` ended."""
        left = self._active[instance_id] - 1
        if left:
            self._active[instance_id] = left
            return
        del self._active[instance_id]
        # An idle event exists only while its instance has runs (``idle`` makes none
        # otherwise): only the last run's end sets it.
        if self._idle:
            idle = self._idle.pop(instance_id, None)
            if idle is not None:
                idle.set()

    def active(self, instance_id: str) -> bool:
        """Whether a run of ``instance_id`` is in flight."""
        return instance_id in self._active

    async def idle(self, instance_id: str) -> None:
        """Return once no run of ``instance_id`` is in flight."""
        if instance_id not in self._active:
            return
        await self._idle.setdefault(instance_id, asyncio.Event()).wait()
