"""``SAQExecutionEngine``: steps run as SAQ jobs on any number of worker processes."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

import structlog
from redis.asyncio import Redis
from saq.job import Job
from saq.queue import Queue

from flowstar.db.engine import coerce_store
from flowstar.engine.clock import Clock
from flowstar.engine.core import Engine
from flowstar.engine.views import WorkflowInstance
from flowstar.model.enums import TERMINAL_WORKFLOW_STATUSES, WorkflowStatus
from flowstar.model.registry import WorkflowRegistry
from flowstar.model.state import CommitPlan
from flowstar.redis._cancel import raise_if_cancel_requested
from flowstar.redis.stream_bus import RedisStreamEventBus
from flowstar.saq.dispatcher import JobOptions, SAQDispatcher
from flowstar.saq.jobrun import JobRun
from flowstar.saq.lease import Lease, lease_key
from flowstar.saq.reconciler import Reconciler
from flowstar.saq.relay import OutboxRelay

__all__ = ["SAQExecutionEngine"]

log = structlog.get_logger("flowstar.saq")

_SETTLED = frozenset({WorkflowStatus.WAITING, *TERMINAL_WORKFLOW_STATUSES})


class SAQExecutionEngine(Engine):
    """The ``ExecutionEngine`` API on SAQ: commits in SQL, steps as jobs, events on a stream.

    ``start_workflow``, ``complete_human_task`` and the other calls commit and enqueue, then
    return at once; ``wait_for_status`` awaits an outcome committed by any process.

    Args:
        registry: definitions (every worker needs the same ones); None: ``default_registry()``
            (the registry ``FLOWSTAR_REGISTRY`` names, else the process-wide default one), so
            ``SAQExecutionEngine(queue=queue, persistence=persistence)`` works as documented.
        queue: a ``saq.queue.redis.RedisQueue``.
        persistence: a ``SQLAlchemyStore``, an SQLAlchemy engine/session factory, or a URL.
        event_bus: a ``RedisStreamEventBus``; events then go through the outbox to it.
        redis: client for leases, locks and status notifications (default: the queue's).
        job_options: SAQ job options (see ``JobOptions``).
        run_reconciler: run the reconciler and outbox relay in this process (workers do;
            an API process may too).
        reconcile_interval, reconcile_grace: see ``Reconciler``.
        max_chain: most activations one job executes back to back (see ``SAQDispatcher.may_chain``).
    """

    def __init__(
        self,
        registry: WorkflowRegistry | None = None,
        *,
        queue: Queue,
        persistence: Any,
        event_bus: RedisStreamEventBus | None = None,
        redis: Redis | None = None,
        clock: Clock | None = None,
        job_options: JobOptions | None = None,
        key_prefix: str = "flowstar:",
        run_reconciler: bool = True,
        reconcile_interval: float = 5.0,
        reconcile_grace: float = 10.0,
        max_chain: int = 20,
    ) -> None:
        self.sql_store = coerce_store(persistence, outbox=event_bus is not None)
        if event_bus is not None:
            self.sql_store.outbox = True
        self.saq_dispatcher = SAQDispatcher(queue, job_options, clock, max_chain=max_chain)
        # Events are not emitted by the committing call: they go through the outbox, so that
        # a crash between commit and publication loses none.
        super().__init__(registry, self.sql_store, self.saq_dispatcher, clock=clock, wait_for_settle=False)
        self.queue = queue
        self.redis: Redis = redis if redis is not None else queue.redis  # type: ignore[attr-defined]
        self.stream_bus = event_bus
        self.key_prefix = key_prefix
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.relay = (
            OutboxRelay(self.sql_store, event_bus, self.redis, lock_key=f"{key_prefix}{queue.name}:relay-lock")
            if event_bus is not None
            else None
        )
        self.reconciler = Reconciler(
            self.sql_store,
            self.saq_dispatcher,
            self.redis,
            interval=reconcile_interval,
            grace=reconcile_grace,
            key_prefix=key_prefix,
            clock=clock,
            redeliver=self.redeliver_signals,
        )
        self.run_reconciler = run_reconciler
        self._background: list[asyncio.Task[None]] = []
        self._pending_publishes: set[asyncio.Future[Any]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self.commit_listeners.append(self._on_commit)

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the reconciler and the outbox relay (idempotent)."""
        if self._background:
            return
        if self.run_reconciler:
            self._background.append(asyncio.create_task(self.reconciler.run(), name="flowstar-reconciler"))
        if self.relay is not None:
            self._background.append(asyncio.create_task(self.relay.run(), name="flowstar-relay"))

    async def __aenter__(self) -> SAQExecutionEngine:
        await self.start()
        return self

    async def close(self) -> None:
        """Stop background tasks, drain the outbox once more, close the store."""
        if self._listener is not None:
            self._background.append(self._listener)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        if self._pending_publishes:
            await asyncio.gather(*self._pending_publishes, return_exceptions=True)
        if self.relay is not None:
            with contextlib.suppress(Exception):
                await self.relay.drain()
        await self.store.close()

    # -- running jobs -------------------------------------------------------------------

    async def execute_job(self, job: Job | None, instance_id: str, token_id: str) -> str:
        """Run one activation delivered by SAQ, and the ones it chains; returns what happened.

        The activation's lease guarantees one executor at a time; while steps run, the job's
        heartbeat and the lease are renewed, so a long step is never swept as dead.  If the
        lease is lost anyway (Redis lost its data, or this process stalled longer than the
        lease) and another worker has taken it, this run is cancelled: its outcome could not
        commit, and the step must not run twice at the same time.  A chained activation
        this job could not finish (shutdown, an error) is handed back to the queue.
        """
        options = self.saq_dispatcher.options
        run = JobRun(
            instance_id,
            job=job,
            make_lease=self._lease_maker(job),
            deadline=(time.monotonic() + options.timeout / 2) if options.timeout else math.inf,
        )
        if not await run.take_lease(token_id):
            log.info("activation is running elsewhere", instance_id=instance_id, token_id=token_id)
            return "leased-elsewhere"
        task = asyncio.ensure_future(self.run_activation(instance_id, token_id, run))
        beat = asyncio.create_task(self._beat(run, options.heartbeat / 3, task))
        outcome = "unfinished"
        try:
            await task
            outcome = "ran"
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if beat.done() and not beat.cancelled() and beat.result() and not (current and current.cancelling()):
                log.warning("lease lost to another worker; run cancelled", instance_id=instance_id, token_id=token_id)
                outcome = "lease-lost"
                return outcome
            raise
        finally:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)
            if not task.done():  # this job was cancelled (SAQ timeout, shutdown)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await run.release()
            if outcome == "unfinished":
                await asyncio.shield(self._hand_back(run, token_id))
        return outcome

    def _lease_maker(self, job: Job | None) -> Callable[[str], Lease]:
        owner = f"{self.worker_id}:{job.attempts if job else 0}:{uuid.uuid4().hex[:8]}"
        ttl_ms = self.saq_dispatcher.options.heartbeat * 1000

        def make(token_id: str) -> Lease:
            return Lease(self.redis, lease_key(self.key_prefix, token_id), owner=owner, ttl_ms=ttl_ms)

        return make

    async def _hand_back(self, run: JobRun, token_id: str) -> None:
        """Enqueue the chained activation a job stopped in (its own one SAQ retries)."""
        current = run.current
        if current is None or current.id == token_id:
            return
        try:
            await self.saq_dispatcher.dispatch(run.instance_id, [current])
        except Exception:  # the reconciler finds it
            log.warning("could not hand back a chained activation", instance_id=run.instance_id, token_id=current.id)

    async def _beat(self, run: JobRun, every: float, task: asyncio.Future[None]) -> bool:
        """Renew the current lease and the job's heartbeat until cancelled; True if the lease was lost."""
        while True:
            # A cancellation that lands as a Redis command completes is lost inside redis-py
            # on Python 3.11 (see ``raise_if_cancel_requested``).  A job's run ends just as a
            # beat starts more often than chance suggests (both follow the same clock: a
            # database call that timed out, a beat each third of the heartbeat), and a beat
            # that carried on would keep the finished job alive and its lease held for ever,
            # so that neither SAQ's sweep nor the reconciler could hand the activation on.
            raise_if_cancel_requested()
            await asyncio.sleep(every)
            lease = run.lease
            try:
                # A lease that expired or vanished is taken again if nobody else took it.
                if lease is not None and not await lease.extend() and not await lease.acquire():
                    task.cancel()
                    return True
                if run.job is not None:
                    await run.job.update()
            except Exception as exc:  # Redis unreachable for a moment: keep the step, try again
                log.warning("heartbeat failed", key=lease.key if lease else None, error=repr(exc))

    # -- status notifications -----------------------------------------------------------

    def _status_channel(self, instance_id: str) -> str:
        return f"{self.key_prefix}status:{instance_id}"

    async def _publish_status(self, instance_id: str, status: str) -> None:
        try:
            await self.redis.publish(self._status_channel(instance_id), status)
        except Exception:  # a waiter falls back to polling; the commit already happened
            log.warning("status notification failed", instance_id=instance_id)

    def _on_commit(self, plan: CommitPlan) -> None:
        if plan.events and self.relay is not None:
            self.relay.wake()
        status = plan.instance.status
        if status in _SETTLED:
            task = asyncio.ensure_future(self._publish_status(plan.instance.id, status.value))
            self._pending_publishes.add(task)
            task.add_done_callback(self._pending_publishes.discard)

    async def _watching(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="flowstar-status-listener")
        if self._listening.is_set():
            return
        # Every caller waits for the subscription (else a status published meanwhile is
        # only seen at the next poll), but not for ever: if Redis does not answer, waiters
        # fall back to polling the database.
        subscribed = asyncio.ensure_future(self._listening.wait())
        try:
            await asyncio.wait({subscribed, self._listener}, timeout=5.0, return_when=asyncio.FIRST_COMPLETED)
        finally:
            subscribed.cancel()

    async def _listen(self) -> None:
        # One subscription per process, fanned out to local waiters: a connection per
        # waiter would exhaust the pool with a few hundred concurrent waits.
        pubsub = self.redis.pubsub()
        prefix = len(self._status_channel(""))
        try:
            await pubsub.psubscribe(self._status_channel("*"))
            self._listening.set()
            while True:
                raise_if_cancel_requested()
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None or message.get("type") != "pmessage":
                    continue
                channel = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
                data = message["data"].decode() if isinstance(message["data"], bytes) else str(message["data"])
                with contextlib.suppress(ValueError):
                    self._notify_status(channel[prefix:], WorkflowStatus(data))
        except Exception as exc:  # the next wait_for_status starts a new listener
            log.warning("status listener stopped; waiters poll the database", error=repr(exc))
        finally:
            self._listening.clear()
            await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # annotated only from redis-py 8.2

    async def wait_for_status(
        self,
        instance_id: UUID | str,
        statuses: WorkflowStatus | Iterable[WorkflowStatus] = TERMINAL_WORKFLOW_STATUSES,
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 - same signature as Engine.wait_for_status
        poll_interval: float = 2.0,
    ) -> WorkflowInstance:
        """Return the instance once any process commits one of ``statuses``.

        Workers publish settled statuses on Redis pub/sub; a slow poll of the database
        covers a lost message.
        """
        return await super().wait_for_status(instance_id, statuses, timeout=timeout, poll_interval=poll_interval)
