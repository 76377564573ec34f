"""The workers' SAQ queue on Redis: SAQ's sweep of dead jobs, without its dequeue race.

A worker takes a job by moving its id into the queue's active list (``BLMOVE``) and marks the
job record active only a round trip or two later.  SAQ's sweep (saq 0.26, issues #124 and
#277) takes any job in the active list whose record is not active for one whose worker died:
it aborts it and queues it again.  A sweep that lands in between (workers sweep every second,
see ``UPKEEP_TIMERS``, and a worker's sweep runs just after its schedule tick, which is what
hands a waiting dequeuer a retried or timer job) makes the healthy worker cancel the step it
has just started, so the body runs a second time; or, when the abort came too late to stop
it, queues the finished job again.

``FlowstarRedisQueue.sweep`` leaves a job found in the active list still marked queued alone
until it has stayed so for its heartbeat: only then did its worker die between taking it and
marking it, and it is swept like any dead job.  A job that finished while the sweep aborted it
is not queued again.
"""

from __future__ import annotations

from typing import Any

import structlog
from redis.asyncio import Redis
from saq.job import Job, Status
from saq.queue.redis import RedisQueue

from flowstar.engine.clock import Clock, SystemClock

__all__ = ["DEQUEUE_GRACE", "FlowstarRedisQueue"]

log = structlog.get_logger("flowstar.queue")

# Seconds a job without a heartbeat may sit in the active list still marked queued.
DEQUEUE_GRACE = 15.0

# SAQ's own selection: under the sweep lock (one sweeper per interval), every id in the
# active list with its job record.
_CANDIDATES = """
local id_jobs = {}
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('SETEX', KEYS[1], ARGV[1], 1)
    for i, v in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
        id_jobs[i] = {v, redis.call('GET', v)}
    end
end
return id_jobs
"""

_FINISHED_BY_WORKER = frozenset({Status.COMPLETE, Status.FAILED})


class FlowstarRedisQueue(RedisQueue):
    """A ``RedisQueue`` whose sweep never takes a job a live worker has just dequeued for dead.

    Args:
        redis: the client.
        name: the queue name.
        clock: the time source for how long a dequeued job has gone unmarked.
        **kwargs: the other ``RedisQueue`` arguments.
    """

    def __init__(self, redis: Redis, name: str = "default", *, clock: Clock | None = None, **kwargs: Any) -> None:
        super().__init__(redis, name=name, **kwargs)
        self.clock: Clock = clock or SystemClock()
        self._candidates = redis.register_script(_CANDIDATES)
        # SAQ's key layout (saq is pinned: see pyproject.toml), named through its public
        # ``namespace``; the sweep tests drive a real queue, so a new layout fails them.
        self.active_key = self.namespace("active")
        self.incomplete_key = self.namespace("incomplete")
        self.sweep_lock_key = self.namespace("sweep")

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        """Abort and queue again the jobs of dead workers; returns the ids swept.

        Like SAQ's sweep (one sweeper per ``lock`` seconds), except for a job still marked
        queued in the active list, which is swept only once ``_abandoned``.
        """
        swept: list[str] = []
        for raw_id, payload in await self._candidates(keys=[self.sweep_lock_key, self.active_key], args=[lock]):
            job_id = _text(raw_id)
            job = self.deserialize(payload)
            if job is None:
                await self._drop_missing(job_id)
            else:
                why = await self._why_dead(job)
                if why is None:
                    continue
                await self._rescue(job, abort, why)
            swept.append(job_id)
        return swept

    async def _why_dead(self, job: Job) -> str | None:
        """Why the worker of ``job`` (in the active list) is taken for dead; None while it may be alive."""
        if job.status is Status.QUEUED:
            return "dequeued, never marked active" if await self._abandoned(job) else None
        if job.stuck:
            return "missed its heartbeat or ran past its timeout"
        return None if job.status is Status.ACTIVE else f"left {job.status.value} in the active list"

    async def _abandoned(self, job: Job) -> bool:
        """Whether ``job``, queued in the active list, has been so for its whole grace.

        The first sweep to see it notes the time in Redis (any worker may sweep next); the
        note names the record's ``touched`` time, so a job queued again and dequeued anew
        starts over.
        """
        key = self.namespace(f"dequeued:{job.key}")
        grace_ms = int((job.heartbeat or DEQUEUE_GRACE) * 1000)
        now_ms = int(self.clock.now().timestamp() * 1000)
        note = await self.redis.get(key)
        first, _, touched = _text(note).partition(":")
        if note is None or touched != str(job.touched):
            # Kept well past the grace, so that a sweep a few intervals later still finds it.
            await self.redis.set(key, f"{now_ms}:{job.touched}", px=3 * grace_ms + 60_000)
            return False
        if now_ms - int(first) < grace_ms:
            return False
        await self.redis.delete(key)
        return True

    async def _drop_missing(self, job_id: str) -> None:
        """Forget an id in the active list whose record is gone."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrem(self.active_key, 0, job_id)
            pipe.zrem(self.incomplete_key, job_id)
            await pipe.execute()
        log.info("swept a missing job", job_id=job_id)

    async def _rescue(self, job: Job, abort: float, why: str) -> None:
        """Abort ``job``, wait up to ``abort`` seconds for its worker to stop it, and queue it again."""
        log.info("sweeping a dead job", key=job.key, reason=why)
        error = self.swept_error_message
        await self.abort(job, error=error)
        try:
            await job.refresh(abort)
        except TimeoutError:
            log.info("could not abort a swept job", key=job.key)
        if job.status in _FINISHED_BY_WORKER:
            # Its worker was alive after all and finished it: nothing to run again.
            return
        if job.retryable:
            await self.retry(job, error=error)
        else:
            await self.finish(job, Status.ABORTED, error=error)


def _text(value: bytes | str | None) -> str:
    """A Redis reply as text (clients may or may not decode responses)."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value
