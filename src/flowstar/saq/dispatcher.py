"""The SAQ dispatcher: each committed activation becomes one SAQ job.

SAQ's job defaults (``timeout=10``, one attempt, no heartbeat, 600 s records) would lose or
cut short our steps, so every option is set here deliberately.  The job key is derived from
the activation, so enqueueing the same activation twice (a relay and the reconciler, say)
yields one job while it is pending.  A dispatch made while a trace span is current carries
that trace context in the job's kwargs (see ``flowstar.tracing``), so the job's steps join
the caller's trace.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from saq.job import Job
from saq.queue import Queue

from flowstar.engine.activation import ActivationRun
from flowstar.engine.clock import Clock, SystemClock
from flowstar.engine.ports import ActivationRunner
from flowstar.model.state import Token
from flowstar.saq.jobrun import JobRun
from flowstar.tracing import TRACE_KWARG, trace_carrier

__all__ = ["JOB_FUNCTION", "JobOptions", "SAQDispatcher", "job_key"]

JOB_FUNCTION = "flowstar.run_activation"


def job_key(token_id: str) -> str:
    """The SAQ job key of an activation."""
    return f"act:{token_id}"


@dataclass(frozen=True, slots=True)
class JobOptions:
    """SAQ job options for activations.

    Attributes:
        timeout: seconds a step job may run (0: no limit); a step's own ``timeout`` is
            enforced by the engine and recorded as a step failure, this is the backstop.
        heartbeat: seconds without a heartbeat after which SAQ's sweep treats the job as
            dead; the worker beats every third of it while a step runs.
        retries: SAQ-level attempts, for infrastructure errors only (a database outage, a
            killed worker).  Step errors never reach SAQ: the engine records them and applies
            the step's retry policy.
        retry_delay: seconds before an infrastructure retry (doubled each time, capped).
        ttl: seconds finished job records are kept (they are never the state of record).
        early: seconds before its due time a timer or back-off job is scheduled; SAQ moves
            scheduled jobs on a 1 s tick in whole seconds, so the job arrives early and
            waits out the rest to the millisecond.
    """

    timeout: int = 3600
    heartbeat: int = 15
    retries: int = 10
    retry_delay: float = 1.0
    retry_backoff: float = 30.0
    ttl: int = 300
    early: float = 1.5


class SAQDispatcher:
    """Enqueues activations as SAQ jobs; workers run them with ``run_activation``.

    Args:
        queue: the SAQ queue.
        options: job options.
        clock: the time source for due times.
        max_chain: most activations one job executes back to back (see ``may_chain``).
    """

    def __init__(
        self, queue: Queue, options: JobOptions | None = None, clock: Clock | None = None, *, max_chain: int = 20
    ) -> None:
        self.queue = queue
        self.options = options or JobOptions()
        self.clock: Clock = clock or SystemClock()
        self.max_chain = max_chain
        self.runner: ActivationRunner | None = None

    def bind(self, runner: ActivationRunner) -> None:
        """Remember the engine's runner (used by in-process workers)."""
        self.runner = runner

    def job_for(self, instance_id: str, token: Token) -> Job:
        """The SAQ job for ``token``, with the current trace context if a span is current."""
        options = self.options
        scheduled = 0
        if token.due_at is not None:
            wake = token.due_at.timestamp() - options.early
            if wake > self.clock.now().timestamp():
                scheduled = math.floor(wake)
        kwargs: dict[str, object] = {"instance_id": instance_id, "token_id": token.id}
        carrier = trace_carrier()
        if carrier is not None:
            kwargs[TRACE_KWARG] = carrier
        return Job(
            function=JOB_FUNCTION,
            kwargs=kwargs,
            key=job_key(token.id),
            timeout=options.timeout,
            heartbeat=options.heartbeat,
            retries=options.retries,
            retry_delay=options.retry_delay,
            retry_backoff=options.retry_backoff,
            ttl=options.ttl,
            scheduled=scheduled,
        )

    async def dispatch(self, instance_id: str, tokens: Sequence[Token]) -> None:
        """Enqueue one job per token (concurrently, for fan-outs)."""
        if len(tokens) == 1:
            await self.queue.enqueue(self.job_for(instance_id, tokens[0]))
            return
        await asyncio.gather(*(self.queue.enqueue(self.job_for(instance_id, t)) for t in tokens))

    async def may_chain(self, run: ActivationRun, token: Token) -> bool:
        """Whether the job of ``run`` executes ``token`` itself instead of enqueueing it.

        Only inside a job (never for a call from an API process), for at most ``max_chain``
        steps per job and never past half its timeout, and only once the job holds the
        activation's lease: SAQ's own handling of a job costs more than a short step, while
        a fan-out's other branches are still enqueued and run on any worker.
        """
        if not isinstance(run, JobRun) or run.steps >= self.max_chain or time.monotonic() > run.deadline:
            return False
        return await run.take_lease(token.id)

    async def settled(self, instance_id: str) -> None:
        """Steps run in worker processes: nothing to wait for here."""

    async def close(self) -> None:
        """The queue belongs to the caller; nothing to release."""
