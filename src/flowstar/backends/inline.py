"""The inline dispatcher: runs activations as tasks on the current event loop.

Due activations start at once; future ones (timers, retry back-offs) wait in one heap served
by a single scheduler task, so a thousand waiting timers hold no asyncio task each.  A queued
activation keeps the context variables of the call that queued it (a trace's current span,
for one) and starts in them, not in the scheduler's.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
from collections.abc import Sequence
from datetime import datetime

import structlog

from flowstar.engine.activation import ActivationRun
from flowstar.engine.clock import Clock, SystemClock
from flowstar.engine.ports import ActivationRunner
from flowstar.model.state import Token

__all__ = ["InlineDispatcher"]

log = structlog.get_logger("flowstar.dispatch")


class InlineDispatcher:
    """Runs each activation as an asyncio task in this process."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._runner: ActivationRunner | None = None
        self._inflight: dict[str, int] = {}
        self._idle: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._heap: list[tuple[datetime, int, str, str, contextvars.Context]] = []
        self._queued: set[str] = set()
        self._seq = 0
        self._wake: asyncio.Event | None = None
        self._scheduler: asyncio.Task[None] | None = None
        self._closed = False

    def bind(self, runner: ActivationRunner) -> None:
        """Set the coroutine that executes one activation."""
        self._runner = runner

    async def may_chain(self, run: ActivationRun, token: Token) -> bool:
        """Yes, until closed: the engine runs the next step in the task that committed it.

        That is where this dispatcher would run it anyway; a fan-out's other branches still
        run concurrently, as tasks of their own.
        """
        return not self._closed

    async def dispatch(self, instance_id: str, tokens: Sequence[Token]) -> None:
        """Start due tokens now, each in a task; queue the others for their due time."""
        now: datetime | None = None
        for token in tokens:
            due_at = token.due_at
            if due_at is not None and now is None:
                now = self.clock.now()  # only tokens with a due time need it
            if due_at is None or (now is not None and due_at <= now):
                self._start(instance_id, token.id)
            elif token.id not in self._queued:
                self._queued.add(token.id)
                self._seq += 1
                # The sequence number is unique: tuples never compare their contexts.
                entry = (due_at, self._seq, instance_id, token.id, contextvars.copy_context())
                heapq.heappush(self._heap, entry)
                self._ensure_scheduler()

    def _start(self, instance_id: str, token_id: str, context: contextvars.Context | None = None) -> None:
        if self._runner is None:
            raise RuntimeError("dispatcher is not bound to an engine")
        if self._closed:
            return
        self._track(instance_id, 1)
        task = asyncio.create_task(self._run(instance_id, token_id), context=context)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _track(self, instance_id: str, change: int) -> None:
        left = self._inflight.get(instance_id, 0) + change
        if left:
            self._inflight[instance_id] = left
            return
        del self._inflight[instance_id]
        # An idle event exists only while its instance is in flight (``settled`` makes none
        # otherwise, and it is removed here), so it needs setting only now.
        if self._idle:
            idle = self._idle.pop(instance_id, None)
            if idle is not None:
                idle.set()

    async def _run(self, instance_id: str, token_id: str) -> None:
        assert self._runner is not None
        try:
            await self._runner(instance_id, token_id)
        except Exception:
            log.exception("activation crashed", instance_id=instance_id, token_id=token_id)
        finally:
            self._track(instance_id, -1)

    async def settled(self, instance_id: str) -> None:
        """Wait until no task of this dispatcher runs an activation of ``instance_id``."""
        if not self._inflight.get(instance_id):
            return
        idle = self._idle.setdefault(instance_id, asyncio.Event())
        await idle.wait()

    def _ensure_scheduler(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._scheduler is None or self._scheduler.done():
            # In an empty context: what it starts runs in the context each entry kept.
            self._scheduler = asyncio.create_task(self._schedule(), context=contextvars.Context())

    async def _schedule(self) -> None:
        assert self._wake is not None
        while not self._closed:
            self._wake.clear()
            if not self._heap:
                await self._wake.wait()
                continue
            due_at = self._heap[0][0]
            if due_at > self.clock.now():
                await self.clock.sleep_until(due_at, self._wake)
                continue
            _due, _seq, instance_id, token_id, context = heapq.heappop(self._heap)
            self._queued.discard(token_id)
            self._start(instance_id, token_id, context)

    def running_instances(self) -> list[str]:
        """Instances with an activation running in this process."""
        return list(self._inflight)

    @property
    def scheduled(self) -> int:
        """How many activations wait for their due time."""
        return len(self._heap)

    async def close(self) -> None:
        """Stop scheduling and let running activations finish."""
        self._closed = True
        if self._scheduler is not None:
            self._scheduler.cancel()
            await asyncio.gather(self._scheduler, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
