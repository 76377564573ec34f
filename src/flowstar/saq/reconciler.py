"""The reconciler: re-dispatches activations whose SAQ jobs were lost.

The database is the truth; Redis holds only work in flight.  A job can vanish (Redis
restarted empty, ``FLUSHDB``), end without committing its activation, or sit "active" in the
queue of a worker that was SIGKILLed.  Every pass looks at the activations that are overdue
by more than ``grace`` and whose lease nobody holds (a running step's worker renews it every
heartbeat), and

* enqueues those whose job is missing or finished;
* hands back those whose job is still marked active but has missed its heartbeat: its
  worker is gone.  SAQ's own sweep would rescue them too, but it waits up to 5 s per job,
  one job after another, so a killed worker with 20 steps in flight would strand the last
  one for over a minute.

When the epoch key it plants in Redis has disappeared, Redis lost its data: the pass then
re-dispatches every pending activation, timers included, so that scheduled jobs are rebuilt
from their rows.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import structlog
from redis.asyncio import Redis
from saq.job import Job, Status
from saq.queue import Queue

from flowstar.engine.clock import Clock, SystemClock
from flowstar.engine.ports import PendingActivations
from flowstar.model.state import Token
from flowstar.redis._cancel import raise_if_cancel_requested
from flowstar.saq.dispatcher import SAQDispatcher, job_key
from flowstar.saq.lease import lease_key

__all__ = ["Reconciler"]

log = structlog.get_logger("flowstar.reconciler")

_FINISHED = {Status.COMPLETE, Status.FAILED, Status.ABORTED}
_RUNNING = {Status.ACTIVE, Status.ABORTING}
_BATCH = 500
# (instance id, token, the stuck job to hand back or None to enqueue a new one)
_Lost = tuple[str, Token, Job | None]


class Reconciler:
    """Finds pending activations without a live job and enqueues them again.

    Args:
        store: the state of record's pending activations (the SQL store).
        dispatcher: builds and enqueues jobs.
        redis: the client of the queue's Redis.
        interval: seconds between passes.
        grace: seconds an activation may be overdue before its job is checked.
        key_prefix: prefix of the epoch, lock and lease keys (the engine's).
        redeliver: called each pass with a cutoff (now minus ``grace``) to finish signal
            deliveries a crash cut short (``Engine.redeliver_signals``).
    """

    def __init__(
        self,
        store: PendingActivations,
        dispatcher: SAQDispatcher,
        redis: Redis,
        *,
        interval: float = 5.0,
        grace: float = 10.0,
        key_prefix: str = "flowstar:",
        clock: Clock | None = None,
        redeliver: Callable[[datetime], Awaitable[int]] | None = None,
    ) -> None:
        self.store = store
        self.redeliver = redeliver
        self.dispatcher = dispatcher
        self.queue: Queue = dispatcher.queue
        self.redis = redis
        self.interval = interval
        self.grace = grace
        self.clock: Clock = clock or SystemClock()
        self.epoch_key = f"{key_prefix}{self.queue.name}:epoch"
        self.lock_key = f"{key_prefix}{self.queue.name}:reconcile-lock"
        self.key_prefix = key_prefix
        self._owner = uuid.uuid4().hex
        self.passes = 0
        self.redispatched = 0

    async def run_once(self) -> int:
        """One pass (skipped if another process holds the pass lock); returns jobs re-sent."""
        lock_ms = max(int(self.interval * 1000), 1000)
        if not await self.redis.set(self.lock_key, self._owner, nx=True, px=lock_ms):
            return 0
        full = not await self.redis.exists(self.epoch_key)
        if full:
            await self.redis.set(self.epoch_key, self._owner)
        due_before = None if full else self.clock.now() - timedelta(seconds=self.grace)
        pending = await self.store.pending_tokens(due_before=due_before)
        lost = await self._lost(pending, full=full)
        for instance_id, token, stuck in lost:
            if stuck is None:
                await self.dispatcher.dispatch(instance_id, [token])
            else:
                # Still in SAQ's active list and its incomplete set, so an enqueue would be
                # dropped as a duplicate: put the job itself back in the queue.
                await self.queue.retry(stuck, "flowstar: the worker running it stopped (missed heartbeats)")
        if self.redeliver is not None:
            await self.redeliver(self.clock.now() - timedelta(seconds=self.grace))
        self.passes += 1
        self.redispatched += len(lost)
        if lost:
            log.warning(
                "re-dispatched lost activations",
                count=len(lost),
                handed_back=sum(1 for *_, stuck in lost if stuck is not None),
                full_rebuild=full,
            )
        return len(lost)

    async def _lost(self, pending: list[tuple[str, Token]], *, full: bool) -> list[_Lost]:
        lost: list[_Lost] = []
        # In batches: a full rebuild may look at every pending activation there is.
        for start in range(0, len(pending), _BATCH):
            lost.extend(await self._lost_batch(pending[start : start + _BATCH], full=full))
        return lost

    async def _lost_batch(self, pending: list[tuple[str, Token]], *, full: bool) -> list[_Lost]:
        jobs = await self.queue.jobs([job_key(t.id) for _i, t in pending])
        candidates: list[_Lost] = []
        for (instance_id, token), job in zip(pending, jobs, strict=True):
            if job is None or job.status in _FINISHED or (full and job.status is Status.NEW):
                candidates.append((instance_id, token, None))
            elif job.status in _RUNNING and job.stuck:
                candidates.append((instance_id, token, job))
        if not candidates:
            return []
        # A held lease means a live worker is running the activation (a duplicate job, or
        # one whose record Redis lost): leave it alone.
        async with self.redis.pipeline(transaction=False) as pipe:
            for _i, token, _j in candidates:
                pipe.exists(lease_key(self.key_prefix, token.id))
            held = await pipe.execute()
        return [c for c, leased in zip(candidates, held, strict=True) if not leased]

    async def run(self) -> None:
        """Pass every ``interval`` seconds until cancelled."""
        while True:
            raise_if_cancel_requested()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconciler pass failed")
            await asyncio.sleep(self.interval)
